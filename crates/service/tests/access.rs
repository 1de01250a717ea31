//! The runtime's access projection on its own, as the order service (which has no
//! endpoints of its own yet) and every later service use it: `project_access` with no
//! consumer of the service's own, a route that needs shop staff, auth's events published.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;

use platform::auth::{AuthUser, ShopRole};
use platform::http::Path;
use platform::ids::ShopId;
use platform::Problem;
use service::ServiceBase;
use testkit::jwt::{JwksServer, SigningKey};
use testkit::TestDb;

async fn probe(user: AuthUser, Path(shop): Path<ShopId>) -> Result<&'static str, Problem> {
    user.require_shop_role(shop, ShopRole::ShopStaff)?;
    Ok("member")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_only_projects_access_loses_and_gains_it_with_auths_events() {
    let db = TestDb::new().await.unwrap();
    let key = SigningKey::generate("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let config = testkit::service::common_config("order", "cashvio_order", "sales", &db, &jwks);
    let exchange = config.amqp_exchange.clone();
    let mut base = ServiceBase::new(config).unwrap();
    base.project_access(&testkit::unique("test_access"));
    let api = OpenApiRouter::new().route("/shops/{shop}/probe", get(probe));
    let running = base.start(api, 1 << 20).await.unwrap();
    let url = format!("http://127.0.0.1:{}", running.port());
    let stop = running.shutdown_token();
    let task = tokio::spawn(running.run_until_stopped());

    let http = reqwest::Client::new();
    let broker = bus::Broker::new(&testkit::amqp_url(), "service-access-test");
    testkit::access::revocation_scenario(&broker, &exchange, &key, |shop, token| {
        let (http, url) = (&http, &url);
        async move {
            http.get(format!("{url}/shops/{shop}/probe")).bearer_auth(token).send().await.unwrap().status().as_u16()
        }
    })
    .await;
    let projected: i64 =
        sqlx::query_scalar("select count(*) from sales.access_members").fetch_one(&db.admin).await.unwrap();
    assert_eq!(projected, 3, "owner, staff and cashier, in the service's own schema");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_of_one_caller_missing_the_cache_together_read_the_projection_once() {
    use platform::auth::AccessSource;
    use platform::ids::UserId;

    let db = TestDb::new().await.unwrap();
    let (user, shop) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    sqlx::query(
        "insert into sales.access_members (shop_id, user_id, role, status, changed_at) values ($1, $2, 'SHOP_OWNER', 'ACTIVE', now())",
    )
    .bind(shop)
    .bind(user)
    .execute(&db.admin)
    .await
    .unwrap();
    let access = std::sync::Arc::new(service::ProjectedAccess::new(db.service_pool("cashvio_order", "sales").unwrap()));

    let calls = (0..200).map(|_| {
        let access = access.clone();
        tokio::spawn(async move { access.access(UserId(user), None, &[]).await })
    });
    let answers = futures::future::join_all(calls).await;
    for a in answers {
        let a = a.unwrap().unwrap();
        assert_eq!(a.shops.get(&ShopId(shop)), Some(&ShopRole::ShopOwner), "each one the owner's answer");
    }
    // One read; a second only if the answer aged out (500 ms) while the 200 took their turns.
    assert!(access.reads() <= 2, "{} reads of the projection for 200 requests missing together", access.reads());
    assert!(access.reads() >= 1);
}
