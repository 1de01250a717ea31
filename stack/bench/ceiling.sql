-- One checkout's inserts and updates, across the services, as one transaction: the
-- idempotency claim and answer, stock's reservation (header, lines, movements, levels) and
-- its commit, the order number, the order with 3 lines, 2 payments and 3 ledger rows, the
-- wallet (state and entry), the outbox row, and the two consumers' inbox rows.
-- pgbench -D products=N -D shops=S; tables from ceiling-setup.sql.
\set p1 random(1, :products)
\set p2 (:p1 % :products) + 1
\set p3 (:p2 % :products) + 1
\set c random(1, 2000)
\set s random(1, :shops)
BEGIN;
insert into bench_ceiling.idempotency_keys (shop_id, route, key, fingerprint)
  values (bench_ceiling.id(0), 'POST /orders', gen_random_uuid()::text, '\x0011223344556677');
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
update bench_ceiling.wallets set sealed = decode(repeat('cd', 60), 'hex'), version = version + 1
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
          decode(repeat('ef', 60), 'hex'));
insert into bench_ceiling.outbox (message_id, message_type, payload)
  values (gen_random_uuid(), 'sales.order.completed', '{"orderNumber": 1, "lines": [1, 2, 3]}');
update bench_ceiling.idempotency_keys set status_code = 201, response = '{"orderNumber": "ORD-1"}', completed_at = now()
  where shop_id = bench_ceiling.id(0) and route = 'POST /orders' and key = :o_order_id;
update bench_ceiling.reservations set status = 'COMMITTED', order_id = :o_order_id, settled_at = now()
  where reservation_id = :r_reservation_id;
update bench_ceiling.levels set on_hand = on_hand - 1, reserved = reserved - 1, updated_at = now()
  where product_id in (bench_ceiling.id(:p1::bigint), bench_ceiling.id(:p2::bigint), bench_ceiling.id(:p3::bigint));
insert into bench_ceiling.movements (shop_id, product_id, kind, on_hand_delta, reserved_delta, reservation_id)
  select bench_ceiling.id(0), bench_ceiling.id(p), 'SALE', -1, -1, :r_reservation_id
    from unnest(array[:p1, :p2, :p3]::bigint[]) p;
insert into bench_ceiling.stock_inbox (message_id, message_type) values (gen_random_uuid(), 'sales.order.completed');
insert into bench_ceiling.mailer_inbox (message_id, message_type) values (gen_random_uuid(), 'sales.order.completed');
END;
