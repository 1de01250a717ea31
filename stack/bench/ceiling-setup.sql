-- The pgbench ceiling's tables (stack/bench/ceiling.sql): copies of the tables a checkout
-- writes, with their columns, defaults, checks and indexes (not their foreign keys), in a
-- schema of their own. Recreated for every run.
drop schema if exists bench_ceiling cascade;
create schema bench_ceiling;
create table bench_ceiling.idempotency_keys (like sales.idempotency_keys including all);
create table bench_ceiling.reservations (like stock.reservations including all);
create table bench_ceiling.reservation_lines (like stock.reservation_lines including all);
create table bench_ceiling.movements (like stock.movements including all);
create table bench_ceiling.levels (like stock.levels including all);
create table bench_ceiling.order_numbers (shop_id uuid primary key, next_order_number bigint not null);
create table bench_ceiling.orders (like sales.orders including all);
create table bench_ceiling.order_lines (like sales.order_lines including all);
create table bench_ceiling.payments (like sales.payments including all);
create table bench_ceiling.ledger (like sales.ledger including all);
create table bench_ceiling.wallets (like sales.wallets including all);
create table bench_ceiling.wallet_entries (like sales.wallet_entries including all);
create table bench_ceiling.outbox (like sales.outbox including all);
create table bench_ceiling.ledger_days (like sales.ledger_days including all);
create table bench_ceiling.stock_outbox (like stock.outbox including all);
create table bench_ceiling.auth_inbox (like auth.inbox including all);
create table bench_ceiling.shop_customers (like auth.shop_customers including all);

create function bench_ceiling.id(n bigint) returns uuid language sql immutable
  as $$ select ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid $$;

insert into bench_ceiling.order_numbers select bench_ceiling.id(g), 1 from generate_series(1, 1000) g;
insert into bench_ceiling.levels (product_id, shop_id, on_hand, reserved)
  select bench_ceiling.id(g), bench_ceiling.id(0), 1000000, 0 from generate_series(1, 5000) g;
insert into bench_ceiling.wallets (wallet_id, shop_id, customer_id, sealed, version)
  select bench_ceiling.id(g), bench_ceiling.id(0), bench_ceiling.id(g), decode(repeat('ab', 60), 'hex'), 0
    from generate_series(1, 5000) g;
vacuum analyze bench_ceiling.levels, bench_ceiling.wallets, bench_ceiling.order_numbers;
