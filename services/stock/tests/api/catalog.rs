//! Catalog basics: shop scoping, validation, search, ledger, adjustments.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn products_are_scoped_to_their_shop_and_bad_input_is_422() {
    let app = spawn_app().await;
    let (a, b) = (app.seed_shop().await, app.seed_shop().await);
    let (ta, tb) = (app.staff(a), app.staff(b));
    let product = app.bulk_product(a, "Charger 20W", "2500.00", 10).await;
    let (status, _) = app.call("GET", &format!("/products/{product}"), None, Some(&tb)).await;
    assert_eq!(status, 404, "another shop's product does not exist for you");
    let (status, _) =
        app.call("POST", &format!("/products/{product}/receive"), Some(json!({"quantity": 5})), Some(&tb)).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", &format!("/products?shopId={a}"), None, Some(&tb)).await;
    assert_eq!(status, 403);
    let (status, _) = app.call("GET", "/products", None, None).await;
    assert_eq!(status, 401);

    let (status, page) = app.call("GET", "/products?search=CHAR", None, Some(&ta)).await;
    assert_eq!(status, 200);
    assert_eq!(page["meta"]["totalItems"], 1, "case-insensitive search: {page}");
    assert_eq!(page["data"][0]["available"], 10);
    assert_eq!(page["data"][0]["sellPrice"], "2500.00");

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "X", "sellPrice": "-1"}), "sellPrice"),
        (json!({"name": "X", "sellPrice": "1.234"}), "sellPrice"),
        (json!({"name": "X", "tracking": "MAGIC"}), "tracking"),
        (json!({"name": "X", "keepingUnits": -1}), "keepingUnits"),
    ] {
        let (status, p) = app.call("POST", "/products", Some(body.clone()), Some(&ta)).await;
        assert_eq!(status, 422, "{body}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{body}");
    }
    let (status, _) = app.call("POST", "/products", Some(json!({"name": "X", "price": "1.00"})), Some(&ta)).await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (s1, _) = app.call("POST", "/products", Some(json!({"name": "A", "barcode": "4791"})), Some(&ta)).await;
    let (s2, p) = app.call("POST", "/products", Some(json!({"name": "B", "barcode": "4791"})), Some(&ta)).await;
    assert_eq!((s1, s2, p["code"].as_str()), (201, 409, Some("PRODUCT_BARCODE_TAKEN")));
    let (s3, _) = app.call("POST", "/products", Some(json!({"name": "B", "barcode": "4791"})), Some(&tb)).await;
    assert_eq!(s3, 201, "barcodes are unique per shop, not globally");
}

#[tokio::test]
async fn adjustments_need_a_reason_never_go_below_reserved_and_land_in_the_ledger() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let token = app.staff(shop);
    let product = app.bulk_product(shop, "Earbuds", "3500.00", 10).await;
    let (status, _) = app.reserve_http(shop, json!([{"productId": product, "quantity": 6}]), 600).await;
    assert_eq!(status, 201);
    let (status, body) = app
        .call(
            "POST",
            &format!("/products/{product}/adjust"),
            Some(json!({"delta": -5, "reason": "water damage"})),
            Some(&token),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("STOCK_INSUFFICIENT")), "cannot remove reserved units");
    let (status, level) = app
        .call(
            "POST",
            &format!("/products/{product}/adjust"),
            Some(json!({"delta": -4, "reason": "water damage"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{level}");
    assert_eq!(level, json!({"onHand": 6, "reserved": 6, "available": 0}));
    let (status, _) = app
        .call("POST", &format!("/products/{product}/adjust"), Some(json!({"delta": 1, "reason": ""})), Some(&token))
        .await;
    assert_eq!(status, 422, "a reason is required");
    let (status, page) = app.call("GET", &format!("/products/{product}/movements"), None, Some(&token)).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = page["data"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADJUSTMENT", "RESERVE", "RECEIPT"]);
    assert_eq!(page["data"][0]["reason"], "water damage");
    assert!(page["data"][0]["actorId"].is_string(), "who did it");
    app.assert_consistent(product).await;
    let updated = sqlx::query("update stock.movements set reason = 'x'").execute(&app.db.admin).await;
    assert!(updated.is_err(), "the ledger is append-only");
    let (status, low) = app.call("GET", "/levels?lowStock=true", None, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(low["meta"]["totalItems"], 1, "{low}");
    let _ = Uuid::nil();
}
