-- Customers' wallets at each shop (store credit, dues, loyalty points), encrypted at rest
-- by envelope encryption: one data key per shop from KMS GenerateDataKey (encryption
-- context: the shop id), stored here only wrapped; balances and entry amounts are sealed
-- with AES-256-GCM under it, the associated data binding wallet id, entry id and version,
-- so a ciphertext copied to another wallet or restored from an older version fails to
-- open. No amount is ever stored in the clear, so the database cannot check one: the
-- wallet actor serialises a wallet's changes, and `version` (compare-and-set) is the net
-- under it across instances.

create table sales.shop_keys (
    shop_id     uuid primary key references sales.shops (shop_id),
    -- The KMS key that wraps it (rotation re-wraps under a new one).
    kms_key_id  text not null,
    wrapped_key bytea not null,
    created_at  timestamptz not null default now(),
    rewrapped_at timestamptz
);

create table sales.wallets (
    wallet_id   uuid primary key,
    shop_id     uuid not null,
    customer_id uuid not null,
    -- Sealed (balance minor units, loyalty points); opens only with this row's id and version.
    sealed      bytea not null,
    version     bigint not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint wallets_customer_key unique (shop_id, customer_id),
    constraint wallets_shop_wallet_key unique (shop_id, wallet_id),
    constraint wallets_customer_fkey foreign key (shop_id, customer_id) references sales.customers (shop_id, customer_id),
    constraint wallets_version_check check (version >= 0)
);
create trigger wallets_set_updated_at before update on sales.wallets for each row execute function public.set_updated_at();

-- Every change of a wallet, append-only. `version` is the wallet's version this entry made.
create table sales.wallet_entries (
    entry_id    uuid primary key,
    wallet_id   uuid not null,
    shop_id     uuid not null,
    version     bigint not null,
    -- SALE_PAYMENT, CHANGE, DUE, DUE_PAYMENT, TOP_UP, REFUND, LOYALTY_EARNED, LOYALTY_REVERSED
    kind        text not null,
    method      text,
    order_id    uuid,
    -- Sealed (amount minor units, signed; points, signed).
    sealed      bytea not null,
    actor_id    uuid,
    created_at  timestamptz not null default now(),
    constraint wallet_entries_wallet_fkey foreign key (shop_id, wallet_id) references sales.wallets (shop_id, wallet_id),
    constraint wallet_entries_order_fkey foreign key (shop_id, order_id) references sales.orders (shop_id, order_id),
    constraint wallet_entries_version_key unique (wallet_id, version),
    constraint wallet_entries_kind_check check (kind in ('SALE_PAYMENT', 'CHANGE', 'DUE', 'DUE_PAYMENT', 'TOP_UP',
        'REFUND', 'LOYALTY_EARNED', 'LOYALTY_REVERSED'))
);

create function sales.wallet_entries_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'sales.wallet_entries is append-only' using errcode = 'raise_exception';
end
$$;
create trigger wallet_entries_append_only before update or delete on sales.wallet_entries
    for each row execute function sales.wallet_entries_append_only();
