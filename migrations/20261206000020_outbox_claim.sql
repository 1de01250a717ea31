-- The outbox relay claims a batch for a while (claimed_until) in one statement, publishes it,
-- and marks it published in a second: no transaction held open across the broker's confirms.
-- A relay that dies after its claim leaves the rows to be claimed again once it lapses.
do $$
declare
    s text;
begin
    foreach s in array array['auth', 'stock', 'sales', 'mailer']
    loop
        execute format('alter table %I.outbox add column claimed_until timestamptz', s);
    end loop;
end
$$;
