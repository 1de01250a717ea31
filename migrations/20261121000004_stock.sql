-- The stock service: catalog (three-level categories, suppliers, products, serialized
-- items, discounts), stock levels with an append-only movement ledger, and reservations.
-- The reservation actors are the only writers of levels and items' availability; the
-- constraints below are the safety net under them.

-- What stock knows of shops, from auth.shop.created (stock never reads auth).
create table stock.shops (
    shop_id     uuid primary key,
    name        text not null,
    currency    text not null,
    owner_email text,
    owner_name  text,
    logo_url    text,
    updated_at  timestamptz not null default now()
);

create table stock.categories (
    category_id uuid primary key,
    shop_id     uuid not null,
    level       smallint not null,
    parent_id   uuid references stock.categories (category_id),
    name        text not null,
    description text,
    image_url   text,
    status      text not null default 'ACTIVE',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint categories_level_check check (level between 1 and 3),
    constraint categories_parent_check check ((level = 1) = (parent_id is null)),
    constraint categories_status_check check (status in ('ACTIVE', 'HIDE'))
);
create index categories_shop_idx on stock.categories (shop_id, level, parent_id);
create unique index categories_name_key on stock.categories (shop_id, level, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'), lower(name));
create trigger categories_set_updated_at before update on stock.categories for each row execute function public.set_updated_at();

create table stock.suppliers (
    supplier_id    uuid primary key,
    shop_id        uuid not null,
    name           text not null,
    contact_number text not null,
    email          text,
    have_whatsapp  boolean not null default false,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
create index suppliers_shop_idx on stock.suppliers (shop_id, lower(name));
create trigger suppliers_set_updated_at before update on stock.suppliers for each row execute function public.set_updated_at();

create table stock.products (
    product_id          uuid primary key,
    shop_id             uuid not null,
    name                text not null,
    display_name        text,
    description         text,
    image_urls          text[] not null default '{}',
    keeping_units       integer not null default 0,
    warranty_months     integer not null default 0,
    loyalty_points      integer not null default 0,
    supplier_id         uuid references stock.suppliers (supplier_id),
    category_id         uuid references stock.categories (category_id),
    sub_category_id     uuid references stock.categories (category_id),
    sub_sub_category_id uuid references stock.categories (category_id),
    status              text not null default 'ACTIVE',
    sku                 text,
    barcode             text,
    tracking            text not null,
    -- Bulk products' price; serialized units carry their own.
    sell_price_minor    bigint,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint products_status_check check (status in ('ACTIVE', 'HIDE', 'DELETED')),
    constraint products_tracking_check check (tracking in ('SERIALIZED', 'BULK')),
    constraint products_numbers_check check (keeping_units >= 0 and warranty_months >= 0 and loyalty_points >= 0
                                             and (sell_price_minor is null or sell_price_minor >= 0))
);
create index products_shop_idx on stock.products (shop_id, status);
-- Case-insensitive search on the name.
create index products_name_idx on stock.products (shop_id, lower(name) text_pattern_ops);
create unique index products_barcode_key on stock.products (shop_id, barcode) where barcode is not null;
create unique index products_sku_key on stock.products (shop_id, sku) where sku is not null;
create trigger products_set_updated_at before update on stock.products for each row execute function public.set_updated_at();

-- Serialized units: a phone, a laptop. Never deleted once sold.
create table stock.items (
    item_id            uuid primary key,
    shop_id            uuid not null,
    product_id         uuid not null references stock.products (product_id),
    barcode            text not null,
    brought_price_minor bigint not null,
    sell_price_minor   bigint not null,
    warranty_months    integer,
    status             text not null default 'AVAILABLE',
    reservation_id     uuid,
    order_id           uuid,
    sold_at            timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint items_status_check check (status in ('AVAILABLE', 'RESERVED', 'SOLD')),
    constraint items_reserved_check check ((status = 'RESERVED') = (reservation_id is not null)),
    constraint items_prices_check check (brought_price_minor >= 0 and sell_price_minor >= 0)
);
create unique index items_barcode_key on stock.items (shop_id, barcode);
create index items_product_idx on stock.items (product_id, status);
create trigger items_set_updated_at before update on stock.items for each row execute function public.set_updated_at();

-- Bulk quantities. Never negative, never more reserved than on hand: the database refuses
-- what an actor bug would do.
create table stock.levels (
    product_id uuid primary key references stock.products (product_id),
    shop_id    uuid not null,
    on_hand    integer not null default 0,
    reserved   integer not null default 0,
    updated_at timestamptz not null default now(),
    constraint levels_on_hand_check check (on_hand >= 0),
    constraint levels_reserved_check check (reserved >= 0 and reserved <= on_hand)
);
create index levels_shop_idx on stock.levels (shop_id);

create table stock.reservations (
    reservation_id uuid primary key,
    shop_id        uuid not null,
    status         text not null default 'HELD',
    expires_at     timestamptz not null,
    order_id       uuid,
    created_at     timestamptz not null default now(),
    settled_at     timestamptz,
    constraint reservations_status_check check (status in ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED'))
);
create index reservations_held_idx on stock.reservations (expires_at) where status = 'HELD';

create table stock.reservation_lines (
    reservation_id   uuid not null references stock.reservations (reservation_id),
    line_no          integer not null,
    -- A line reserving n serialized units holds n rows (unit_no 0..n-1).
    unit_no          integer not null default 0,
    product_id       uuid not null references stock.products (product_id),
    item_id          uuid references stock.items (item_id),
    quantity         integer not null,
    name             text not null,
    unit_price_minor bigint not null,
    -- Each product's actor settles its own lines; the header follows.
    status           text not null default 'HELD',
    primary key (reservation_id, line_no, unit_no),
    constraint reservation_lines_quantity_check check (quantity > 0),
    constraint reservation_lines_status_check check (status in ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED'))
);
create index reservation_lines_product_idx on stock.reservation_lines (product_id) where status = 'HELD';

-- Append-only ledger of every change to stock: who, when, why, and what it belongs to.
create table stock.movements (
    movement_id    bigint generated always as identity primary key,
    shop_id        uuid not null,
    product_id     uuid not null references stock.products (product_id),
    item_id        uuid references stock.items (item_id),
    kind           text not null,
    -- Change to on_hand and to reserved.
    on_hand_delta  integer not null default 0,
    reserved_delta integer not null default 0,
    unit_cost_minor bigint,
    reason         text,
    actor_id       uuid,
    reservation_id uuid,
    order_id       uuid,
    created_at     timestamptz not null default now(),
    constraint movements_kind_check check (kind in ('RECEIPT', 'ADJUSTMENT', 'RESERVE', 'RELEASE', 'EXPIRE', 'SALE', 'RETURN'))
);
create index movements_product_idx on stock.movements (product_id, movement_id);
-- The ledger is append-only.
create or replace function stock.refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'stock.movements is append-only';
end
$$;
create trigger movements_append_only before update or delete on stock.movements
    for each row execute function stock.refuse_change();

create table stock.discounts (
    discount_id uuid primary key,
    shop_id     uuid not null,
    name        text not null,
    description text,
    starts_at   timestamptz not null,
    ends_at     timestamptz not null,
    status      text not null default 'ACTIVE',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint discounts_period_check check (ends_at > starts_at),
    constraint discounts_status_check check (status in ('ACTIVE', 'INACTIVE'))
);
create index discounts_shop_idx on stock.discounts (shop_id, starts_at, ends_at);
create trigger discounts_set_updated_at before update on stock.discounts for each row execute function public.set_updated_at();

create table stock.discount_products (
    discount_id  uuid not null references stock.discounts (discount_id) on delete cascade,
    product_id   uuid not null references stock.products (product_id),
    -- Hundredths of a percent: 1250 = 12.5 %.
    basis_points integer not null,
    primary key (discount_id, product_id),
    constraint discount_products_bp_check check (basis_points between 1 and 10000)
);
create index discount_products_product_idx on stock.discount_products (product_id);
