-- Cashflow: expenses, upcoming payments, and a per-shop, per-day summary of the ledger that
-- the balance and the reports read instead of the ledger's rows.

-- Expenses are money out of the shop, each with its ledger row (written in one transaction).
create table sales.expenses (
    expense_id   uuid primary key,
    shop_id      uuid not null references sales.shops (shop_id),
    category     text not null,
    description  text not null,
    amount_minor bigint not null,
    currency     text not null,
    method       text not null,
    -- The upcoming payment this expense paid, if any.
    payment_id   uuid,
    actor_id     uuid,
    created_at   timestamptz not null default now(),
    constraint expenses_shop_expense_key unique (shop_id, expense_id),
    constraint expenses_amount_check check (amount_minor > 0),
    constraint expenses_method_check check (method in ('CASH', 'CARD', 'BANK'))
);
create index expenses_shop_created_idx on sales.expenses (shop_id, created_at desc);
create function sales.expenses_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'sales.expenses is append-only' using errcode = 'raise_exception';
end $$;
create trigger expenses_append_only before update or delete on sales.expenses
    for each row execute function sales.expenses_append_only();

-- Bills the shop expects to pay: once (frequency null) or every DAILY … ANNUALLY. `anchor_day`
-- is the day of the month a monthly-or-longer payment returns to after a short month
-- (Jan 31 → Feb 28 → Mar 31).
create table sales.upcoming_payments (
    payment_id   uuid primary key,
    shop_id      uuid not null references sales.shops (shop_id),
    description  text not null,
    category     text not null default 'Bills',
    amount_minor bigint not null,
    currency     text not null,
    due_date     date not null,
    anchor_day   smallint not null,
    frequency    text,
    is_priority  boolean not null default false,
    -- PENDING until a one-time payment is paid (then PAID); recurring ones stay PENDING.
    -- Deleting one that has been paid before cancels it (its expenses keep naming it).
    status       text not null default 'PENDING',
    paid_count   integer not null default 0,
    last_paid_at timestamptz,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint upcoming_payments_shop_payment_key unique (shop_id, payment_id),
    constraint upcoming_payments_amount_check check (amount_minor > 0),
    constraint upcoming_payments_anchor_check check (anchor_day between 1 and 31),
    constraint upcoming_payments_frequency_check check (frequency in ('DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'ANNUALLY')),
    constraint upcoming_payments_status_check check (status in ('PENDING', 'PAID', 'CANCELLED'))
);
create index upcoming_payments_shop_due_idx on sales.upcoming_payments (shop_id, due_date);
create trigger upcoming_payments_set_updated_at before update on sales.upcoming_payments
    for each row execute function public.set_updated_at();

alter table sales.expenses add constraint expenses_payment_fkey
    foreign key (shop_id, payment_id) references sales.upcoming_payments (shop_id, payment_id);

-- The ledger learns expenses (and, for register shifts, the opening float and the closing
-- variance as sources).
alter table sales.ledger add column expense_id uuid;
alter table sales.ledger add constraint ledger_expense_fkey
    foreign key (shop_id, expense_id) references sales.expenses (shop_id, expense_id);
alter table sales.ledger drop constraint ledger_source_check;
alter table sales.ledger add constraint ledger_source_check check (source in ('SALE', 'CHANGE', 'REFUND',
    'DUE_PAYMENT', 'WALLET_TOP_UP', 'EXPENSE', 'CASH_IN', 'CASH_OUT', 'OPENING_FLOAT', 'CLOSING_VARIANCE'));

-- The ledger summed per shop, day (in the shop's time zone), method, source and direction.
-- Kept by a statement trigger in the transaction that writes the ledger rows, so it cannot
-- drift; rebuilt from the ledger when the shop's time zone changes (`sales.rebuild_ledger_days`).
create table sales.ledger_days (
    shop_id      uuid not null,
    day          date not null,
    method       text not null,
    source       text not null,
    direction    text not null,
    amount_minor bigint not null,
    entries      bigint not null,
    primary key (shop_id, day, method, source, direction)
);

-- Writers of a shop's ledger hold a shared advisory lock on it until they commit; a rebuild
-- holds it exclusively, so a rebuild never misses or double-counts a concurrent write, and a
-- write after it uses the new time zone (each statement below reads after its lock).
create function sales.ledger_days_add() returns trigger
language plpgsql as $$
begin
    perform pg_advisory_xact_lock_shared(hashtextextended('ledger_days:' || shop_id::text, 0))
       from (select distinct shop_id from new_rows) s;
    insert into sales.ledger_days as d (shop_id, day, method, source, direction, amount_minor, entries)
    select n.shop_id, (n.created_at at time zone s.time_zone)::date, n.method, n.source, n.direction,
           sum(n.amount_minor), count(*)
      from new_rows n join sales.shops s on s.shop_id = n.shop_id
     group by 1, 2, 3, 4, 5
    on conflict (shop_id, day, method, source, direction)
    do update set amount_minor = d.amount_minor + excluded.amount_minor, entries = d.entries + excluded.entries;
    return null;
end $$;
create trigger ledger_days_add after insert on sales.ledger
    referencing new table as new_rows for each statement execute function sales.ledger_days_add();

create function sales.rebuild_ledger_days(shop uuid) returns void
language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtextextended('ledger_days:' || shop::text, 0));
    delete from sales.ledger_days where shop_id = shop;
    insert into sales.ledger_days (shop_id, day, method, source, direction, amount_minor, entries)
    select l.shop_id, (l.created_at at time zone s.time_zone)::date, l.method, l.source, l.direction,
           sum(l.amount_minor), count(*)
      from sales.ledger l join sales.shops s on s.shop_id = l.shop_id
     where l.shop_id = shop
     group by 1, 2, 3, 4, 5;
end $$;

-- Rows written before this migration.
insert into sales.ledger_days (shop_id, day, method, source, direction, amount_minor, entries)
select l.shop_id, (l.created_at at time zone s.time_zone)::date, l.method, l.source, l.direction,
       sum(l.amount_minor), count(*)
  from sales.ledger l join sales.shops s on s.shop_id = l.shop_id
 group by 1, 2, 3, 4, 5;
