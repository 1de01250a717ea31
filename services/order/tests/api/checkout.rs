//! The checkout: both order shapes, idempotency, compensation on every failure path, and
//! what a booked sale leaves in the ledger, the outbox and stock.

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_pausing};

fn id(v: &Value) -> Uuid {
    serde_json::from_value(v["id"].clone()).unwrap()
}

#[tokio::test]
async fn sells_bulk_and_serialized_goods_and_books_every_movement() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice 1kg", "100.00", 10).await;
    let phone = app.serialized_product(shop, "Phone X", "500.00", &["IMEI-1", "IMEI-2"]).await;
    let token = app.staff(shop).await;

    let (status, order) = app
        .order(
            json!({"shopId": shop, "items": [{"productId": rice, "quantity": 3}, {"barcode": "IMEI-1"}],
                   "payments": [{"method": "CASH", "amount": "1000.00"}], "note": "first sale"}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["orderNumber"], "ORD-000001");
    assert_eq!(order["sequence"], 1);
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!((order["subtotal"].as_str(), order["total"].as_str()), (Some("800.00"), Some("800.00")));
    assert_eq!((order["paid"].as_str(), order["change"].as_str()), (Some("1000.00"), Some("200.00")));
    assert_eq!(order["orderItems"].as_array().unwrap().len(), 2);
    assert_eq!(order["orderItems"][1]["barcode"], "IMEI-1");
    assert_eq!(order["orderItems"][0]["product"]["name"], "Rice 1kg");
    assert!(order["orderItems"][1]["warrantyUntil"].is_string(), "a serialized unit carries its warranty");

    // Stock left for good: committed, nothing held.
    assert_eq!(app.level(rice).await, (7, 0));
    assert_eq!(app.unit_status("IMEI-1").await, "SOLD");
    assert_eq!(app.unit_status("IMEI-2").await, "AVAILABLE");
    let _ = phone;
    // Money: the sale in, the change out, with the order's number in the description.
    let ledger: Vec<(String, String, String, i64, String)> = sqlx::query_as(
        "select method, direction, source, amount_minor, description from sales.ledger where shop_id = $1 order by direction",
    )
    .bind(shop)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        vec![
            ("CASH".into(), "IN".into(), "SALE".into(), 100_000, "Order #ORD-000001".into()),
            ("CASH".into(), "OUT".into(), "CHANGE".into(), 20_000, "Change, order #ORD-000001".into()),
        ]
    );
    let events: i64 = sqlx::query_scalar(
        "select count(*) from sales.outbox where message_type = 'sales.order.completed' and payload->>'orderId' = $1",
    )
    .bind(id(&order).to_string())
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(events, 1, "the completed event is written with the order");

    // The sold unit cannot be sold again.
    let (status, again) = app
        .order(
            json!({"shopId": shop, "items": [{"barcode": "IMEI-1"}], "payments": [{"method": "CARD", "amount": "500.00"}]}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["code"], "STOCK_UNIT_UNAVAILABLE");
    assert_eq!(app.count("orders", shop).await, 1);
    app.stop();
}

#[tokio::test]
async fn the_first_systems_order_shape_works_unchanged() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let phone = app.serialized_product(shop, "Phone X", "500.00", &["SN-1", "SN-2"]).await;
    let token = app.owner(shop).await;

    // As the first Cashvio's point of sale sends it: numbers for money, flat customer
    // fields, discount + discountType, draft/sendReceiptEmail/print, no Idempotency-Key.
    let (status, order) = app
        .order(
            json!({"shopId": shop, "customerName": "Nimal", "customerEmail": "nimal@example.test",
                   "customerPhone": "+94 77 123 4567",
                   "items": [{"productId": phone, "barcodes": ["SN-1", "SN-2"], "customPrice": 450}],
                   "payments": [{"amount": 810, "method": "CASH"}],
                   "discount": 10, "discountType": "PERCENTAGE", "note": "", "draft": false,
                   "sendReceiptEmail": true, "print": true, "duePaidAmount": 0, "extraWalletAmount": 0}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["subtotal"], "900.00");
    assert_eq!(order["discount"], "90.00");
    assert_eq!(order["total"], "810.00");
    assert_eq!(order["customer"]["name"], "Nimal");
    assert_eq!(order["customer"]["contactNumber"], "+94 77 123 4567");
    let line = &order["orderItems"][0];
    assert_eq!((line["sellingPrice"].as_str(), line["unitPrice"].as_str()), (Some("450.00"), Some("500.00")));
    assert!(line["priceOverriddenBy"].is_string(), "the override is recorded with who made it");

    // The receipt goes to the walk-in's address.
    let recipient: Option<String> = sqlx::query_scalar(
        "select payload->'customer'->>'email' from sales.outbox where message_type = 'sales.order.completed'",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(recipient.as_deref(), Some("nimal@example.test"));

    let (status, list) = app.call("GET", &format!("/orders?shopId={shop}"), None, &token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    assert_eq!(list["orders"], list["data"]);
    assert_eq!(list["meta"]["totalItems"], 1);
    let (status, one) = app.call("GET", &format!("/orders/{}", id(&order)), None, &token).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["orderNumber"], "ORD-000001");
    assert_eq!(one["payments"][0]["amount"], "810.00");

    // The wallet, history and warranty screens, as that client calls them.
    let customer = order["customerId"].as_str().unwrap().to_owned();
    let (status, wallet) = app.call("GET", &format!("/customer-wallet/{shop}/{customer}"), None, &token).await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!((wallet["balance"].as_str(), wallet["loyaltyPoints"].as_i64()), (Some("0.00"), Some(0)));
    let (status, history) = app.call("GET", &format!("/customer-orders/all/{customer}/history"), None, &token).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["customer"]["contactNumber"], "+94 77 123 4567");
    let sold = &history["shopData"][0]["orderHistory"]["orders"][0];
    assert_eq!((sold["orderNumber"].as_str(), sold["total"].as_str()), (Some("ORD-000001"), Some("810.00")));
    assert_eq!(sold["orderItems"][0]["product"]["name"], "Phone X");
    assert_eq!(history["shopData"][0]["orderHistory"]["wallet"]["balance"], "0.00");
    let (status, warranty) = app.call("GET", &format!("/customer-orders/all/{customer}/warranty"), None, &token).await;
    assert_eq!(status, 200, "{warranty}");
    assert_eq!((warranty["activeCount"].as_u64(), warranty["expiredCount"].as_u64()), (Some(2), Some(0)));

    // The same walk-in is found again by e-mail.
    let (status, second) = app
        .order(
            json!({"shopId": shop, "customerEmail": "NIMAL@example.test", "items": [{"productId": phone, "barcodes": ["SN-2"]}],
                   "payments": [{"amount": 500, "method": "CARD"}]}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409, "SN-2 was sold already: {second}");
    app.stop();
}

#[tokio::test]
async fn twenty_concurrent_posts_with_one_key_make_one_order() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 50).await;
    let token = app.staff(shop).await;
    let body = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 2}],
                      "payments": [{"method": "CASH", "amount": "200.00"}]});

    let answers = join_all((0..20).map(|_| app.order(body.clone(), &token, Some("till-7-sale-42")))).await;
    let first = answers[0].1.clone();
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
        assert_eq!(answer, &first, "every duplicate gets the first answer");
    }
    assert_eq!(app.count("orders", shop).await, 1);
    assert_eq!(app.count("payments", shop).await, 1);
    assert_eq!(app.count("ledger", shop).await, 1);
    let movements: i64 =
        sqlx::query_scalar("select count(*) from stock.movements where product_id = $1 and kind = 'SALE'")
            .bind(rice)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(movements, 1, "one stock movement");
    assert_eq!(app.level(rice).await, (48, 0));
    // The answer was stored in the booking's own transaction (its `now()` is the order's).
    let (stored, with_the_order): (serde_json::Value, bool) = sqlx::query_as(
        "select k.response, k.completed_at = o.created_at from sales.idempotency_keys k
           join sales.orders o on o.shop_id = k.shop_id where k.shop_id = $1 and k.key = 'till-7-sale-42'",
    )
    .bind(shop)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(stored, first);
    assert!(with_the_order, "the answer commits with the order");

    // The same key with another body is refused, and changes nothing.
    let other = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 3}],
                       "payments": [{"method": "CASH", "amount": "300.00"}]});
    let (status, refused) = app.order(other, &token, Some("till-7-sale-42")).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.count("orders", shop).await, 1);
    app.stop();
}

#[tokio::test]
async fn a_checkout_whose_till_hangs_up_still_books_and_its_retry_gets_the_answer() {
    // The service waits 1.5 s between the reserve and the booking; the till gives up sooner.
    let app = spawn_app_pausing(std::time::Duration::from_millis(1_500)).await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 50).await;
    let token = app.staff(shop).await;
    let body = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 2}],
                      "payments": [{"method": "CASH", "amount": "200.00"}]});

    let hung_up = app
        .http
        .post(format!("{}/orders", app.base_url))
        .bearer_auth(&token)
        .header("idempotency-key", "till-3-sale-9")
        .json(&body)
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.is_err_and(|e| e.is_timeout()), "the till hung up mid-checkout");

    // Its retry gets the answer of the run that went on without it: at once, not after
    // the key is given up for abandoned, and with one order and one sale of stock.
    let started = std::time::Instant::now();
    let (status, answer) = app.order(body, &token, Some("till-3-sale-9")).await;
    assert_eq!(status, 201, "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(app.count("orders", shop).await, 1);
    // The answer commits with the booking; the stock's commit follows it.
    let mut level = app.level(rice).await;
    for _ in 0..50 {
        if level == (48, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        level = app.level(rice).await;
    }
    assert_eq!(level, (48, 0), "sold once, nothing held");
    app.stop();
}

#[tokio::test]
async fn a_failed_checkout_books_nothing_and_holds_nothing() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 5).await;
    let token = app.staff(shop).await;

    let cases = [
        (
            "payment short, no customer to owe it",
            json!({"shopId": shop, "items": [{"productId": rice, "quantity": 2}], "payments": [{"method": "CASH", "amount": "150.00"}]}),
            422,
            "PAYMENT_SHORT",
        ),
        (
            "a card cannot give change",
            json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CARD", "amount": "150.00"}]}),
            422,
            "CHANGE_WITHOUT_CASH",
        ),
        (
            "more than stock has",
            json!({"shopId": shop, "items": [{"productId": rice, "quantity": 6}], "payments": [{"method": "CASH", "amount": "600.00"}]}),
            409,
            "STOCK_INSUFFICIENT",
        ),
        (
            "a product of no shop",
            json!({"shopId": shop, "items": [{"productId": Uuid::now_v7(), "quantity": 1}], "payments": [{"method": "CASH", "amount": "1.00"}]}),
            404,
            "PRODUCT_NOT_FOUND",
        ),
        (
            "an unknown barcode",
            json!({"shopId": shop, "items": [{"barcode": "NOPE"}], "payments": [{"method": "CASH", "amount": "1.00"}]}),
            404,
            "ITEM_NOT_FOUND",
        ),
        (
            "a customer the shop does not have",
            json!({"shopId": shop, "customerId": Uuid::now_v7(), "items": [{"productId": rice, "quantity": 1}],
                   "payments": [{"method": "CASH", "amount": "100.00"}]}),
            404,
            "CUSTOMER_NOT_FOUND",
        ),
    ];
    for (why, body, want_status, want_code) in cases {
        let (status, answer) = app.order(body, &token, Some(&Uuid::now_v7().to_string())).await;
        assert_eq!(status, want_status, "{why}: {answer}");
        assert_eq!(answer["code"], want_code, "{why}: {answer}");
        assert_eq!(answer["message"], answer["detail"], "{why}");
        assert_eq!(app.level(rice).await, (5, 0), "{why}: nothing stays reserved");
    }
    assert_eq!(app.count("orders", shop).await, 0);
    assert_eq!(app.count("payments", shop).await, 0);
    assert_eq!(app.count("ledger", shop).await, 0);
    let next: i64 = sqlx::query_scalar("select next_order_number from sales.shops where shop_id = $1")
        .bind(shop)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(next, 1, "failed checkouts take no order number");
    app.stop();
}

#[tokio::test]
async fn with_stock_stopped_a_checkout_answers_503_and_books_nothing() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 5).await;
    let token = app.staff(shop).await;
    app.stock_shutdown.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let body = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1}],
                      "payments": [{"method": "CASH", "amount": "100.00"}]});
    let (status, answer) = app.order(body.clone(), &token, Some("k-1")).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "STOCK_UNAVAILABLE");
    assert_eq!(app.count("orders", shop).await, 0);
    assert_eq!(app.count("ledger", shop).await, 0);

    // Stock comes back: the till's retry with the same key sells once.
    let (_url, restarted) = crate::helpers::start_stock(app.stock_config.clone()).await;
    let (status, order) = app.order(body, &token, Some("k-1")).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(app.level(rice).await, (4, 0));
    assert_eq!(app.count("orders", shop).await, 1);
    restarted.cancel();
    app.shutdown.cancel();
}

#[tokio::test]
async fn order_numbers_are_gapless_per_shop_under_concurrency() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let other_shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "10.00", 12).await;
    let token = app.staff(shop).await;
    // 20 tills at once for 12 units: 12 sell, 8 are refused, and the numbers are 1..=12.
    let body = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1}],
                      "payments": [{"method": "CASH", "amount": "10.00"}]});
    let answers = join_all((0..20).map(|_| app.order(body.clone(), &token, None))).await;
    let sold = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(sold, 12, "{answers:?}");
    assert!(answers.iter().all(|(s, a)| *s == 201 || (*s == 409 && a["code"] == "STOCK_INSUFFICIENT")), "{answers:?}");
    let mut numbers: Vec<i64> = sqlx::query_scalar("select order_number from sales.orders where shop_id = $1")
        .bind(shop)
        .fetch_all(&app.db.admin)
        .await
        .unwrap();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>());
    assert_eq!(app.level(rice).await, (0, 0));
    // Another shop's sequence is its own.
    let beans = app.bulk_product(other_shop, "Beans", "5.00", 1).await;
    let other_token = app.staff(other_shop).await;
    let (status, first) = app
        .order(
            json!({"shopId": other_shop, "items": [{"productId": beans}], "payments": [{"method": "CASH", "amount": 5}]}),
            &other_token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["orderNumber"], "ORD-000001");
    app.stop();
}

#[tokio::test]
async fn staff_price_overrides_follow_the_shops_setting() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let staff = app.staff(shop).await;
    let owner = app.owner(shop).await;
    let (status, settings) =
        app.call("PUT", &format!("/shops/{shop}/settings"), Some(json!({"staffPriceOverride": false})), &owner).await;
    assert_eq!(status, 200, "{settings}");

    let cheaper = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1, "customPrice": "80.00"}],
                         "payments": [{"method": "CASH", "amount": "80.00"}]});
    let (status, refused) = app.order(cheaper.clone(), &staff, None).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "PRICE_OVERRIDE_FORBIDDEN");
    assert_eq!(app.level(rice).await, (10, 0), "the refused sale holds nothing");
    // Stock's own price is no override, so staff may send it.
    let same = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1, "customPrice": 100}],
                      "payments": [{"method": "CASH", "amount": "100.00"}]});
    let (status, ok) = app.order(same, &staff, None).await;
    assert_eq!(status, 201, "{ok}");
    assert!(ok["orderItems"][0]["priceOverriddenBy"].is_null());
    let (status, by_owner) = app.order(cheaper, &owner, None).await;
    assert_eq!(status, 201, "{by_owner}");
    assert_eq!(by_owner["total"], "80.00");
    assert_eq!(by_owner["orderItems"][0]["listPrice"], "100.00");
    app.stop();
}

#[tokio::test]
async fn bad_order_bodies_are_refused_with_stable_codes_and_store_nothing() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let foreign_shop = app.seed_shop().await;
    let foreign = app.bulk_product(foreign_shop, "Theirs", "1.00", 10).await;
    let token = app.staff(shop).await;
    let item = json!([{"productId": rice, "quantity": 1}]);
    let pay = json!([{"method": "CASH", "amount": "100.00"}]);
    let with = |field: &str, value: Value| {
        let mut body = json!({"shopId": shop, "items": item, "payments": pay});
        body[field] = value;
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("items is not a list", with("items", json!("rice")), 422, "VALIDATION_FAILED"),
        ("no items", with("items", json!([])), 422, "VALIDATION_FAILED"),
        ("zero quantity", with("items", json!([{"productId": rice, "quantity": 0}])), 422, "VALIDATION_FAILED"),
        ("negative quantity", with("items", json!([{"productId": rice, "quantity": -2}])), 422, "VALIDATION_FAILED"),
        (
            "huge quantity",
            with("items", json!([{"productId": rice, "quantity": 10_000_000_000i64}])),
            422,
            "VALIDATION_FAILED",
        ),
        ("quantity as text", with("items", json!([{"productId": rice, "quantity": "2"}])), 422, "VALIDATION_FAILED"),
        ("neither product nor barcode", with("items", json!([{"quantity": 1}])), 422, "VALIDATION_FAILED"),
        ("a barcode twice", with("items", json!([{"barcode": "A"}, {"barcode": "A"}])), 422, "VALIDATION_FAILED"),
        ("empty barcode", with("items", json!([{"barcode": " "}])), 422, "VALIDATION_FAILED"),
        ("an unknown item field", with("items", json!([{"productId": rice, "price": 1}])), 422, "VALIDATION_FAILED"),
        (
            "negative custom price",
            with("items", json!([{"productId": rice, "customPrice": -1}])),
            422,
            "VALIDATION_FAILED",
        ),
        ("three decimals", with("payments", json!([{"method": "CASH", "amount": 100.001}])), 422, "MONEY_PRECISION"),
        (
            "negative payment",
            with("payments", json!([{"method": "CASH", "amount": "-100.00"}])),
            422,
            "VALIDATION_FAILED",
        ),
        (
            "huge payment",
            with("payments", json!([{"method": "CASH", "amount": "99999999999999999999"}])),
            422,
            "VALIDATION_FAILED",
        ),
        ("money as a bool", with("payments", json!([{"method": "CASH", "amount": true}])), 422, "VALIDATION_FAILED"),
        (
            "unknown method",
            with("payments", json!([{"method": "CHEQUE", "amount": "100.00"}])),
            422,
            "VALIDATION_FAILED",
        ),
        (
            "discount over 100 %",
            with("discount", json!({"type": "PERCENTAGE", "value": 101})),
            422,
            "VALIDATION_FAILED",
        ),
        (
            "negative fixed discount",
            with("discount", json!({"type": "FIXED", "value": "-5"})),
            422,
            "VALIDATION_FAILED",
        ),
        ("unknown discount type", with("discount", json!({"type": "BOGO", "value": 1})), 422, "VALIDATION_FAILED"),
        ("bad status", with("status", json!("SHIPPED")), 422, "VALIDATION_FAILED"),
        ("draft contradicts status", with("draft", json!(true)), 201, ""),
        ("bad e-mail", with("customerEmail", json!("not-mail")), 422, "VALIDATION_FAILED"),
        ("bad phone", with("customerPhone", json!("call me")), 422, "VALIDATION_FAILED"),
        ("long note", with("note", json!("x".repeat(2001))), 422, "VALIDATION_FAILED"),
        ("an unknown field", with("isAdmin", json!(true)), 422, "VALIDATION_FAILED"),
        ("shopId not a uuid", with("shopId", json!("shop-1")), 422, "VALIDATION_FAILED"),
        (
            "another shop's product",
            with("items", json!([{"productId": foreign, "quantity": 1}])),
            404,
            "PRODUCT_NOT_FOUND",
        ),
        ("another shop", with("shopId", json!(foreign_shop)), 403, "SHOP_ACCESS_DENIED"),
    ];
    let mut drafts = 0;
    for (why, body, want_status, want_code) in cases {
        let (status, answer) = app.order(body, &token, None).await;
        assert_eq!(status, want_status, "{why}: {answer}");
        if want_status == 201 {
            drafts += 1;
            assert_eq!(answer["status"], "DRAFT", "{why}");
            continue;
        }
        assert_eq!(answer["code"], want_code, "{why}: {answer}");
        assert!(answer["detail"].is_string(), "{why}: problem+json");
    }
    let malformed = app
        .http
        .post(format!("{}/orders", app.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"shopId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    // A number in exponent form is not an amount (json! would write 1e2 as 100.0).
    let exponent = format!(
        r#"{{"shopId": "{shop}", "items": [{{"productId": "{rice}"}}], "payments": [{{"method": "CASH", "amount": 1e2}}]}}"#
    );
    let answer = app
        .http
        .post(format!("{}/orders", app.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(exponent)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    assert_eq!(app.count("orders", shop).await, drafts, "only the draft was stored");
    assert_eq!(app.count("ledger", shop).await, 0);
    assert_eq!(app.level(rice).await, (10, 0), "a draft holds nothing");
    app.stop();
}

#[tokio::test]
async fn a_registered_customer_is_named_by_id_and_gets_the_receipt() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let token = app.staff(shop).await;
    let customer = app.seed_person("Kamala", "kamala@example.test").await;

    let body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice}],
                      "payments": [{"method": "CARD", "amount": "100.00", "reference": "AUTH-1"}]});
    let (status, order) = app.order(body, &token, None).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["customerId"], customer.to_string());
    assert_eq!(order["customer"]["email"], "kamala@example.test");
    assert_eq!(order["payments"][0]["reference"], "AUTH-1");
    let (status, mine) = app.call("GET", &format!("/orders?customerId={customer}"), None, &token).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["meta"]["totalItems"], 1);

    // Without a receipt wanted, the event carries no recipient.
    let body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice}], "sendReceiptEmail": false,
                      "payments": [{"method": "CASH", "amount": "100.00"}]});
    let (status, quiet) = app.order(body, &token, None).await;
    assert_eq!(status, 201, "{quiet}");
    let recipients: Vec<Option<String>> = sqlx::query_scalar(
        "select payload->'customer'->>'email' from sales.outbox where message_type = 'sales.order.completed' order by outbox_id",
    )
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(recipients, vec![Some("kamala@example.test".to_owned()), None]);
    app.stop();
}

#[tokio::test]
async fn a_draft_holds_nothing_and_completes_or_cancels_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let token = app.staff(shop).await;

    let draft = json!({"shopId": shop, "status": "DRAFT", "items": [{"productId": rice, "quantity": 2}],
                       "discount": {"type": "FIXED", "value": "20.00"}, "note": "hold for Mr Perera"});
    let (status, saved) = app.order(draft.clone(), &token, None).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!((saved["status"].as_str(), saved["total"].as_str()), (Some("DRAFT"), Some("180.00")));
    assert_eq!(app.level(rice).await, (10, 0), "a draft holds nothing");
    assert_eq!(app.count("ledger", shop).await, 0);

    let path = format!("/orders/{}/complete", id(&saved));
    let (status, short) =
        app.call("POST", &path, Some(json!({"payments": [{"method": "CASH", "amount": "100.00"}]})), &token).await;
    assert_eq!((status, short["code"].as_str()), (422, Some("PAYMENT_SHORT")), "{short}");
    assert_eq!(app.level(rice).await, (10, 0), "a refused completion holds nothing");
    let (status, done) =
        app.call("POST", &path, Some(json!({"payments": [{"method": "CASH", "amount": "200.00"}]})), &token).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["orderNumber"], saved["orderNumber"], "the draft's number");
    assert_eq!((done["total"].as_str(), done["change"].as_str()), (Some("180.00"), Some("20.00")));
    assert_eq!(done["note"], "hold for Mr Perera");
    assert_eq!(app.level(rice).await, (8, 0));
    let (status, again) =
        app.call("POST", &path, Some(json!({"payments": [{"method": "CASH", "amount": "200.00"}]})), &token).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("ORDER_STATE")), "{again}");
    let (status, no_cancel) = app.call("POST", &format!("/orders/{}/cancel", id(&saved)), None, &token).await;
    assert_eq!((status, no_cancel["code"].as_str()), (409, Some("ORDER_STATE")), "a sale is undone by a return");

    let (status, other) = app.order(draft, &token, None).await;
    assert_eq!(status, 201, "{other}");
    let (status, cancelled) = app.call("POST", &format!("/orders/{}/cancel", id(&other)), None, &token).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(app.level(rice).await, (8, 0));
    let numbers: Vec<i64> = sqlx::query_scalar("select order_number from sales.orders where shop_id = $1 order by 1")
        .bind(shop)
        .fetch_all(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(numbers, vec![1, 2], "drafts keep their numbers; none is skipped");
    app.stop();
}

#[tokio::test]
async fn a_sale_has_a_receipt_as_html_and_pdf_and_a_draft_has_none() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let tea = app.bulk_product(shop, "Tea <Special>", "50.00", 10).await;
    let token = app.staff(shop).await;
    let (status, order) = app
        .order(json!({"shopId": shop, "items": [{"productId": tea, "quantity": 2}], "payments": [{"method": "CASH", "amount": 100}]}), &token, None)
        .await;
    assert_eq!(status, 201, "{order}");
    let url = format!("{}/orders/{}/receipt", app.base_url, id(&order));
    let html = app.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(html.status().as_u16(), 200);
    assert!(html.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = html.text().await.unwrap();
    assert!(page.contains("Receipt #1") && page.contains("Test shop") && page.contains("100.00"), "{page}");
    assert!(page.contains("Tea &lt;Special&gt;") && !page.contains("<Special>"), "names are escaped: {page}");
    let pdf = app.http.get(&url).bearer_auth(&token).header("accept", "application/pdf").send().await.unwrap();
    assert_eq!(pdf.status().as_u16(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));

    let (status, draft) =
        app.order(json!({"shopId": shop, "status": "DRAFT", "items": [{"productId": tea}]}), &token, None).await;
    assert_eq!(status, 201, "{draft}");
    let (status, none) = app.call("GET", &format!("/orders/{}/receipt", id(&draft)), None, &token).await;
    assert_eq!((status, none["code"].as_str()), (409, Some("ORDER_STATE")), "{none}");
    let stranger = app.staff(app.seed_shop().await).await;
    let (status, _) = app.call("GET", &format!("/orders/{}/receipt", id(&order)), None, &stranger).await;
    assert_eq!(status, 404);
    app.stop();
}
