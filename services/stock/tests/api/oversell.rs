//! Concurrency: hundreds of simultaneous reservations (over RPC and HTTP) never oversell,
//! multi-line orders are all-or-nothing without deadlock, and one serialized unit goes to
//! one till.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

/// One reservation attempt, alternating the two ways in.
async fn attempt(
    app: &TestApp,
    shop: Uuid,
    i: usize,
    lines: serde_json::Value,
    ttl: u32,
) -> Result<serde_json::Value, String> {
    if i.is_multiple_of(2) {
        app.reserve_rpc(shop, lines, ttl).await
    } else {
        let (status, body) = app.reserve_http(shop, lines, ttl).await;
        match status {
            201 => Ok(body),
            _ => Err(body["code"].as_str().unwrap_or("?").to_owned()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_reservations_for_a_hundred_units_never_oversell() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Screen protector", "750.00", 100).await;

    // Phase 1: 500 at once, a third of them with a 2-second life.
    let attempts = (0..500).map(|i| {
        let ttl = if i % 3 == 0 { 2 } else { 600 };
        let app = &app;
        async move { (ttl, attempt(app, shop, i, json!([{"productId": product, "quantity": 1}]), ttl).await) }
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<(u32, serde_json::Value)> =
        results.iter().filter_map(|(ttl, r)| r.as_ref().ok().map(|v| (*ttl, v.clone()))).collect();
    let refused: Vec<&String> = results.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert_eq!(won.len(), 100, "exactly the stock on hand was reserved");
    assert!(refused.iter().all(|c| *c == "STOCK_INSUFFICIENT"), "the rest were refused as insufficient: {refused:?}");
    assert_eq!(won[0].1["lines"][0]["unitPrice"], "750.00");
    assert_eq!(app.assert_consistent(product).await, (100, 100));

    // Phase 2: release 20 long-lived holds (some twice: release is idempotent) and let the
    // short ones expire.
    let mut long: Vec<Uuid> = won
        .iter()
        .filter(|(ttl, _)| *ttl == 600)
        .map(|(_, v)| serde_json::from_value(v["reservationId"].clone()).unwrap())
        .collect();
    let short = won.iter().filter(|(ttl, _)| *ttl == 2).count();
    long.shuffle(&mut rand::thread_rng());
    let token = app.staff(shop).await;
    for id in long.iter().take(20) {
        for _ in 0..2 {
            let (status, body) = app.call("POST", &format!("/reservations/{id}/release"), None, Some(&token)).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let still_held = 100 - 20 - short;
    let (_, reserved) = app.assert_consistent(product).await;
    assert_eq!(usize::try_from(reserved).unwrap(), still_held, "released and expired holds gave their units back");
    let expired: i64 = sqlx::query_scalar("select count(*) from stock.reservations where status = 'EXPIRED'")
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(usize::try_from(expired).unwrap(), short);

    // Phase 3: another burst gets exactly what is free again.
    let attempts = (0..200).map(|i| attempt(&app, shop, i, json!([{"productId": product, "quantity": 1}]), 600));
    let results = futures::future::join_all(attempts).await;
    let won2 = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won2, 100 - still_held, "exactly the freed units");
    assert_eq!(app.assert_consistent(product).await, (100, 100));

    // Committing sells: on hand drops, idempotently.
    let id = long[30];
    for _ in 0..2 {
        let (status, body) = app
            .call("POST", &format!("/reservations/{id}/commit"), Some(json!({"orderId": Uuid::new_v4()})), Some(&token))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "COMMITTED");
    }
    let (status, body) = app.call("POST", &format!("/reservations/{id}/release"), None, Some(&token)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("RESERVATION_COMMITTED")));
    assert_eq!(app.assert_consistent(product).await, (99, 99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_multi_line_orders_are_all_or_nothing_without_deadlock() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let mut products = Vec::new();
    for i in 0..20 {
        products.push(app.bulk_product(shop, &format!("Product {i}"), "100.00", 30).await);
    }
    let orders: Vec<Vec<(Uuid, i64)>> = (0..300)
        .map(|_| {
            let mut rng = rand::thread_rng();
            let mut picked = products.clone();
            picked.shuffle(&mut rng);
            picked.into_iter().take(rng.gen_range(2..=4)).map(|p| (p, rng.gen_range(1..=3))).collect()
        })
        .collect();
    let attempts = orders.iter().enumerate().map(|(i, lines)| {
        let body: Vec<serde_json::Value> = lines.iter().map(|(p, q)| json!({"productId": p, "quantity": q})).collect();
        let app = &app;
        async move { attempt(app, shop, i, json!(body), 600).await }
    });
    let results = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(attempts))
        .await
        .expect("no deadlock: every request was answered");

    let mut granted = 0;
    for (lines, result) in orders.iter().zip(&results) {
        if let Ok(view) = result {
            granted += 1;
            let id: Uuid = serde_json::from_value(view["reservationId"].clone()).unwrap();
            let held: Vec<(Uuid, i32)> = sqlx::query_as("select product_id, quantity from stock.reservation_lines where reservation_id = $1 and status = 'HELD' order by line_no")
                .bind(id)
                .fetch_all(&app.db.admin)
                .await
                .unwrap();
            let want: Vec<(Uuid, i32)> = lines.iter().map(|(p, q)| (*p, i32::try_from(*q).unwrap())).collect();
            assert_eq!(held, want, "a granted order holds every one of its lines");
        }
    }
    assert!(granted > 0 && granted < 300, "some granted, some refused ({granted})");
    // No partial reservation left behind: every line still held belongs to a granted order.
    let partial: i64 = sqlx::query_scalar(
        "select count(*) from stock.reservations r
          where exists (select 1 from stock.reservation_lines l where l.reservation_id = r.reservation_id and l.status = 'HELD')
            and exists (select 1 from stock.reservation_lines l where l.reservation_id = r.reservation_id and l.status <> 'HELD')",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(partial, 0, "no reservation is half held");
    let held_reservations: i64 =
        sqlx::query_scalar("select count(distinct reservation_id) from stock.reservation_lines where status = 'HELD'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(held_reservations, granted, "held reservations are exactly the granted ones");
    for p in &products {
        app.assert_consistent(*p).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tills_reserving_one_serialized_unit_one_wins() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let token = app.staff(shop).await;
    let (status, p) = app
        .call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Galaxy A15", "tracking": "SERIALIZED", "warrantyMonths": 12})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let product: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
    for imei in ["IMEI-1", "IMEI-2"] {
        let (status, item) = app
            .call(
                "POST",
                "/items",
                Some(
                    json!({"productId": product, "barcode": imei, "broughtPrice": "40000.00", "sellPrice": "54990.00"}),
                ),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201, "{item}");
    }
    let (status, dup) = app
        .call(
            "POST",
            "/items",
            Some(json!({"productId": product, "barcode": "IMEI-1", "broughtPrice": "1.00", "sellPrice": "2.00"})),
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, dup["code"].as_str()),
        (409, Some("ITEM_BARCODE_TAKEN")),
        "barcode unique per shop, from the constraint"
    );

    // Twenty tills grab IMEI-1 at the same moment.
    let attempts = (0..20).map(|i| attempt(&app, shop, i, json!([{"barcode": "IMEI-1"}]), 600));
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&serde_json::Value> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "one till wins the unit");
    let losers: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(losers.iter().all(|c| *c == "STOCK_UNIT_UNAVAILABLE"), "{losers:?}");
    let line = &winners[0]["lines"][0];
    assert_eq!(line["barcode"], "IMEI-1");
    assert_eq!(line["unitPrice"], "54990.00");
    assert!(line["warrantyUntil"].is_string(), "warranty end travels with the line: {line}");
    let (status, rows): (String, Option<Uuid>) =
        sqlx::query_as("select status, reservation_id from stock.items where barcode = 'IMEI-1'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(status, "RESERVED");
    assert!(rows.is_some());
    // The other unit is still there for a count-based line; then none is left.
    let (status, _) = app.reserve_http(shop, json!([{"productId": product, "quantity": 1}]), 600).await;
    assert_eq!(status, 201);
    let (status, body) = app.reserve_http(shop, json!([{"productId": product, "quantity": 1}]), 600).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("STOCK_INSUFFICIENT")));
}
