//! Returns: at most once per unit or quantity across returns (also under concurrency), the
//! refund never more than the goods were sold for, stock restocked through the event, the
//! wallet credited.

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::spawn_app;

fn id(v: &Value) -> Uuid {
    serde_json::from_value(v["id"].clone()).unwrap()
}

#[tokio::test]
async fn quantities_and_units_come_back_at_most_once_and_stock_is_restocked() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    app.serialized_product(shop, "Phone", "500.00", &["IMEI-9"]).await;
    let token = app.staff(shop).await;
    let (status, order) = app
        .order(
            json!({"shopId": shop, "items": [{"productId": rice, "quantity": 3}, {"barcode": "IMEI-9"}],
                   "discount": {"type": "FIXED", "value": "80.00"},
                   "payments": [{"method": "CASH", "amount": "720.00"}]}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(app.level(rice).await, (7, 0));
    let path = format!("/orders/{}/returns", id(&order));

    // Two of the three bags; the value is their share after the discount (300 - 30 = 270).
    let (status, first) =
        app.call("POST", &path, Some(json!({"items": [{"productId": rice, "quantity": 2}]})), &token).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["totalValue"], "180.00");
    assert_eq!(first["orderStatus"], "PARTIALLY_REFUNDED");
    assert_eq!(first["refunds"][0], json!({"method": "CASH", "amount": "180.00"}));
    // Two more bags: only one is left to return.
    let (status, refused) =
        app.call("POST", &path, Some(json!({"items": [{"productId": rice, "quantity": 2}]})), &token).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "RETURN_ITEM_NOT_IN_ORDER");
    let line = order["orderItems"][0]["id"].clone();
    let (status, refused) =
        app.call("POST", &path, Some(json!({"items": [{"orderItemId": line, "quantity": 2}]})), &token).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("RETURN_EXCEEDS_SOLD")), "{refused}");
    // More refund than value is refused.
    let (status, refused) = app
        .call(
            "POST",
            &path,
            Some(json!({"items": [{"orderItemId": line}], "refund": [{"method": "CARD", "amount": "91.00"}]})),
            &token,
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("REFUND_EXCEEDS_VALUE")), "{refused}");

    // The phone, by ten tills at once: one return.
    let body = json!({"items": [{"barcode": "IMEI-9"}], "refund": [{"method": "CARD", "amount": "400.00"}]});
    let answers = join_all((0..10).map(|_| app.call("POST", &path, Some(body.clone()), &token))).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|(s, a)| *s == 201 || (*s == 409 && a["code"] == "RETURN_EXCEEDS_SOLD")), "{answers:?}");
    // The last bag: everything is back, the value adds up to the total exactly.
    let (status, last) = app.call("POST", &path, Some(json!({"items": [{"orderItemId": line}]})), &token).await;
    assert_eq!(status, 201, "{last}");
    assert_eq!(last["orderStatus"], "REFUNDED");
    let (returned, value): (i64, i64) =
        sqlx::query_as("select count(*), sum(value_minor)::int8 from sales.returns where order_id = $1")
            .bind(id(&order))
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!((returned, value), (3, 72_000), "the returns add up to the order total");
    let refunded: i64 = sqlx::query_scalar(
        "select sum(amount_minor)::int8 from sales.ledger where order_id = $1 and source = 'REFUND' and direction = 'OUT'",
    )
    .bind(id(&order))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(refunded, 18_000 + 40_000 + 9_000);
    // Stock: restocked through sales.return.completed (stock's consumer).
    for _ in 0..100 {
        if app.level(rice).await == (10, 0) && app.unit_status("IMEI-9").await == "AVAILABLE" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.level(rice).await, (10, 0));
    assert_eq!(app.unit_status("IMEI-9").await, "AVAILABLE");
    app.stop();
}

#[tokio::test]
async fn a_refund_to_the_wallet_credits_it_and_drafts_cannot_be_returned() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 10).await;
    let token = app.staff(shop).await;
    let customer = app.seed_person("Anu", "anu@example.test").await;
    let (status, order) = app
        .order(
            json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice, "quantity": 2}],
                   "payments": [{"method": "CASH", "amount": "200.00"}]}),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let path = format!("/orders/{}/returns", id(&order));
    let (status, back) = app
        .call(
            "POST",
            &path,
            Some(json!({"items": [{"productId": rice}], "refund": [{"method": "WALLET", "amount": 100}], "restock": false,
                        "reason": "torn bag"})),
            &token,
        )
        .await;
    assert_eq!(status, 201, "{back}");
    assert_eq!(back["restocked"], false);
    let (status, wallet) = app.call("GET", &format!("/customer-wallet/{shop}/{customer}"), None, &token).await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!(wallet["balance"], "100.00");
    assert_eq!(wallet["transactions"][0]["type"], "REFUND");
    let event: Value =
        sqlx::query_scalar("select payload from sales.outbox where message_type = 'sales.return.completed'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(event["customer"]["email"], "anu@example.test", "a return receipt goes to the customer");
    assert_eq!(event["restocked"], false);
    assert_eq!(app.level(rice).await, (8, 0), "damaged goods stay off the shelf");

    let (status, draft) =
        app.order(json!({"shopId": shop, "status": "DRAFT", "items": [{"productId": rice}]}), &token, None).await;
    assert_eq!(status, 201, "{draft}");
    let (status, refused) = app
        .call("POST", &format!("/orders/{}/returns", id(&draft)), Some(json!({"items": [{"productId": rice}]})), &token)
        .await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("ORDER_STATE")), "{refused}");
    app.stop();
}

#[tokio::test]
async fn loyalty_points_are_earned_by_a_sale_and_taken_back_by_its_return() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let owner = app.owner(shop).await;
    let (status, product) = app
        .stock_call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Tea", "sellPrice": "50.00", "loyaltyPoints": 5})),
            &owner,
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let tea = id(&product);
    let (status, _) =
        app.stock_call("POST", &format!("/products/{tea}/receive"), Some(json!({"quantity": 10})), &owner).await;
    assert_eq!(status, 200);
    let customer = app.seed_person("Lal", "lal@example.test").await;
    let (status, order) = app
        .order(
            json!({"shopId": shop, "customerId": customer, "items": [{"productId": tea, "quantity": 3}],
                   "payments": [{"method": "CASH", "amount": "150.00"}]}),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["orderItems"][0]["loyaltyPoints"], 15);
    let wallet_path = format!("/customer-wallet/{shop}/{customer}");
    let (_, wallet) = app.call("GET", &wallet_path, None, &owner).await;
    assert_eq!((wallet["loyaltyPoints"].as_i64(), wallet["balance"].as_str()), (Some(15), Some("0.00")));

    let (status, back) = app
        .call("POST", &format!("/orders/{}/returns", id(&order)), Some(json!({"items": [{"productId": tea}]})), &owner)
        .await;
    assert_eq!(status, 201, "{back}");
    let (_, wallet) = app.call("GET", &wallet_path, None, &owner).await;
    assert_eq!(wallet["loyaltyPoints"], 10, "{wallet}");
    assert_eq!(wallet["transactions"][0]["type"], "LOYALTY_REVERSED");
    app.stop();
}
