//! The order process SIGKILLed mid-checkout (after stock reserved, before the booking):
//! after a restart no money is booked without an order, the reservation expires by its TTL
//! (nothing held), and the till's retry with the same Idempotency-Key completes once.

use std::time::Duration;

use serde_json::json;
use testkit::service::ServiceProcess;

use crate::helpers::{spawn_app, TestApp, PREFIX, ROLE};

fn process_env(app: &TestApp, pause_ms: u64) -> Vec<(String, String)> {
    let mut env = testkit::service::binary_env(PREFIX, ROLE, &app.db, &app.jwks);
    env.retain(|(k, _)| k != "AMQP_EXCHANGE");
    let kms = crate::helpers::kms_config();
    env.extend(
        [
            ("AMQP_EXCHANGE", app.stock_config.common.amqp_exchange.clone()),
            ("STOCK_RPC_QUEUE", app.stock_config.rpc_queue.clone()),
            ("ORDER_QUEUE", testkit::unique("test_order_proc")),
            ("ORDER_STOCK_HOLD_SECS", "2".to_owned()),
            ("ORDER_TEST_PAUSE_AFTER_RESERVE_MS", pause_ms.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_ENDPOINT_URL", kms.endpoint_url.clone().unwrap_or_default()),
            ("KMS_KEY_ID", kms.key_id.clone()),
            ("KMS_CREATE_KEY", "true".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

#[tokio::test]
async fn a_checkout_killed_between_reserve_and_book_leaves_nothing_and_its_retry_sells_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let token = app.staff(shop).await;
    let binary = env!("CARGO_BIN_EXE_cashvio-order");
    let body = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 3}],
                      "payments": [{"method": "CASH", "amount": "300.00"}]});

    // A process that pauses 30 s after reserving: the kill lands there.
    let mut doomed = ServiceProcess::start(binary, &process_env(&app, 30_000)).await;
    let url = format!("http://127.0.0.1:{}", doomed.port);
    let request = {
        let (http, url, token, body) = (app.http.clone(), url.clone(), token.clone(), body.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", "till-3-sale-9")
                .json(&body)
                .send()
                .await
        })
    };
    let mut held = false;
    for _ in 0..200 {
        if app.level(rice).await == (10, 3) {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the checkout reserved before the kill");
    doomed.signal("KILL");
    let _ = doomed.child.wait().await;
    assert!(request.await.unwrap().is_err(), "the till saw the connection drop");

    // Nothing booked; the hold expires by its TTL.
    assert_eq!(app.count("orders", shop).await, 0);
    assert_eq!(app.count("payments", shop).await, 0);
    assert_eq!(app.count("ledger", shop).await, 0);
    let mut released = false;
    for _ in 0..100 {
        if app.level(rice).await == (10, 0) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(released, "the reservation expired by its TTL: {:?}", app.level(rice).await);

    // The dead run's key is taken over once it counts as abandoned (time moved on here).
    sqlx::query("update sales.idempotency_keys set created_at = now() - interval '1 hour' where key = 'till-3-sale-9'")
        .execute(&app.db.admin)
        .await
        .unwrap();
    let restarted = ServiceProcess::start(binary, &process_env(&app, 0)).await;
    let url = format!("http://127.0.0.1:{}", restarted.port);
    let (status, order) =
        app.request(&url, "POST", "/orders", Some(body.clone()), Some(&token), Some("till-3-sale-9")).await;
    assert_eq!(status, 201, "{order}");
    let (status, again) = app.request(&url, "POST", "/orders", Some(body), Some(&token), Some("till-3-sale-9")).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], order["id"], "the same order");
    assert_eq!(app.count("orders", shop).await, 1);
    assert_eq!(app.count("ledger", shop).await, 1);
    assert_eq!(app.level(rice).await, (7, 0), "sold once, nothing held");
    restarted.signal("TERM");
    app.stop();
}
