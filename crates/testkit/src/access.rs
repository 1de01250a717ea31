//! Memberships for test tokens. Services authorize from their projection of auth's events
//! (never from a token's claims), so a test that mints a token for a shop also writes the
//! membership into the service's projection, as the projection consumer would.

use platform::auth::{Claims, ShopRole};
use platform::ids::ShopId;
use sqlx::PgPool;

/// Records in `<schema>.access_members` every shop membership the claims name.
pub async fn grant(admin: &PgPool, schema: &str, claims: &Claims) {
    for shop in &claims.shops {
        grant_one(admin, schema, claims, shop.id, shop.role).await;
    }
}

/// Records one membership of the token's user.
pub async fn grant_one(admin: &PgPool, schema: &str, claims: &Claims, shop: ShopId, role: ShopRole) {
    let role = match role {
        ShopRole::ShopOwner => "SHOP_OWNER",
        ShopRole::ShopStaff => "SHOP_STAFF",
    };
    sqlx::query(&format!(
        "insert into {schema}.access_members (shop_id, user_id, role, status, changed_at) values ($1, $2, $3, 'ACTIVE', now())
         on conflict (user_id, shop_id) do update set role = excluded.role, status = 'ACTIVE', changed_at = now()"
    ))
    .bind(shop.0)
    .bind(claims.sub.0)
    .bind(role)
    .execute(admin)
    .await
    .expect("granting a test membership");
}

/// What a revocation scenario measured: how long each change took to reach the service.
#[derive(Debug, Default)]
pub struct Latencies {
    pub steps: Vec<(&'static str, std::time::Duration)>,
}

/// The longest a change may take to reach a service in these tests. The target is about a
/// second (typically far less); the bound is loose so a busy CI machine does not fail the
/// test, and the measured times are printed.
pub const BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// Drives a service through every way access ends, by publishing auth's events as auth
/// would, and checks `probe` (a request that needs shop staff in `shop`, answering its HTTP
/// status) after each: a new shop works for a token minted before it existed (no refresh);
/// staff work; suspended or removed staff get 403; a revoked session (logout, a reused
/// refresh token, logout everywhere) and a disabled or deleted account get 401.
pub async fn revocation_scenario<F, Fut>(
    broker: &bus::Broker,
    exchange: &str,
    key: &crate::jwt::SigningKey,
    probe: F,
) -> Latencies
where
    F: Fn(ShopId, String) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    use chrono::Utc;
    use contracts::auth::{MemberChanged, SessionRevoked, ShopCreated, UserChanged};
    use contracts::common::{Recipient, ShopBrand};
    use platform::auth::Role;
    use uuid::Uuid;

    let shop = ShopId::new();
    let mut out = Latencies::default();
    // Tokens name no shops: what they may do comes from the projection only.
    let token = |sub: platform::ids::UserId, session: Uuid| {
        let mut c = crate::jwt::claims(Role::ShopStaff, &[], 3_600);
        c.sub = sub;
        c.sid = Some(session.to_string());
        key.sign(&c)
    };
    async fn until<F2, Fut2>(probe: &F2, shop: ShopId, token: &str, want: u16) -> std::time::Duration
    where
        F2: Fn(ShopId, String) -> Fut2,
        Fut2: std::future::Future<Output = u16>,
    {
        let start = std::time::Instant::now();
        loop {
            let got = probe(shop, token.to_owned()).await;
            if got == want {
                return start.elapsed();
            }
            assert!(start.elapsed() < BOUND, "still {got} after {BOUND:?}, expected {want}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    // The owner signs in, then creates a shop: the old token works there.
    let owner = platform::ids::UserId::new();
    let owner_token = token(owner, Uuid::new_v4());
    assert_eq!(probe(shop, owner_token.clone()).await, 403, "before the shop exists");
    let created = ShopCreated {
        shop: ShopBrand { id: shop.0, name: "Access test".into(), logo_url: None, address: None, contact_phone: None },
        owner: Recipient { email: "owner@example.test".into(), name: None },
        owner_id: owner.0,
        currency: "LKR".into(),
        allow_credit: false,
        created_at: Utc::now(),
    };
    crate::events::publish(broker, exchange, &created, Uuid::now_v7()).await;
    out.steps.push(("new shop works", until(&probe, shop, &owner_token, 200).await));

    let member = |user: platform::ids::UserId, status: &str| MemberChanged {
        shop_id: shop.0,
        user_id: user.0,
        role: (status != "REMOVED").then(|| "SHOP_STAFF".to_owned()),
        status: status.to_owned(),
        changed_at: Utc::now(),
    };
    // Staff: added, suspended, back, removed.
    let staff = platform::ids::UserId::new();
    let staff_token = token(staff, Uuid::new_v4());
    crate::events::publish(broker, exchange, &member(staff, "ACTIVE"), Uuid::now_v7()).await;
    out.steps.push(("staff added", until(&probe, shop, &staff_token, 200).await));
    crate::events::publish(broker, exchange, &member(staff, "SUSPENDED"), Uuid::now_v7()).await;
    out.steps.push(("staff suspended", until(&probe, shop, &staff_token, 403).await));
    crate::events::publish(broker, exchange, &member(staff, "ACTIVE"), Uuid::now_v7()).await;
    until(&probe, shop, &staff_token, 200).await;
    crate::events::publish(broker, exchange, &member(staff, "REMOVED"), Uuid::now_v7()).await;
    out.steps.push(("staff removed", until(&probe, shop, &staff_token, 403).await));

    // A session ends (logout, a reused refresh token's family, logout everywhere): that
    // session's tokens stop, another session of the same user goes on.
    let cashier = platform::ids::UserId::new();
    let (s1, s2) = (Uuid::new_v4(), Uuid::new_v4());
    let (t1, t2) = (token(cashier, s1), token(cashier, s2));
    crate::events::publish(broker, exchange, &member(cashier, "ACTIVE"), Uuid::now_v7()).await;
    until(&probe, shop, &t1, 200).await;
    let revoked =
        SessionRevoked { session_id: s1, user_id: cashier.0, reason: "logout".into(), revoked_at: Utc::now() };
    crate::events::publish(broker, exchange, &revoked, Uuid::now_v7()).await;
    out.steps.push(("session revoked", until(&probe, shop, &t1, 401).await));
    assert_eq!(probe(shop, t2).await, 200, "the user's other session goes on");

    // The account is deleted (or suspended): every token of it stops.
    let gone = UserChanged { user_id: owner.0, status: "INACTIVE".into(), changed_at: Utc::now() };
    crate::events::publish(broker, exchange, &gone, Uuid::now_v7()).await;
    out.steps.push(("account deleted", until(&probe, shop, &owner_token, 401).await));
    println!("access changes reached the service after: {:?}", out.steps);
    out
}
