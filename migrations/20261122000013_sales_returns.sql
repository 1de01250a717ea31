-- Returns: goods back from a completed sale, money back to the customer. A unit or a
-- quantity is returned at most once in total across all of an order's returns (the first
-- system's most reported return bug): each line counts what came back, and the check below
-- refuses more than was sold, whatever handlers do and however many returns run at once
-- (the line's row lock orders them).

alter table sales.order_lines add column returned_quantity bigint not null default 0;
alter table sales.order_lines add constraint order_lines_returned_check
    check (returned_quantity >= 0 and returned_quantity <= quantity);

create table sales.returns (
    return_id      uuid primary key,
    order_id       uuid not null,
    shop_id        uuid not null,
    -- What the returned goods were sold for (their share of line totals after discounts).
    value_minor    bigint not null,
    refund_minor   bigint not null,
    restocked      boolean not null,
    reason         text,
    created_by     uuid not null,
    created_at     timestamptz not null default now(),
    constraint returns_order_fkey foreign key (shop_id, order_id) references sales.orders (shop_id, order_id),
    constraint returns_amounts_check check (value_minor >= 0 and refund_minor >= 0 and refund_minor <= value_minor),
    constraint returns_reason_check check (char_length(reason) <= 500)
);
create index returns_order_idx on sales.returns (order_id);

create table sales.return_lines (
    return_id     uuid not null references sales.returns (return_id),
    order_line_id uuid not null references sales.order_lines (order_line_id),
    quantity      bigint not null,
    value_minor   bigint not null,
    primary key (return_id, order_line_id),
    constraint return_lines_quantity_check check (quantity > 0),
    constraint return_lines_value_check check (value_minor >= 0)
);

alter table sales.ledger add constraint ledger_return_fkey foreign key (return_id) references sales.returns (return_id);
