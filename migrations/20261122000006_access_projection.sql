-- Who may do what, projected from auth's events into every other service's schema, so a
-- service authorizes a request from its own tables (and a short in-memory cache) instead of
-- the claims inside an access token: a suspended member, a removed member, a logged-out or
-- revoked session and a deleted account lose access within about a second, not when the
-- 15-minute token expires, and no request calls auth.
--
-- The projections start from a copy of auth's state taken by this migration (below); a
-- service schema added later needs the same copy in its own migration. Nothing is ever
-- granted from a token's claims.
--
-- Events can arrive late or twice (retries, redeliveries): every row keeps the time of the
-- change it holds and only a newer change replaces it.
do $$
declare
    s text;
begin
    foreach s in array array['stock', 'sales', 'mailer'] loop
        -- Memberships from auth.member.changed (and the owner's from auth.shop.created).
        execute format($f$
            create table %I.access_members (
                shop_id    uuid not null,
                user_id    uuid not null,
                role       text not null,
                status     text not null,
                changed_at timestamptz not null,
                primary key (user_id, shop_id),
                constraint access_members_role_check check (role in ('SHOP_OWNER', 'SHOP_STAFF')),
                constraint access_members_status_check check (status in ('ACTIVE', 'SUSPENDED', 'REMOVED'))
            )$f$, s);
        -- Account status from auth.user.changed; no row means active.
        execute format($f$
            create table %I.access_users (
                user_id    uuid primary key,
                status     text not null,
                changed_at timestamptz not null
            )$f$, s);
        -- Ended sessions from auth.session.revoked (kept past the longest refresh lifetime;
        -- pruning them is safe once no token of theirs can still be unexpired).
        execute format($f$
            create table %I.access_revoked_sessions (
                session_id uuid primary key,
                user_id    uuid not null,
                revoked_at timestamptz not null
            )$f$, s);

        -- What auth already knows when this runs: later changes arrive as events. (Run as
        -- the owner role, which reads every schema; services never read auth's tables.)
        execute format($f$
            insert into %I.access_members (shop_id, user_id, role, status, changed_at)
            select shop_id, user_id, role, status, updated_at from auth.memberships$f$, s);
        -- A shop's first owner who is no longer a member stays out: `auth.shop.created` is
        -- re-sent on brand updates and only ever creates the owner's row.
        execute format($f$
            insert into %I.access_members (shop_id, user_id, role, status, changed_at)
            select s.shop_id, s.owner_id, 'SHOP_OWNER', 'REMOVED', now() from auth.shops s
             where not exists (select 1 from auth.memberships m
                                where m.shop_id = s.shop_id and m.user_id = s.owner_id)$f$, s);
        execute format($f$
            insert into %I.access_users (user_id, status, changed_at)
            select user_id, status, now() from auth.users where status <> 'ACTIVE'$f$, s);
        execute format($f$
            insert into %I.access_revoked_sessions (session_id, user_id, revoked_at)
            select session_id, user_id, revoked_at from auth.sessions where revoked_at is not null$f$, s);
    end loop;
end
$$;
