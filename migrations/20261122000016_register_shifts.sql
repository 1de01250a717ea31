-- Registers (tills) and their shifts. A shift opens with a float, takes the register's
-- bookings (every ledger row naming the register lands in its open shift), and closes with
-- the counted cash: the variance is a ledger row, the Z report is frozen and numbered
-- gaplessly per register.

create table sales.registers (
    register_id   uuid primary key,
    shop_id       uuid not null references sales.shops (shop_id),
    name          text not null,
    next_z_number bigint not null default 1,
    created_at    timestamptz not null default now(),
    constraint registers_shop_register_key unique (shop_id, register_id),
    constraint registers_next_z_check check (next_z_number >= 1)
);

create table sales.shifts (
    shift_id          uuid primary key,
    shop_id           uuid not null,
    register_id       uuid not null,
    status            text not null default 'OPEN',
    currency          text not null,
    float_minor       bigint not null,
    opened_by         uuid,
    opened_at         timestamptz not null default now(),
    closed_by         uuid,
    closed_at         timestamptz,
    z_number          bigint,
    z_report          jsonb,
    constraint shifts_shop_shift_key unique (shop_id, shift_id),
    constraint shifts_register_fkey foreign key (shop_id, register_id) references sales.registers (shop_id, register_id),
    constraint shifts_status_check check (status in ('OPEN', 'CLOSED')),
    constraint shifts_float_check check (float_minor >= 0),
    constraint shifts_closed_check check ((status = 'CLOSED') = (closed_at is not null and z_number is not null and z_report is not null))
);
create unique index shifts_one_open_idx on sales.shifts (register_id) where status = 'OPEN';
create unique index shifts_z_number_idx on sales.shifts (register_id, z_number) where z_number is not null;

alter table sales.ledger add column shift_id uuid;
alter table sales.ledger add constraint ledger_shift_fkey foreign key (shop_id, shift_id) references sales.shifts (shop_id, shift_id);
create index ledger_shift_idx on sales.ledger (shift_id) where shift_id is not null;

-- A ledger row naming a register lands in that register's open shift; a register of another
-- shop, or none, is refused; with the shop's `require_open_shift`, cash taken for a sale needs
-- an open shift. (SQLSTATEs CVR01 unknown register, CVR02 no open shift.)
create function sales.ledger_into_shift() returns trigger
language plpgsql as $$
begin
    if new.register_id is null then
        if new.source in ('SALE', 'CHANGE') and new.method = 'CASH'
           and (select require_open_shift from sales.shops where shop_id = new.shop_id) then
            raise exception 'cash sales need an open register shift' using errcode = 'CVR02';
        end if;
        return new;
    end if;
    if not exists (select 1 from sales.registers where register_id = new.register_id and shop_id = new.shop_id) then
        raise exception 'no such register in this shop' using errcode = 'CVR01';
    end if;
    -- Shared with other bookings, exclusive with the close: a booking never lands in a shift
    -- that is closing or closed.
    select shift_id into new.shift_id from sales.shifts
     where register_id = new.register_id and status = 'OPEN' for share;
    if new.shift_id is null and (new.source in ('SALE', 'CHANGE') and new.method = 'CASH'
        and (select require_open_shift from sales.shops where shop_id = new.shop_id)
        or new.source in ('CASH_IN', 'CASH_OUT', 'OPENING_FLOAT', 'CLOSING_VARIANCE')) then
        raise exception 'the register has no open shift' using errcode = 'CVR02';
    end if;
    return new;
end $$;
create trigger ledger_into_shift before insert on sales.ledger
    for each row execute function sales.ledger_into_shift();

-- A shift's ledger summed per method, source and direction, kept in the booking's
-- transaction: the X report and the close read these few rows, whatever the shift's size.
create table sales.shift_totals (
    shift_id     uuid not null references sales.shifts (shift_id),
    method       text not null,
    source       text not null,
    direction    text not null,
    amount_minor bigint not null,
    entries      bigint not null,
    primary key (shift_id, method, source, direction)
);

create function sales.shift_totals_add() returns trigger
language plpgsql as $$
begin
    insert into sales.shift_totals as t (shift_id, method, source, direction, amount_minor, entries)
    select shift_id, method, source, direction, sum(amount_minor), count(*)
      from new_rows where shift_id is not null
     group by 1, 2, 3, 4
    on conflict (shift_id, method, source, direction)
    do update set amount_minor = t.amount_minor + excluded.amount_minor, entries = t.entries + excluded.entries;
    return null;
end $$;
create trigger shift_totals_add after insert on sales.ledger
    referencing new table as new_rows for each statement execute function sales.shift_totals_add();
