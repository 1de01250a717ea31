//! Crash safety: SIGKILL the stock process with live reservations and a batch in flight;
//! after a restart nothing granted is lost or doubled, and expired holds are released.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{config, spawn_app, PREFIX, ROLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_stock_process_loses_and_doubles_nothing() {
    // The in-process app prepares the data; the process under test is the real binary.
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Power bank", "6000.00", 1_000).await;
    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cfg = config(&app.db, &app.jwks);
    let mut env = testkit::service::binary_env(PREFIX, ROLE, &app.db, &app.jwks);
    env.push(("STOCK_QUEUE".into(), cfg.queue.clone()));
    env.push(("STOCK_RPC_QUEUE".into(), cfg.rpc_queue.clone()));
    let binary = env!("CARGO_BIN_EXE_cashvio-stock");
    let token = app.staff(shop).await;
    let http = reqwest::Client::new();
    let reserve = |base: String, ttl: u32| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let res = http
                .post(format!("{base}/reservations"))
                .bearer_auth(&token)
                .json(&json!({"shopId": shop, "lines": [{"productId": product, "quantity": 1}], "ttlSeconds": ttl}))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 201 => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| serde_json::from_value::<Uuid>(v["reservationId"].clone()).ok()),
                _ => None,
            }
        }
    };

    let process = testkit::service::ServiceProcess::start(binary, &env).await;
    let base = format!("http://127.0.0.1:{}", process.port);
    // Live holds: some that will expire during the outage, some that outlive it.
    let mut granted = Vec::new();
    for i in 0..40 {
        if let Some(id) = reserve(base.clone(), if i % 2 == 0 { 2 } else { 600 }).await {
            granted.push((id, i % 2 == 0));
        }
    }
    assert_eq!(granted.len(), 40);
    // A burst in flight when the process dies: kill it once part of the burst was answered,
    // so batches are being written at that moment.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let burst: Vec<_> = (0..400)
        .map(|_| {
            let (fut, done) = (reserve(base.clone(), 600), done.clone());
            tokio::spawn(async move {
                let r = fut.await;
                if r.is_some() {
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                r
            })
        })
        .collect();
    let start = std::time::Instant::now();
    while done.load(std::sync::atomic::Ordering::SeqCst) < 40 && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    process.signal("KILL");
    let mut process = process;
    let _ = process.child.wait().await;
    let mut answered = Vec::new();
    for b in burst {
        if let Ok(Some(id)) = b.await {
            answered.push(id);
        }
    }

    eprintln!("burst: {} of 400 answered before the kill", answered.len());
    assert!(
        answered.len() >= 40 && answered.len() < 400,
        "the kill landed in the middle of the burst ({})",
        answered.len()
    );
    // Every reservation a client was told about is in the database, exactly once.
    for (id, _) in &granted {
        let lines: i64 = sqlx::query_scalar("select count(*) from stock.reservation_lines where reservation_id = $1")
            .bind(id)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
        assert_eq!(lines, 1, "granted reservation {id} is stored once");
    }
    for id in &answered {
        let lines: i64 = sqlx::query_scalar("select count(*) from stock.reservation_lines where reservation_id = $1")
            .bind(id)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
        assert_eq!(lines, 1, "a reservation answered before the kill survived it");
    }
    app.assert_consistent(product).await;

    // Restart after the short holds' time is up: they are released on start.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let process = testkit::service::ServiceProcess::start(binary, &env).await;
    let base = format!("http://127.0.0.1:{}", process.port);
    // Touch the product so its actor starts and rebuilds from the rows.
    assert!(reserve(base.clone(), 600).await.is_some(), "the restarted service reserves");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (id, short) in &granted {
        let status: String = sqlx::query_scalar("select status from stock.reservation_lines where reservation_id = $1")
            .bind(id)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
        let want = if *short { "EXPIRED" } else { "HELD" };
        assert_eq!(status, want, "reservation {id} after restart");
    }
    let (on_hand, reserved) = app.assert_consistent(product).await;
    assert_eq!(on_hand, 1_000);
    let held: i64 = sqlx::query_scalar("select count(*) from stock.reservation_lines where status = 'HELD'")
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(reserved, held);
    process.signal("TERM");
}

/// A product actor that fails (its batch cannot be written and its state cannot be read back:
/// here the level table vanishes for a moment) is reported to the supervisor, forgotten, and
/// started again from the rows after its backoff on the next request: the product serves
/// again, the hold granted before the failure is still there and commits, and the refused
/// request left nothing behind.
#[tokio::test]
async fn a_failed_actor_restarts_from_the_rows_and_serves_again_with_nothing_lost() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Kettle", "4500.00", 10).await;
    let token = app.staff(shop).await;
    let (s, first) = app.reserve_http(shop, json!([{"productId": product, "quantity": 3}]), 600).await;
    assert_eq!(s, 201, "{first}");
    let running = app.stock.running();
    assert!(running >= 1);

    // The fault: the level table is gone, so the next batch fails and so does the reload.
    sqlx::query("alter table stock.levels rename to levels_away").execute(&app.db.admin).await.unwrap();
    let (s, refused) = app.reserve_http(shop, json!([{"productId": product, "quantity": 2}]), 600).await;
    assert_eq!((s, refused["code"].as_str()), (503, Some("STOCK_BUSY")), "{refused}");
    let mut forgotten = false;
    for _ in 0..100 {
        if app.stock.running() < running {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(forgotten, "the supervisor forgets the failed actor");
    sqlx::query("alter table stock.levels_away rename to levels").execute(&app.db.admin).await.unwrap();

    // Serving again (a new actor, after the backoff), from the rows: 3 held before, 2 now.
    let (s, second) = app.reserve_http(shop, json!([{"productId": product, "quantity": 2}]), 600).await;
    assert_eq!(s, 201, "{second}");
    assert_eq!(app.assert_consistent(product).await, (10, 5));
    let (s, b) = app
        .call("POST", &format!("/reservations/{}/commit", first["reservationId"].as_str().unwrap()), None, Some(&token))
        .await;
    assert_eq!(s, 200, "the hold from before the failure commits: {b}");
    assert_eq!(app.assert_consistent(product).await, (7, 2));
    let (s, b) = app.reserve_http(shop, json!([{"productId": product, "quantity": 6}]), 600).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("STOCK_INSUFFICIENT")), "5 left: {b}");
    app.shutdown.cancel();
}

/// A till's retry of a reservation that was settled, reaching an actor that no longer
/// remembers it (stopped when idle, restarted, or a shard's new owner): the rows answer
/// (RESERVATION_EXPIRED, on which the order service reserves afresh; RESERVATION_COMMITTED),
/// never a STOCK_BUSY that would repeat for as long as the till retries.
#[tokio::test]
async fn a_retried_settled_reservation_is_answered_from_the_rows_by_an_actor_that_forgot_it() {
    use platform::ids::ReservationId;

    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Cable", "100.00", 10).await;
    let lines = json!([{"productId": product, "quantity": 2}]);
    let meta = bus::MessageMeta::default();
    let released = Uuid::now_v7();
    app.reserve_rpc_as(released, shop, lines.clone(), 600).await.unwrap();
    app.stock.release(ReservationId(released)).await.unwrap();
    let sold = Uuid::now_v7();
    app.reserve_rpc_as(sold, shop, lines.clone(), 600).await.unwrap();
    app.stock.commit(ReservationId(sold), None, &meta).await.unwrap();

    app.stock.forget_all();
    assert_eq!(app.reserve_rpc_as(released, shop, lines.clone(), 600).await, Err("RESERVATION_EXPIRED".to_owned()));
    assert_eq!(app.reserve_rpc_as(sold, shop, lines.clone(), 600).await, Err("RESERVATION_COMMITTED".to_owned()));
    // The actor serves on: a new reservation is held, and the refused ones held nothing.
    app.reserve_rpc(shop, lines, 600).await.unwrap();
    assert_eq!(app.assert_consistent(product).await, (8, 2));
}
