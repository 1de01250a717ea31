//! Catalog basics: shop scoping, validation, search, ledger, adjustments.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn products_are_scoped_to_their_shop_and_bad_input_is_422() {
    let app = spawn_app().await;
    let (a, b) = (app.seed_shop().await, app.seed_shop().await);
    let (ta, tb) = (app.staff(a).await, app.staff(b).await);
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
    let token = app.staff(shop).await;
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

#[tokio::test]
async fn categories_hide_when_used_and_suppliers_in_use_cannot_go() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let (s, cat) = app.call("POST", "/categories", Some(json!({"shopId": shop, "name": "Phones"})), Some(&t)).await;
    assert_eq!(s, 201, "{cat}");
    let cat_id = cat["id"].as_str().unwrap().to_owned();
    let (s, sub) = app
        .call("POST", "/categories/subcategories", Some(json!({"categoryId": cat_id, "name": "Android"})), Some(&t))
        .await;
    assert_eq!(s, 201, "{sub}");
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let (s, subsub) = app
        .call(
            "POST",
            "/categories/subsubcategories",
            Some(json!({"subCategoryId": sub_id, "name": "Samsung"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{subsub}");
    let (s, dup) = app.call("POST", "/categories", Some(json!({"shopId": shop, "name": "PHONES"})), Some(&t)).await;
    assert_eq!((s, dup["code"].as_str()), (409, Some("CATEGORY_NAME_TAKEN")));
    let (s, bad) =
        app.call("POST", "/categories/subcategories", Some(json!({"categoryId": sub_id, "name": "x"})), Some(&t)).await;
    assert_eq!(s, 422, "a subcategory's parent is a top-level category: {bad}");

    let (s, sup) = app.call("POST", "/suppliers", Some(json!({"shopId": shop, "name": "Dialog Distributors", "contactNumber": "+94 11 555 0000", "haveWhatsApp": true})), Some(&t)).await;
    assert_eq!(s, 201, "{sup}");
    assert_eq!(sup["haveWhatsApp"], true);
    let (s, p) = app
        .call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Galaxy", "tracking": "SERIALIZED", "categoryId": cat_id,
            "subCategoryId": sub_id, "supplierId": sup["id"]})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, list) = app.call("GET", "/categories", None, Some(&t)).await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["childrenCount"], 1);
    assert_eq!(list["data"][0]["productCount"], 1);
    let (s, got) = app.call("GET", &format!("/categories/{cat_id}"), None, Some(&t)).await;
    assert_eq!((s, got["name"].as_str()), (200, Some("Phones")), "get-by-id is reachable");

    let (s, del) = app.call("DELETE", &format!("/categories/{cat_id}"), None, Some(&t)).await;
    assert_eq!((s, del["outcome"].as_str()), (200, Some("HIDDEN")), "used categories hide");
    let (s, del) = app
        .call("DELETE", &format!("/categories/subsubcategories/{}", subsub["id"].as_str().unwrap()), None, Some(&t))
        .await;
    assert_eq!((s, del["outcome"].as_str()), (200, Some("DELETED")), "unused ones go");
    let (s, del) = app.call("DELETE", &format!("/suppliers/{}", sup["id"].as_str().unwrap()), None, Some(&t)).await;
    assert_eq!((s, del["code"].as_str()), (409, Some("SUPPLIER_IN_USE")));

    let other = app.staff(app.seed_shop().await).await;
    let (s, _) = app.call("GET", &format!("/categories/{cat_id}"), None, Some(&other)).await;
    assert_eq!(s, 404, "other shops do not see it");
}

#[tokio::test]
async fn active_discounts_price_reservations() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let product = app.bulk_product(shop, "Case", "1999.00", 50).await;
    let (s, d) = app
        .call(
            "POST",
            "/discounts",
            Some(json!({"shopId": shop, "name": "Avurudu sale", "endsAt": "2099-01-01T00:00:00Z"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    let (s, d) = app
        .call(
            "POST",
            &format!("/discounts/products/{id}"),
            Some(json!({"products": [{"productId": product, "percentage": "12.5"}]})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["products"][0]["percentage"], "12.5");
    let (s, r) = app.reserve_http(shop, json!([{"productId": product, "quantity": 2}]), 600).await;
    assert_eq!(s, 201, "{r}");
    // 1999.00 less 12.5 % = 1749.125, rounded once, half away from zero: 1749.13.
    assert_eq!(r["lines"][0]["unitPrice"], "1749.13");
    assert_eq!(r["lines"][0]["listPrice"], "1999.00");
    let (s, active) = app.call("GET", &format!("/discounts/products/{product}"), None, Some(&t)).await;
    assert_eq!((s, active.as_array().map(Vec::len)), (200, Some(1)));
    let (s, _) =
        app.call("DELETE", &format!("/discounts/{id}/products"), Some(json!({"productId": product})), Some(&t)).await;
    assert_eq!(s, 200);
    let (s, r) = app.reserve_http(shop, json!([{"productId": product, "quantity": 1}]), 600).await;
    assert_eq!((s, r["lines"][0]["unitPrice"].as_str()), (201, Some("1999.00")), "detached: list price again");
    let other = app.staff(app.seed_shop().await).await;
    let (s, _) = app.call("GET", &format!("/discounts/{id}"), None, Some(&other)).await;
    assert_eq!(s, 404, "discounts belong to a shop");
}

#[tokio::test]
async fn units_are_removed_not_deleted_and_listed_with_their_products() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let (_, p) = app
        .call("POST", "/products", Some(json!({"shopId": shop, "name": "Laptop", "tracking": "SERIALIZED"})), Some(&t))
        .await;
    let product = p["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for sn in ["SN-1", "SN-2", "SN-3"] {
        let (s, item) = app
            .call(
                "POST",
                "/items",
                Some(json!({"productId": product, "barcode": sn, "broughtPrice": "900.00", "sellPrice": "1200.00"})),
                Some(&t),
            )
            .await;
        assert_eq!(s, 201, "{item}");
        ids.push(item["id"].as_str().unwrap().to_owned());
    }
    let (s, _) = app.reserve_http(shop, json!([{"barcode": "SN-1"}]), 600).await;
    assert_eq!(s, 201);
    let (s, b) = app.call("DELETE", &format!("/items/{}", ids[0]), Some(json!({"reason": "dropped"})), Some(&t)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("STOCK_UNIT_UNAVAILABLE")), "a reserved unit cannot be removed");
    let (s, _) =
        app.call("DELETE", &format!("/items/{}", ids[1]), Some(json!({"reason": "screen cracked"})), Some(&t)).await;
    assert_eq!(s, 204);
    let (status, row): (String, i64) = sqlx::query_as(
        "select i.status, (select count(*) from stock.movements m where m.item_id = i.item_id and m.kind = 'ADJUSTMENT' and m.reason = 'screen cracked')
           from stock.items i where i.barcode = 'SN-2'",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!((status.as_str(), row), ("REMOVED", 1), "kept on record, with the reason in the ledger");
    let (s, page) = app.call("GET", "/products/with-items", None, Some(&t)).await;
    assert_eq!(s, 200, "{page}");
    let items: Vec<&str> =
        page["data"][0]["items"].as_array().unwrap().iter().map(|i| i["barcode"].as_str().unwrap()).collect();
    assert_eq!(items, ["SN-1", "SN-3"]);
    assert_eq!(page["data"][0]["available"], 1);
    let on_hand: i64 = sqlx::query_scalar(
        "select coalesce(sum(on_hand_delta), 0)::bigint from stock.movements where product_id = $1::uuid",
    )
    .bind(&product)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(on_hand, 2, "the ledger counts two units in stock");
    // The removed unit cannot be reserved.
    let (s, b) = app.reserve_http(shop, json!([{"barcode": "SN-2"}]), 600).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("STOCK_UNIT_UNAVAILABLE")));
}
