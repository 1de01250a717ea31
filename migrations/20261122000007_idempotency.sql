-- Idempotency keys, one table per service schema: a POST that moves stock or money with an
-- `Idempotency-Key` header records the key (scoped to the shop and the route) with a
-- fingerprint of the request before it acts, and the answer after. A retry gets the first
-- answer and has no second effect; a concurrent duplicate waits for the first; the same key
-- with a different request is refused. See platform::idempotency.
do $$
declare
    s text;
begin
    foreach s in array array['auth', 'stock', 'sales', 'mailer'] loop
        execute format($f$
            create table %I.idempotency_keys (
                shop_id      uuid not null,
                route        text not null,
                key          text not null,
                fingerprint  bytea not null,
                -- Null while the first request is still working.
                status_code  smallint,
                response     jsonb,
                created_at   timestamptz not null default now(),
                completed_at timestamptz,
                primary key (shop_id, route, key)
            )$f$, s);
    end loop;
end
$$;
