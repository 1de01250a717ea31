-- The auth service: users, shops, memberships, sessions (refresh-token families), one-time
-- codes, signing keys, staff invites, employees and the shop-customer projection.

create table auth.users (
    user_id         uuid primary key,
    email           text not null,
    name            text not null,
    -- Null for accounts that only ever signed in with Google.
    password_hash   text,
    role            text not null,
    status          text not null default 'ACTIVE',
    email_verified  boolean not null default false,
    google_sub      text,
    profile_image   text,
    contact_number  text,
    dob             date,
    default_shop_id uuid,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint users_role_check check (role in ('SUPER_ADMIN', 'ADMIN', 'SHOP_OWNER', 'SHOP_STAFF', 'CUSTOMER')),
    constraint users_status_check check (status in ('ACTIVE', 'INACTIVE', 'SUSPENDED')),
    constraint users_google_sub_key unique (google_sub)
);
-- E-mail is unique regardless of case; the constraint (not a check-then-insert) decides.
create unique index users_email_key on auth.users (lower(email));
create trigger users_set_updated_at before update on auth.users for each row execute function public.set_updated_at();

create table auth.shops (
    shop_id        uuid primary key,
    business_name  text not null,
    address        text not null,
    contact_phone  text,
    shop_logo      text,
    shop_banner    text,
    currency       text not null default 'LKR',
    -- Whether unpaid rests may become a customer's due (read by order via events later).
    allow_credit   boolean not null default false,
    owner_id       uuid not null references auth.users (user_id),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
create trigger shops_set_updated_at before update on auth.shops for each row execute function public.set_updated_at();
alter table auth.users add constraint users_default_shop_fkey foreign key (default_shop_id) references auth.shops (shop_id) on delete set null;

create table auth.memberships (
    shop_id    uuid not null references auth.shops (shop_id) on delete cascade,
    user_id    uuid not null references auth.users (user_id) on delete cascade,
    role       text not null,
    status     text not null default 'ACTIVE',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (shop_id, user_id),
    constraint memberships_role_check check (role in ('SHOP_OWNER', 'SHOP_STAFF')),
    constraint memberships_status_check check (status in ('ACTIVE', 'SUSPENDED'))
);
create index memberships_user_idx on auth.memberships (user_id);
create trigger memberships_set_updated_at before update on auth.memberships for each row execute function public.set_updated_at();

-- One live sign-up code per e-mail. Stored hashed; attempts counted; a resend replaces it.
create table auth.otps (
    email        text primary key, -- lower-cased
    code_hash    bytea not null,
    name         text not null,
    attempts     integer not null default 0,
    expires_at   timestamptz not null,
    last_sent_at timestamptz not null default now(),
    constraint otps_attempts_check check (attempts >= 0)
);

-- A session is one signed-in device (a phone, a till): a family of refresh tokens. Every
-- use rotates the token; presenting a rotated one again revokes the whole family.
create table auth.sessions (
    session_id     uuid primary key,
    user_id        uuid not null references auth.users (user_id) on delete cascade,
    remember_me    boolean not null,
    user_agent     text,
    created_at     timestamptz not null default now(),
    expires_at     timestamptz not null,
    revoked_at     timestamptz,
    revoked_reason text
);
create index sessions_user_idx on auth.sessions (user_id) where revoked_at is null;

create table auth.refresh_tokens (
    token_hash bytea primary key,
    session_id uuid not null references auth.sessions (session_id) on delete cascade,
    issued_at  timestamptz not null default now(),
    -- Set when this token was exchanged for the next one.
    used_at    timestamptz
);
create index refresh_tokens_session_idx on auth.refresh_tokens (session_id);

-- Single-use secrets sent by e-mail or redirect: password resets, staff invites, Google
-- sign-in hand-over codes. Only their hashes are stored.
create table auth.one_time_tokens (
    token_hash bytea primary key,
    purpose    text not null,
    user_id    uuid references auth.users (user_id) on delete cascade,
    payload    jsonb not null default '{}',
    expires_at timestamptz not null,
    used_at    timestamptz,
    created_at timestamptz not null default now(),
    constraint one_time_tokens_purpose_check check (purpose in ('PASSWORD_RESET', 'INVITE', 'GOOGLE_EXCHANGE'))
);

-- Google sign-in in flight: state, PKCE verifier and nonce, used once.
create table auth.oauth_states (
    state         text primary key,
    pkce_verifier text not null,
    nonce         text not null,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz not null
);

-- Access-token signing keys (Ed25519). The newest is used to sign; a key stays in the JWKS
-- until published_until, so tokens it signed keep verifying after a rotation.
create table auth.signing_keys (
    kid             text primary key,
    private_der     bytea not null,
    public_x        text not null,
    created_at      timestamptz not null default now(),
    retired_at      timestamptz,
    published_until timestamptz
);

create table auth.employees (
    employee_id  uuid primary key,
    shop_id      uuid not null references auth.shops (shop_id) on delete cascade,
    user_id      uuid references auth.users (user_id) on delete set null,
    name         text not null,
    email        text,
    phone        text,
    position     text,
    department   text,
    -- Minor units of the shop's currency; shown to the shop owner only.
    salary_minor bigint,
    status       text not null default 'ACTIVE',
    hired_on     date,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint employees_status_check check (status in ('ACTIVE', 'ON_LEAVE', 'TERMINATED')),
    constraint employees_salary_check check (salary_minor is null or salary_minor >= 0)
);
create index employees_shop_idx on auth.employees (shop_id, status);
create trigger employees_set_updated_at before update on auth.employees for each row execute function public.set_updated_at();

-- Auth's own projection of who bought where, fed by sales.order.completed (auth never
-- reads the sales schema).
create table auth.shop_customers (
    shop_id       uuid not null,
    customer_id   uuid not null,
    name          text,
    email         text,
    order_count   integer not null default 0,
    last_order_at timestamptz,
    primary key (shop_id, customer_id)
);
