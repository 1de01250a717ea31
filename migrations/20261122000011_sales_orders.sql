-- The order service's own tables (schema `sales`): what it knows of shops and owns of their
-- settings, customers (registered ones by auth user id, walk-ins as its own records),
-- orders with their lines and payments, and the append-only money ledger every later
-- report (cashflow, shop balance, register shifts) reads. Money is integer minor units of
-- the order's currency; nothing here is ever a float.
--
-- Every reference carries the shop: foreign keys are composite (shop_id, id), so an order
-- can never point at another shop's customer and a line never at another shop's order,
-- whatever a handler does.

-- What the order service knows of a shop (from auth.shop.created, re-sent on brand
-- changes) and the settings it owns (GET/PUT /order/shops/:id/settings). A re-sent event
-- updates the brand, never the owner's settings.
create table sales.shops (
    shop_id              uuid primary key,
    name                 text not null,
    logo_url             text,
    address              text,
    contact_phone        text,
    currency             text not null,
    time_zone            text not null default 'UTC',
    allow_credit         boolean not null default false,
    credit_limit_minor   bigint not null default 0,
    staff_price_override boolean not null default true,
    require_open_shift   boolean not null default false,
    -- The next order number: taken in the transaction that books the order, so a failed
    -- checkout takes none and the sequence has no gaps.
    next_order_number    bigint not null default 1,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint shops_credit_limit_check check (credit_limit_minor >= 0),
    constraint shops_next_order_number_check check (next_order_number >= 1)
);
create trigger shops_set_updated_at before update on sales.shops for each row execute function public.set_updated_at();

-- Registered people (from auth.user.registered), so a sale can name a registered customer
-- by id and show their name and e-mail without asking auth.
create table sales.people (
    user_id       uuid primary key,
    name          text not null,
    email         text not null,
    role          text not null,
    registered_at timestamptz not null default now()
);

-- A shop's customer. Registered customers keep their auth user id as customer_id (the
-- customer app asks by it across shops); walk-ins (name, e-mail, phone, no login) get an id
-- of their own and are never auth users.
create table sales.customers (
    customer_id uuid not null,
    shop_id     uuid not null references sales.shops (shop_id),
    registered  boolean not null,
    name        text,
    email       text,
    phone       text,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (shop_id, customer_id)
);
create index customers_id_idx on sales.customers (customer_id);
-- A walk-in is found again by e-mail or phone in that shop.
create unique index customers_email_key on sales.customers (shop_id, lower(email)) where email is not null;
create unique index customers_phone_key on sales.customers (shop_id, phone) where phone is not null;
create trigger customers_set_updated_at before update on sales.customers for each row execute function public.set_updated_at();

create table sales.orders (
    order_id        uuid not null,
    shop_id         uuid not null references sales.shops (shop_id),
    order_number    bigint not null,
    status          text not null,
    customer_id     uuid,
    register_id     uuid,
    currency        text not null,
    -- Sum of lines at the price charged (after overrides), before the order discount.
    subtotal_minor  bigint not null,
    discount_minor  bigint not null,
    total_minor     bigint not null,
    -- Tendered (payments), change given back (cash or to the wallet), and the unpaid rest
    -- that became a due on the customer's wallet.
    paid_minor      bigint not null default 0,
    change_minor    bigint not null default 0,
    due_minor       bigint not null default 0,
    discount_type   text,
    discount_value  text,
    -- Derived from order_id: a retried reserve is the same reservation.
    reservation_id  uuid not null,
    send_receipt    boolean not null default true,
    note            text,
    created_by      uuid not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    primary key (order_id),
    constraint orders_shop_order_key unique (shop_id, order_id),
    constraint orders_number_key unique (shop_id, order_number),
    constraint orders_reservation_key unique (reservation_id),
    constraint orders_customer_fkey foreign key (shop_id, customer_id) references sales.customers (shop_id, customer_id),
    constraint orders_status_check check (status in ('DRAFT', 'PENDING', 'COMPLETED', 'CANCELLED', 'REFUNDED', 'PARTIALLY_REFUNDED')),
    constraint orders_discount_type_check check (discount_type in ('PERCENTAGE', 'FIXED')),
    constraint orders_amounts_check check (subtotal_minor >= 0 and discount_minor >= 0 and discount_minor <= subtotal_minor
        and total_minor = subtotal_minor - discount_minor and paid_minor >= 0 and change_minor >= 0 and due_minor >= 0),
    constraint orders_note_check check (char_length(note) <= 2000)
);
create index orders_shop_created_idx on sales.orders (shop_id, created_at desc);
create index orders_customer_idx on sales.orders (customer_id, created_at desc) where customer_id is not null;
create trigger orders_set_updated_at before update on sales.orders for each row execute function public.set_updated_at();

create table sales.order_lines (
    order_line_id     uuid primary key,
    order_id          uuid not null,
    shop_id           uuid not null,
    position          integer not null,
    product_id        uuid not null,
    item_id           uuid,
    barcode           text,
    name              text not null,
    quantity          bigint not null,
    -- Stock's undiscounted price, stock's price after the shop's discounts, and what was
    -- charged per unit (differs only by a recorded override).
    list_price_minor  bigint not null,
    unit_price_minor  bigint not null,
    sold_price_minor  bigint not null,
    override_by       uuid,
    -- This line's share of the order discount, and what the line finally costs.
    discount_minor    bigint not null default 0,
    line_total_minor  bigint not null,
    warranty_until    timestamptz,
    loyalty_points    bigint not null default 0,
    constraint order_lines_order_fkey foreign key (shop_id, order_id) references sales.orders (shop_id, order_id),
    constraint order_lines_position_key unique (order_id, position),
    constraint order_lines_quantity_check check (quantity > 0 and (barcode is null or quantity = 1)),
    constraint order_lines_amounts_check check (list_price_minor >= 0 and unit_price_minor >= 0 and sold_price_minor >= 0
        and discount_minor >= 0 and line_total_minor >= 0),
    constraint order_lines_override_check check ((override_by is null) = (sold_price_minor = unit_price_minor))
);
create index order_lines_order_idx on sales.order_lines (order_id);

create table sales.payments (
    payment_id   uuid primary key,
    order_id     uuid not null,
    shop_id      uuid not null,
    method       text not null,
    amount_minor bigint not null,
    reference    text,
    created_at   timestamptz not null default now(),
    constraint payments_order_fkey foreign key (shop_id, order_id) references sales.orders (shop_id, order_id),
    constraint payments_method_check check (method in ('CASH', 'CARD', 'BANK', 'WALLET')),
    constraint payments_amount_check check (amount_minor > 0)
);
create index payments_order_idx on sales.payments (order_id);

-- Every money movement of a shop, append-only: cashflow, the shop balance and register
-- shifts are computed from it. `amount_minor` is positive; `direction` says which way.
create table sales.ledger (
    entry_id     uuid primary key,
    shop_id      uuid not null references sales.shops (shop_id),
    method       text not null,
    direction    text not null,
    amount_minor bigint not null,
    currency     text not null,
    source       text not null,
    order_id     uuid,
    return_id    uuid,
    register_id  uuid,
    customer_id  uuid,
    description  text not null,
    actor_id     uuid,
    created_at   timestamptz not null default now(),
    constraint ledger_order_fkey foreign key (shop_id, order_id) references sales.orders (shop_id, order_id),
    constraint ledger_method_check check (method in ('CASH', 'CARD', 'BANK', 'WALLET')),
    constraint ledger_direction_check check (direction in ('IN', 'OUT')),
    constraint ledger_amount_check check (amount_minor > 0),
    constraint ledger_source_check check (source in ('SALE', 'CHANGE', 'REFUND', 'DUE_PAYMENT', 'WALLET_TOP_UP',
        'EXPENSE', 'CASH_IN', 'CASH_OUT'))
);
create index ledger_shop_created_idx on sales.ledger (shop_id, created_at);
create index ledger_order_idx on sales.ledger (order_id) where order_id is not null;
-- Append-only: the ledger is history; a correction is a new row.
create function sales.ledger_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'sales.ledger is append-only' using errcode = 'raise_exception';
end
$$;
create trigger ledger_append_only before update or delete on sales.ledger
    for each row execute function sales.ledger_append_only();

-- The shops auth already has, so the order service knows them from the start (later
-- shops arrive by auth.shop.created).
insert into sales.shops (shop_id, name, logo_url, address, contact_phone, currency, allow_credit)
select s.shop_id, s.business_name, s.shop_logo, s.address, s.contact_phone, s.currency, s.allow_credit
  from auth.shops s
on conflict (shop_id) do nothing;

insert into sales.people (user_id, name, email, role, registered_at)
select u.user_id, u.name, u.email, u.role, u.created_at from auth.users u
on conflict (user_id) do nothing;
