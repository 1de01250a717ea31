//! Stock follows events: shops from auth, sales, cancellations and returns from orders
//! (idempotent through the inbox and the reservation ids); it announces low stock.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use contracts::common::{Recipient, ShopBrand};
use contracts::sales::{OrderCancelled, OrderCompleted, ReceiptLine, ReturnCompleted};

use cashvio_stock::domain::ItemId;
use cashvio_stock::reservations::Adjustment;
use platform::ids::ProductId;

use crate::helpers::spawn_app;

fn order(shop: Uuid, reservation: Uuid) -> OrderCompleted {
    OrderCompleted {
        order_id: Uuid::new_v4(),
        reservation_id: Some(reservation),
        order_number: 7,
        shop: ShopBrand { id: shop, name: "Test shop".into(), logo_url: None, address: None, contact_phone: None },
        currency: "LKR".into(),
        customer_id: None,
        customer: Some(Recipient { email: "c@example.test".into(), name: None }),
        lines: vec![],
        subtotal: "0.00".into(),
        discount_total: "0.00".into(),
        total: "0.00".into(),
        payments: vec![],
        change: "0.00".into(),
        wallet_balance_after: None,
        cashier_name: None,
        completed_at: Utc::now(),
    }
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_commit_release_and_restock_once_and_low_stock_is_announced() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    sqlx::query("update stock.products set keeping_units = 0").execute(&app.db.admin).await.unwrap();
    let product = app.bulk_product(shop, "Cable", "500.00", 10).await;
    sqlx::query("update stock.products set keeping_units = 5 where product_id = $1")
        .bind(product)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let t = app.staff(shop).await;
    // Reload the actor so it sees the new threshold.
    let (s, _) = app.call("PUT", &format!("/products/{product}"), Some(json!({"keepingUnits": 5})), Some(&t)).await;
    assert_eq!(s, 200);
    let broker = bus::Broker::new(&testkit::amqp_url(), "stock-events-test");

    // A sale: the reservation is committed from the event (delivered twice: one effect).
    let (_, r1) = app.reserve_http(shop, json!([{"productId": product, "quantity": 6}]), 600).await;
    let rid1: Uuid = serde_json::from_value(r1["reservationId"].clone()).unwrap();
    let sale = order(shop, rid1);
    let mid = Uuid::now_v7();
    testkit::events::publish(&broker, &app.exchange, &sale, mid).await;
    testkit::events::publish(&broker, &app.exchange, &sale, mid).await;
    assert!(
        eventually(async || {
            sqlx::query_scalar::<_, String>("select status from stock.reservations where reservation_id = $1")
                .bind(rid1)
                .fetch_one(&app.db.admin)
                .await
                .unwrap()
                == "COMMITTED"
        })
        .await
    );
    assert_eq!(app.assert_consistent(product).await, (4, 0));
    // 10 available went to 4, crossing the threshold of 5: one low-stock notice for the owner.
    let low: Vec<serde_json::Value> =
        sqlx::query_scalar("select payload from stock.outbox where message_type = 'stock.level.low'")
            .fetch_all(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(low.len(), 1, "{low:?}");
    assert_eq!(low[0]["owner"]["email"], "owner@example.test");
    assert_eq!(low[0]["available"], 4);

    // A cancelled order releases its hold.
    let (_, r2) = app.reserve_http(shop, json!([{"productId": product, "quantity": 2}]), 600).await;
    let rid2: Uuid = serde_json::from_value(r2["reservationId"].clone()).unwrap();
    let cancel = OrderCancelled {
        order_id: Uuid::new_v4(),
        shop_id: shop,
        reservation_id: Some(rid2),
        cancelled_at: Utc::now(),
    };
    testkit::events::publish(&broker, &app.exchange, &cancel, Uuid::now_v7()).await;
    assert!(
        eventually(async || {
            sqlx::query_scalar::<_, String>("select status from stock.reservations where reservation_id = $1")
                .bind(rid2)
                .fetch_one(&app.db.admin)
                .await
                .unwrap()
                == "RELEASED"
        })
        .await
    );

    // A return with restock puts units back, once even if the event comes twice.
    let ret = ReturnCompleted {
        return_id: Uuid::new_v4(),
        order_id: sale.order_id,
        order_number: 7,
        shop: sale.shop.clone(),
        currency: "LKR".into(),
        customer_id: None,
        customer: None,
        lines: vec![ReceiptLine {
            name: "Cable".into(),
            product_id: Some(product),
            barcode: None,
            quantity: 2,
            unit_price: "500.00".into(),
            discount: "0.00".into(),
            line_total: "1000.00".into(),
            warranty_until: None,
        }],
        refunds: vec![],
        total_refund: "1000.00".into(),
        restocked: true,
        wallet_balance_after: None,
        completed_at: Utc::now(),
    };
    testkit::events::publish(&broker, &app.exchange, &ret, Uuid::now_v7()).await;
    testkit::events::publish(&broker, &app.exchange, &ret, Uuid::now_v7()).await; // a second copy with a new message id
    assert!(eventually(async || app.assert_consistent(product).await == (6, 0)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.assert_consistent(product).await, (6, 0), "restocked once");
    let returns: i64 = sqlx::query_scalar("select count(*) from stock.movements where kind = 'RETURN'")
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(returns, 1);
}

#[tokio::test]
async fn idle_actors_stop_and_come_back_from_the_rows() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Adapter", "900.00", 5).await;
    let (s, _) = app.reserve_http(shop, json!([{"productId": product, "quantity": 1}]), 1).await;
    assert_eq!(s, 201);
    // The hold expires after 1 s; then nothing happens for the idle time (2 s in tests).
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let expired: String =
        sqlx::query_scalar("select status from stock.reservations").fetch_one(&app.db.admin).await.unwrap();
    assert_eq!(expired, "EXPIRED");
    let (s, r) = app.reserve_http(shop, json!([{"productId": product, "quantity": 5}]), 600).await;
    assert_eq!(s, 201, "a restarted actor rebuilds from the rows: {r}");
    app.assert_consistent(product).await;
}

/// Copies of one return that reach the product's actor together (a redelivery racing the
/// original, or two consumers) land in one unflushed batch: the second must not restock
/// again. Twenty copies at once, bulk and serialized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_return_restock_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;

    // Bulk: 10 received, 4 sold, then the return of 3 arrives 20 times at once.
    let cable = app.bulk_product(shop, "Cable", "500.00", 10).await;
    let (_, r) = app.reserve_http(shop, json!([{"productId": cable, "quantity": 4}]), 600).await;
    let (s, _) = app
        .call("POST", &format!("/reservations/{}/commit", r["reservationId"].as_str().unwrap()), None, Some(&t))
        .await;
    assert_eq!(s, 200);
    let return_id = Uuid::new_v4();
    let copies = (0..20).map(|_| {
        let stock = app.stock.clone();
        async move {
            let change = Adjustment {
                delta: 3,
                kind: cashvio_stock::domain::MovementKind::Return,
                reason: Some("return".into()),
                actor_id: None,
                unit_cost_minor: None,
                source_id: Some(return_id),
                supplier_id: None,
                meta: Default::default(),
            };
            stock.adjust(ProductId(cable), change).await
        }
    });
    for answer in futures::future::join_all(copies).await {
        answer.expect("every copy is answered");
    }
    assert_eq!(app.assert_consistent(cable).await, (9, 0), "6 left after the sale, 3 back once");
    let returns: i64 =
        sqlx::query_scalar("select count(*) from stock.movements where product_id = $1 and kind = 'RETURN'")
            .bind(cable)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(returns, 1);

    // Serialized: one unit sold, its return arrives 20 times at once; it is on sale again.
    let (_, p) = app
        .call("POST", "/products", Some(json!({"shopId": shop, "name": "Phone", "tracking": "SERIALIZED"})), Some(&t))
        .await;
    let phone: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
    let (s, item) = app
        .call(
            "POST",
            "/items",
            Some(json!({"productId": phone, "barcode": "IMEI-R1", "broughtPrice": "100.00", "sellPrice": "150.00"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{item}");
    let item_id: Uuid = serde_json::from_value(item["id"].clone()).unwrap();
    let (_, r) = app.reserve_http(shop, json!([{"barcode": "IMEI-R1"}]), 600).await;
    let (s, _) = app
        .call("POST", &format!("/reservations/{}/commit", r["reservationId"].as_str().unwrap()), None, Some(&t))
        .await;
    assert_eq!(s, 200);
    let return_id = Uuid::new_v4();
    let copies = (0..20).map(|_| {
        let stock = app.stock.clone();
        async move { stock.return_unit(ProductId(phone), ItemId(item_id), return_id, &Default::default()).await }
    });
    for answer in futures::future::join_all(copies).await {
        answer.expect("every copy is answered");
    }
    let (status, returns): (String, i64) = sqlx::query_as(
        "select i.status, (select count(*) from stock.movements m where m.item_id = i.item_id and m.kind = 'RETURN')
           from stock.items i where i.item_id = $1",
    )
    .bind(item_id)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!((status.as_str(), returns), ("AVAILABLE", 1), "back in stock once");
    let (s, again) = app.reserve_http(shop, json!([{"barcode": "IMEI-R1"}]), 600).await;
    assert_eq!(s, 201, "the returned unit can be sold again: {again}");
}

/// A return naming the same bulk product on two lines restocks both lines, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_with_two_lines_of_one_product_restocks_both_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Cable", "500.00", 10).await;
    let broker = bus::Broker::new(&testkit::amqp_url(), "stock-events-test");
    let sale = order(shop, Uuid::new_v4());
    let line = |quantity: i64| ReceiptLine {
        name: "Cable".into(),
        product_id: Some(product),
        barcode: None,
        quantity,
        unit_price: "500.00".into(),
        discount: "0.00".into(),
        line_total: "500.00".into(),
        warranty_until: None,
    };
    let ret = ReturnCompleted {
        return_id: Uuid::new_v4(),
        order_id: sale.order_id,
        order_number: 7,
        shop: sale.shop.clone(),
        currency: "LKR".into(),
        customer_id: None,
        customer: None,
        lines: vec![line(2), line(1)],
        refunds: vec![],
        total_refund: "1500.00".into(),
        restocked: true,
        wallet_balance_after: None,
        completed_at: Utc::now(),
    };
    testkit::events::publish(&broker, &app.exchange, &ret, Uuid::now_v7()).await;
    assert!(eventually(async || app.assert_consistent(product).await == (13, 0)).await, "both lines back");
    testkit::events::publish(&broker, &app.exchange, &ret, Uuid::now_v7()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.assert_consistent(product).await, (13, 0), "and only once");
}

/// The request behind a stock change is named in the events it causes: a receipt through
/// HTTP and a reservation's commit carry the request id and trace context into
/// `stock.level.changed` (and a crossing into `stock.level.low`).
#[tokio::test]
async fn level_events_carry_the_request_id_and_trace_context_of_their_request() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Lamp", "900.00", 5).await;
    sqlx::query("update stock.products set keeping_units = 4 where product_id = $1")
        .bind(product)
        .execute(&app.db.admin)
        .await
        .unwrap();
    app.stock.reload(ProductId(product)).await;
    let token = app.staff(shop).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let send = |path: String, body: serde_json::Value, rid: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            let res = app
                .http
                .post(format!("{}{path}", app.base_url))
                .bearer_auth(&token)
                .header("x-request-id", rid)
                .header("traceparent", traceparent)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (s, b) = send(format!("/products/{product}/receive"), json!({"quantity": 1}), "req-receive-1").await;
    assert_eq!(s, 200, "{b}");
    let (s, r) = send(
        "/reservations".to_owned(),
        json!({"shopId": shop, "lines": [{"productId": product, "quantity": 3}]}),
        "req-sale-2",
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let (s, b) =
        send(format!("/reservations/{}/commit", r["reservationId"].as_str().unwrap()), json!({}), "req-sale-2").await;
    assert_eq!(s, 200, "{b}");
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "select message_type, request_id, traceparent from stock.outbox
          where message_type like 'stock.level.%' and payload->>'productId' = $1::text order by outbox_id",
    )
    .bind(product)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    let tp = Some(traceparent.to_owned());
    assert!(rows.contains(&("stock.level.changed".into(), Some("req-receive-1".into()), tp.clone())), "{rows:?}");
    assert!(rows.contains(&("stock.level.changed".into(), Some("req-sale-2".into()), tp.clone())), "{rows:?}");
    // Available went 6 → 3, across keepingUnits 4: the low-stock notice names the sale's request.
    assert!(rows.iter().any(|(t, rid, _)| t == "stock.level.low" && rid.as_deref() == Some("req-sale-2")), "{rows:?}");
    app.shutdown.cancel();
}

/// A sale whose event arrives after its hold expired (the order service or the broker was
/// down past the hold) still takes its stock, the very unit it sold included, once however
/// often the event comes; a late sale whose stock went meanwhile is refused, logged, and not
/// retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_booked_after_its_hold_expired_takes_its_stock_late_and_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let cable = app.bulk_product(shop, "Cable", "500.00", 10).await;
    let token = app.staff(shop).await;
    let (status, p) = app
        .call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Galaxy A15", "tracking": "SERIALIZED"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let phone: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
    for imei in ["IMEI-1", "IMEI-2"] {
        let body = json!({"productId": phone, "barcode": imei, "broughtPrice": "400.00", "sellPrice": "549.00"});
        assert_eq!(app.call("POST", "/items", Some(body), Some(&token)).await.0, 201);
    }
    let status_of = |id: Uuid| {
        let db = app.db.admin.clone();
        async move {
            sqlx::query_scalar::<_, String>("select status from stock.reservations where reservation_id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let broker = bus::Broker::new(&testkit::amqp_url(), "stock-late-sale-test");

    // 3 cables and the unit IMEI-2, held for a second, run out before the sale's event comes.
    let lines = json!([{"productId": cable, "quantity": 3}, {"barcode": "IMEI-2"}]);
    let (status, hold) = app.reserve_http(shop, lines, 1).await;
    assert_eq!(status, 201, "{hold}");
    let held: Uuid = serde_json::from_value(hold["reservationId"].clone()).unwrap();
    assert!(eventually(async || status_of(held).await == "EXPIRED").await, "the hold ran out");
    assert_eq!(app.assert_consistent(cable).await, (10, 0));

    let sale = order(shop, held);
    for _ in 0..3 {
        // Three copies, each its own message id: the sale is taken once.
        testkit::events::publish(&broker, &app.exchange, &sale, Uuid::now_v7()).await;
    }
    let sold_late = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from stock.reservations where order_id = $1 and status = 'COMMITTED'",
        )
        .bind(sale.order_id)
        .fetch_one(&app.db.admin)
        .await
        .unwrap()
    };
    assert!(eventually(async || sold_late().await == 1).await, "the sale took its stock late");
    tokio::time::sleep(Duration::from_millis(500)).await; // the other copies
    assert_eq!(sold_late().await, 1);
    assert_eq!(app.assert_consistent(cable).await, (7, 0), "3 cables left the shop, once");
    let units: Vec<(String, String)> =
        sqlx::query_as("select barcode, status from stock.items where product_id = $1 order by barcode")
            .bind(phone)
            .fetch_all(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(units, [("IMEI-1".to_owned(), "AVAILABLE".to_owned()), ("IMEI-2".to_owned(), "SOLD".to_owned())]);

    // A late sale whose stock is gone meanwhile (another till holds all 7): refused, nothing
    // moves, and the event is not redelivered for ever (a sale after it is taken normally).
    let (_, hold) = app.reserve_http(shop, json!([{"productId": cable, "quantity": 2}]), 1).await;
    let short: Uuid = serde_json::from_value(hold["reservationId"].clone()).unwrap();
    assert!(eventually(async || status_of(short).await == "EXPIRED").await);
    let (status, _) = app.reserve_http(shop, json!([{"productId": cable, "quantity": 7}]), 600).await;
    assert_eq!(status, 201);
    let late = order(shop, short);
    testkit::events::publish(&broker, &app.exchange, &late, Uuid::now_v7()).await;
    let (_, next) = app.reserve_http(shop, json!([{"barcode": "IMEI-1"}]), 600).await;
    let next: Uuid = serde_json::from_value(next["reservationId"].clone()).unwrap();
    testkit::events::publish(&broker, &app.exchange, &order(shop, next), Uuid::now_v7()).await;
    assert!(eventually(async || status_of(next).await == "COMMITTED").await, "the queue moved on");
    assert_eq!(app.assert_consistent(cable).await, (7, 7), "the short late sale moved nothing");
}
