//! Access ends at once: stock authorizes from its projection of auth's events, not from
//! the token's claims (see testkit::access::revocation_scenario for the steps).

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_removed_logged_out_and_deleted_lose_access_and_a_new_shop_works_at_once() {
    let app = spawn_app().await;
    let broker = bus::Broker::new(&testkit::amqp_url(), "stock-access-test");
    testkit::access::revocation_scenario(&broker, &app.exchange, &app.key, |shop, token| {
        let app = &app;
        async move { app.call("GET", &format!("/products?shopId={shop}"), None, Some(&token)).await.0 }
    })
    .await;
}

/// Sign-up returns a token naming the new shop while the shop's event is still on its way to
/// stock: the request waits for the projection instead of answering 403. The claim itself
/// grants nothing: a shop the projection never hears of is refused after the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_with_its_new_shop_waits_for_the_membership_and_a_claim_alone_grants_nothing() {
    use chrono::Utc;
    use contracts::auth::ShopCreated;
    use contracts::common::{Recipient, ShopBrand};
    use platform::auth::{Role, ShopRole};
    use platform::ids::ShopId;

    let app = spawn_app().await;
    let (shop, never) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let c = testkit::jwt::claims(
        Role::ShopOwner,
        &[(ShopId(shop), ShopRole::ShopOwner), (ShopId(never), ShopRole::ShopOwner)],
        600,
    );
    let token = app.key.sign(&c);
    let created = ShopCreated {
        shop: ShopBrand { id: shop, name: "New".into(), logo_url: None, address: None, contact_phone: None },
        owner: Recipient { email: "new@example.test".into(), name: None },
        owner_id: c.sub.0,
        currency: "LKR".into(),
        allow_credit: false,
        created_at: Utc::now(),
    };
    let (broker, exchange) = (bus::Broker::new(&testkit::amqp_url(), "stock-access-test"), app.exchange.clone());
    let late = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        testkit::events::publish(&broker, &exchange, &created, uuid::Uuid::now_v7()).await;
    });
    let (s, b) = app.call("GET", &format!("/products?shopId={shop}"), None, Some(&token)).await;
    assert_eq!(s, 200, "{b}");
    late.await.unwrap();
    let (s, b) = app.call("GET", &format!("/products?shopId={never}"), None, Some(&token)).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("SHOP_ACCESS_DENIED")), "{b}");
}
