-- An event may be routed under more than its type (contracts::Event::routing_key: a sale
-- with no receipt to send is `sales.order.completed.without_receipt`, so the mailer, bound
-- to the type, never sees it). Null: the routing key is the message type, as for every row
-- before.
do $$
declare
    s text;
begin
    foreach s in array array['auth', 'stock', 'sales', 'mailer']
    loop
        execute format('alter table %I.outbox add column routing_key text', s);
    end loop;
end
$$;
