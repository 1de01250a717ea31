//! Input a careless or hostile client sends: NUL characters (refused with 422 by the
//! shared extractors, never a 500 or 503), and another shop's reservation id (a permanent
//! 409, not a "try again").

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_nul_character_anywhere_is_422_and_stores_nothing() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let product = app.bulk_product(shop, "Cable", "500.00", 5).await;
    let cases = [
        ("search", "GET", format!("/products?shopId={shop}&search=a%00b"), None),
        (
            "product image",
            "POST",
            "/products".to_owned(),
            Some(json!({"shopId": shop, "name": "Mug", "sellPrice": "10.00", "imageUrls": ["a\u{0}b"]})),
        ),
        ("product name", "PUT", format!("/products/{product}"), Some(json!({"name": "Cab\u{0}le"}))),
        (
            "reservation barcode",
            "POST",
            "/reservations".to_owned(),
            Some(json!({"shopId": shop, "lines": [{"barcode": "SN\u{0}1"}], "ttlSeconds": 60})),
        ),
    ];
    for (name, method, path, body) in cases {
        let (s, b) = app.call(method, &path, body, Some(&t)).await;
        assert_eq!((s, b["code"].as_str()), (422, Some("VALIDATION_FAILED")), "{name}: {b}");
    }
    let (s, p) = app.call("GET", &format!("/products/{product}"), None, Some(&t)).await;
    assert_eq!((s, p["name"].as_str()), (200, Some("Cable")), "nothing stored was changed");
}

#[tokio::test]
async fn another_shops_reservation_id_is_a_409_conflict() {
    let app = spawn_app().await;
    let (shop_a, shop_b) = (app.seed_shop().await, app.seed_shop().await);
    let (pa, pb) = (app.bulk_product(shop_a, "A", "1.00", 5).await, app.bulk_product(shop_b, "B", "1.00", 5).await);
    let id = Uuid::now_v7();
    let (ta, tb) = (app.staff(shop_a).await, app.staff(shop_b).await);
    let body = |shop: Uuid, product: Uuid| json!({"shopId": shop, "reservationId": id, "lines": [{"productId": product, "quantity": 1}], "ttlSeconds": 60});
    let (s, _) = app.call("POST", "/reservations", Some(body(shop_a, pa)), Some(&ta)).await;
    assert_eq!(s, 201);
    let (s, b) = app.call("POST", "/reservations", Some(body(shop_b, pb)), Some(&tb)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("RESERVATION_ID_TAKEN")), "{b}");
    let (s, _) = app.call("POST", "/reservations", Some(body(shop_a, pa)), Some(&ta)).await;
    assert_eq!(s, 201, "the owner's retry is the same reservation");
    assert_eq!(app.assert_consistent(pa).await, (5, 1));
    assert_eq!(app.assert_consistent(pb).await, (5, 0));
}
