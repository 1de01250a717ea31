-- One checkout's inserts and updates, across the services, as one transaction: the
-- idempotency claim and answer, stock's reservation (header, lines, movements, levels) and
-- its commit (lines and header settled, levels, movements, three level events in its
-- outbox), the order number, the order with 3 lines, 2 payments and 3 ledger rows with the
-- shop's day totals, the wallet (state and entry), the sale's outbox row, both outboxes'
-- rows marked published, and auth's projection of the sale (its inbox row and the shop's
-- customer). Payloads and answers are the size of the real ones (~1 KB event, ~2.5 KB
-- answer); sealed amounts 44 bytes. Stock's and the mailer's consumers write no inbox row
-- for a sale (a commit is idempotent by reservation; no receipt is asked for).
-- pgbench -D products=N -D shops=S; tables from ceiling-setup.sql.
\set p1 random(1, :products)
\set p2 (:p1 % :products) + 1
\set p3 (:p2 % :products) + 1
\set c random(1, 2000)
\set s random(1, :shops)
BEGIN;
insert into bench_ceiling.idempotency_keys (shop_id, route, key, fingerprint)
  values (bench_ceiling.id(0), 'POST /orders', gen_random_uuid()::text, '\x0011223344556677') returning key \gset k_
insert into bench_ceiling.reservations (reservation_id, shop_id, expires_at)
  values (gen_random_uuid(), bench_ceiling.id(0), now() + interval '2 minutes') returning reservation_id \gset r_
insert into bench_ceiling.reservation_lines (reservation_id, line_no, product_id, quantity, name, unit_price_minor)
  values (:r_reservation_id, 1, bench_ceiling.id(:p1::bigint), 1, 'Bench item', 1000),
         (:r_reservation_id, 2, bench_ceiling.id(:p2::bigint), 1, 'Bench item', 1000),
         (:r_reservation_id, 3, bench_ceiling.id(:p3::bigint), 1, 'Bench item', 1000);
update bench_ceiling.levels set reserved = reserved + 1, updated_at = now()
  where product_id in (bench_ceiling.id(:p1::bigint), bench_ceiling.id(:p2::bigint), bench_ceiling.id(:p3::bigint));
insert into bench_ceiling.movements (shop_id, product_id, kind, reserved_delta, reservation_id)
  select bench_ceiling.id(0), bench_ceiling.id(p), 'RESERVE', 1, :r_reservation_id
    from unnest(array[:p1, :p2, :p3]::bigint[]) p;
update bench_ceiling.wallets set sealed = decode(repeat('cd', 44), 'hex'), version = version + 1
  where customer_id = bench_ceiling.id(:c::bigint) returning wallet_id, version \gset w_
update bench_ceiling.order_numbers set next_order_number = next_order_number + 1
  where shop_id = bench_ceiling.id(:s::bigint) returning next_order_number - 1 as number \gset
insert into bench_ceiling.orders (order_id, shop_id, order_number, status, customer_id, currency, subtotal_minor,
    discount_minor, total_minor, paid_minor, change_minor, due_minor, reservation_id, created_by, completed_at)
  values (gen_random_uuid(), bench_ceiling.id(:s::bigint), :number, 'COMPLETED', bench_ceiling.id(:c::bigint), 'LKR', 3000, 0, 3000,
          3500, 500, 0, :r_reservation_id, bench_ceiling.id(0), now()) returning order_id \gset o_
insert into bench_ceiling.order_lines (order_line_id, order_id, shop_id, position, product_id, name, quantity,
    list_price_minor, unit_price_minor, sold_price_minor, line_total_minor)
  select gen_random_uuid(), :o_order_id, bench_ceiling.id(0), i, bench_ceiling.id(p), 'Bench item', 1, 1000, 1000, 1000, 1000
    from unnest(array[:p1, :p2, :p3]::bigint[]) with ordinality as t(p, i);
insert into bench_ceiling.payments (payment_id, order_id, shop_id, method, amount_minor)
  values (gen_random_uuid(), :o_order_id, bench_ceiling.id(0), 'WALLET', 1000),
         (gen_random_uuid(), :o_order_id, bench_ceiling.id(0), 'CASH', 2500);
insert into bench_ceiling.ledger (entry_id, shop_id, method, direction, amount_minor, currency, source, order_id, description)
  values (gen_random_uuid(), bench_ceiling.id(0), 'WALLET', 'IN', 1000, 'LKR', 'SALE', :o_order_id, 'Order #ORD-1'),
         (gen_random_uuid(), bench_ceiling.id(0), 'CASH', 'IN', 2500, 'LKR', 'SALE', :o_order_id, 'Order #ORD-1'),
         (gen_random_uuid(), bench_ceiling.id(0), 'CASH', 'OUT', 500, 'LKR', 'CHANGE', :o_order_id, 'Change, order #ORD-1');
insert into bench_ceiling.wallet_entries (entry_id, wallet_id, shop_id, version, kind, method, order_id, sealed)
  values (gen_random_uuid(), :w_wallet_id, bench_ceiling.id(0), :w_version, 'SALE_PAYMENT', 'WALLET', :o_order_id,
          decode(repeat('ef', 44), 'hex'));
insert into bench_ceiling.ledger_days as d (shop_id, day, method, source, direction, amount_minor, entries)
  values (bench_ceiling.id(:s::bigint), (now() at time zone 'Asia/Colombo')::date, 'WALLET', 'SALE', 'IN', 1000, 1),
         (bench_ceiling.id(:s::bigint), (now() at time zone 'Asia/Colombo')::date, 'CASH', 'SALE', 'IN', 2500, 1),
         (bench_ceiling.id(:s::bigint), (now() at time zone 'Asia/Colombo')::date, 'CASH', 'CHANGE', 'OUT', 500, 1)
  on conflict (shop_id, day, method, source, direction)
  do update set amount_minor = d.amount_minor + excluded.amount_minor, entries = d.entries + excluded.entries;
insert into bench_ceiling.outbox (message_id, message_type, payload)
  values (gen_random_uuid(), 'sales.order.completed', jsonb_build_object('orderNumber', :number::bigint, 'lines', '[1, 2, 3]'::jsonb, 'pad', repeat('x', 1000)))
  returning outbox_id as sale_event \gset
update bench_ceiling.idempotency_keys set status_code = 201, response = jsonb_build_object('orderNumber', 'ORD-1', 'pad', repeat('y', 2550)), completed_at = now()
  where shop_id = bench_ceiling.id(0) and route = 'POST /orders' and key = :k_key;
update bench_ceiling.reservation_lines set status = 'COMMITTED' where reservation_id = :r_reservation_id;
update bench_ceiling.reservations set status = 'COMMITTED', order_id = :o_order_id, settled_at = now()
  where reservation_id = :r_reservation_id;
update bench_ceiling.levels set on_hand = on_hand - 1, reserved = reserved - 1, updated_at = now()
  where product_id in (bench_ceiling.id(:p1::bigint), bench_ceiling.id(:p2::bigint), bench_ceiling.id(:p3::bigint));
insert into bench_ceiling.movements (shop_id, product_id, kind, on_hand_delta, reserved_delta, reservation_id)
  select bench_ceiling.id(0), bench_ceiling.id(p), 'SALE', -1, -1, :r_reservation_id
    from unnest(array[:p1, :p2, :p3]::bigint[]) p;
with e as (
  insert into bench_ceiling.stock_outbox (message_id, message_type, payload)
  select gen_random_uuid(), 'stock.level.changed', jsonb_build_object('productId', bench_ceiling.id(p), 'onHand', 999, 'pad', repeat('z', 120))
    from unnest(array[:p1, :p2, :p3]::bigint[]) p
  returning outbox_id)
select array_agg(outbox_id) as level_events from e \gset
update bench_ceiling.outbox set published_at = now(), attempts = attempts + 1 where outbox_id = :sale_event;
update bench_ceiling.stock_outbox set published_at = now(), attempts = attempts + 1
  where outbox_id = any(:level_events::bigint[]);
insert into bench_ceiling.auth_inbox (message_id, message_type) values (gen_random_uuid(), 'sales.order.completed');
insert into bench_ceiling.shop_customers as c (shop_id, customer_id, name, email, order_count, last_order_at)
  values (bench_ceiling.id(:s::bigint), bench_ceiling.id(:c::bigint), 'Bench customer', null, 1, now())
  on conflict (shop_id, customer_id) do update set order_count = c.order_count + excluded.order_count,
    last_order_at = greatest(c.last_order_at, excluded.last_order_at), name = coalesce(excluded.name, c.name),
    email = coalesce(excluded.email, c.email);
END;
