-- The outbox relays no longer wait for NOTIFY (see crates/bus/src/outbox.rs): a notifying
-- transaction holds a database-wide lock through its commit, so every event-writing
-- transaction in every service committed one at a time. The relays are woken in-process
-- by the writer and poll.
do $$
declare
    s text;
begin
    foreach s in array array['auth', 'stock', 'sales', 'mailer'] loop
        execute format('drop trigger if exists outbox_notify on %I.outbox', s);
    end loop;
end
$$;
drop function if exists public.notify_outbox();
