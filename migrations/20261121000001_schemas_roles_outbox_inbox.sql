-- One database, a schema per service, a login role per service with rights on its own
-- schema only: a bug or breach in one service cannot read another's data (wallets,
-- password hashes). Every later table in a schema inherits the grants below through
-- default privileges, so later migrations need no grants of their own.
--
-- Roles are cluster-wide and several databases (tests) may be migrated at once, so role
-- creation tolerates "already exists".
do $$
declare
    r text;
begin
    foreach r in array array['cashvio_auth', 'cashvio_stock', 'cashvio_order', 'cashvio_mailer'] loop
        begin
            execute format('create role %I login', r);
        exception when duplicate_object or unique_violation then
            null;
        end;
    end loop;
end
$$;

-- Shared trigger function: keeps updated_at honest without every query remembering it.
create or replace function public.set_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at = now();
    return new;
end
$$;

-- Wakes the outbox relay of the schema the row was written in (delivered on commit, so
-- a rolled-back event never wakes anyone).
create or replace function public.notify_outbox() returns trigger
language plpgsql as $$
begin
    perform pg_notify(tg_table_schema || '_outbox', '');
    return null;
end
$$;

do $$
declare
    s record;
begin
    for s in select * from (values
        ('auth', 'cashvio_auth'),
        ('stock', 'cashvio_stock'),
        ('sales', 'cashvio_order'),
        ('mailer', 'cashvio_mailer')) as t(schema_name, role_name)
    loop
        execute format('create schema if not exists %I', s.schema_name);
        execute format('revoke all on schema %I from public', s.schema_name);
        execute format('grant usage on schema %I to %I', s.schema_name, s.role_name);
        execute format('alter default privileges in schema %I grant select, insert, update, delete on tables to %I',
                       s.schema_name, s.role_name);
        execute format('alter default privileges in schema %I grant usage, select, update on sequences to %I',
                       s.schema_name, s.role_name);

        -- Transactional outbox: events are written here in the same transaction as the
        -- change they announce, and published by the relay, which marks a row published
        -- only after the broker confirmed it.
        execute format($f$
            create table %I.outbox (
                outbox_id    bigint generated always as identity primary key,
                message_id   uuid not null,
                message_type text not null,
                version      smallint not null default 1,
                payload      jsonb not null,
                request_id   text,
                traceparent  text,
                occurred_at  timestamptz not null default now(),
                created_at   timestamptz not null default now(),
                published_at timestamptz,
                attempts     integer not null default 0,
                last_error   text,
                constraint outbox_message_id_key unique (message_id)
            )$f$, s.schema_name);
        -- The relay only ever scans unpublished rows.
        execute format('create index outbox_unpublished_idx on %I.outbox (outbox_id) where published_at is null',
                       s.schema_name);
        execute format('create trigger outbox_notify after insert on %I.outbox for each statement execute function public.notify_outbox()',
                       s.schema_name);

        -- Inbox: one row per message whose effect was committed; the insert shares the
        -- handler's transaction, so a redelivered message has no second effect.
        execute format($f$
            create table %I.inbox (
                message_id   uuid primary key,
                message_type text not null,
                received_at  timestamptz not null default now()
            )$f$, s.schema_name);
    end loop;
end
$$;
