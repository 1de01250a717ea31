//! What the first Cashvio's shop dashboard sends and reads (CLIENTS.md, stock), beside our own API.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_first_dashboard_sends_prices_as_numbers_and_removes_units_without_a_body() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let (s, p) = app
        .call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Phone", "tracking": "SERIALIZED", "sellPrice": 54990.5})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["sellPrice"], "54990.50", "read from the number's text: {p}");
    let product = p["id"].as_str().unwrap().to_owned();
    let (s, item) = app
        .call(
            "POST",
            "/items",
            Some(json!({"productId": product, "barcode": "IMEI-1", "broughtPrice": 41000, "sellPrice": 54990.5})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{item}");
    assert_eq!((item["broughtPrice"].as_str(), item["sellPrice"].as_str()), (Some("41000.00"), Some("54990.50")));
    assert!(item["updatedAt"].is_string(), "{item}");
    let (s, cat) = app.call("POST", "/categories", Some(json!({"shopId": shop, "name": "Phones"})), Some(&t)).await;
    assert_eq!(s, 201, "{cat}");
    let (s, sup) = app
        .call(
            "POST",
            "/suppliers",
            Some(json!({"shopId": shop, "name": "Importer", "contactNumber": "+94 11 555 0001"})),
            Some(&t),
        )
        .await;
    assert_eq!(s, 201, "{sup}");
    assert!(cat["updatedAt"].is_string() && sup["updatedAt"].is_string(), "{cat} {sup}");
    // Refused, and named by field: too many decimals, not an amount, negative.
    for (body, field, code) in [
        (json!({"productId": product, "barcode": "IMEI-2", "broughtPrice": 1.001}), "broughtPrice", "MONEY_PRECISION"),
        (
            json!({"productId": product, "barcode": "IMEI-2", "broughtPrice": 1, "sellPrice": "abc"}),
            "sellPrice",
            "VALIDATION_FAILED",
        ),
        (json!({"productId": product, "barcode": "IMEI-2", "broughtPrice": true}), "broughtPrice", "VALIDATION_FAILED"),
        (
            json!({"productId": product, "barcode": "IMEI-2", "broughtPrice": 1, "sellPrice": -5}),
            "sellPrice",
            "VALIDATION_FAILED",
        ),
    ] {
        let (s, b) = app.call("POST", "/items", Some(body.clone()), Some(&t)).await;
        assert_eq!((s, b["code"].as_str()), (422, Some(code)), "{body}: {b}");
        assert_eq!(b["errors"][0]["field"], field, "{body}: {b}");
    }
    let (s, b) = app.call("GET", &format!("/items?productId={product}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["meta"]["totalItems"], 1, "nothing stored by the refusals: {b}");
    // The till's picker: `sellPrice` a JSON number there, and `stock` beside `available`.
    let (s, page) = app.call("GET", &format!("/products/with-items?shopId={shop}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{page}");
    let phone = page["data"].as_array().unwrap().iter().find(|p| p["id"] == product.as_str()).unwrap();
    assert_eq!(phone["stock"], 1, "{phone}");
    assert_eq!(phone["items"][0]["sellPrice"].as_f64(), Some(54990.5), "{phone}");
    assert_eq!(phone["items"][0]["broughtPrice"], "41000.00", "{phone}");
    // DELETE without a body, as the dashboard sends it.
    let (s, b) = app.call("DELETE", &format!("/items/{}", item["id"].as_str().unwrap()), None, Some(&t)).await;
    assert_eq!(s, 204, "{b}");
    let reason: String = sqlx::query_scalar(
        "select m.reason from stock.movements m join stock.items i using (item_id) where i.barcode = 'IMEI-1' and m.kind = 'ADJUSTMENT'",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(reason, "removed in the dashboard");
    // A bare product (no tracking, no price) is counted per unit; INACTIVE (HIDE) reads back INACTIVE; the
    // views carry `stock` and `updatedAt`.
    let (s, bare) = app
        .call("POST", "/products", Some(json!({"shopId": shop, "name": "Tablet", "status": "INACTIVE"})), Some(&t))
        .await;
    assert_eq!(s, 201, "{bare}");
    assert_eq!((bare["tracking"].as_str(), bare["status"].as_str()), (Some("SERIALIZED"), Some("INACTIVE")), "{bare}");
    assert_eq!(bare["stock"], bare["available"]);
    assert!(bare["stock"].is_i64() && bare["updatedAt"].is_string(), "{bare}");
    let (s, priced) =
        app.call("POST", "/products", Some(json!({"shopId": shop, "name": "Cable", "sellPrice": 750})), Some(&t)).await;
    assert_eq!((s, priced["tracking"].as_str()), (201, Some("BULK")), "a priced product without tracking: {priced}");
    let (s, b) =
        app.call("POST", "/products", Some(json!({"shopId": shop, "name": "X", "status": "GONE"})), Some(&t)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("status")), "{b}");
}

#[tokio::test]
async fn the_first_dashboard_lists_categories_by_shop_id_with_nested_parents_and_counts() {
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
        .call("POST", "/categories/subsubcategories", Some(json!({"subCategoryId": sub_id, "name": "Pixel"})), Some(&t))
        .await;
    assert_eq!(s, 201, "{subsub}");

    let (s, l1) = app.call("GET", &format!("/categories/{shop}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{l1}");
    assert_eq!(l1["data"][0]["id"], cat_id.as_str(), "{l1}");
    assert_eq!(l1["data"][0]["_count"], json!({"subCategories": 1, "products": 0}), "{l1}");
    assert!(l1["data"][0]["updatedAt"].is_string());
    let (s, l2) = app.call("GET", &format!("/categories/subcategories/{shop}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{l2}");
    assert_eq!(l2["data"][0]["category"], json!({"id": cat_id, "name": "Phones"}), "{l2}");
    assert_eq!(l2["data"][0]["categoryId"], cat_id.as_str());
    assert_eq!(l2["data"][0]["_count"], json!({"subSubCategories": 1, "products": 0}), "{l2}");
    let (s, l3) = app.call("GET", &format!("/categories/subsubcategories/{shop}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{l3}");
    assert_eq!(
        l3["data"][0]["subCategory"],
        json!({"id": sub_id, "name": "Android", "category": {"id": cat_id, "name": "Phones"}}),
        "{l3}"
    );
    assert_eq!(l3["data"][0]["subCategoryId"], sub_id.as_str());
    // Our own forms keep working: one category by its id.
    let (s, one) = app.call("GET", &format!("/categories/subcategories/{sub_id}"), None, Some(&t)).await;
    assert_eq!((s, one["name"].as_str(), one["parentId"].as_str()), (200, Some("Android"), Some(cat_id.as_str())));
    // Another shop's id is no list of yours.
    let other = app.seed_shop().await;
    let (s, b) = app.call("GET", &format!("/categories/{other}"), None, Some(&t)).await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test]
async fn the_product_list_carries_nested_relations_and_put_bodies_may_repeat_the_id() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let (_, supplier) = app
        .call(
            "POST",
            "/suppliers",
            Some(json!({"name": "Lanka Traders", "email": null, "contactNumber": "0771234567", "haveWhatsApp": true, "shopId": shop})),
            Some(&t),
        )
        .await;
    let (_, cat) = app
        .call("POST", "/categories", Some(json!({"shopId": shop, "name": "Phones", "status": "ACTIVE"})), Some(&t))
        .await;
    let (_, sub) = app
        .call(
            "POST",
            "/categories/subcategories",
            Some(json!({"categoryId": id(&cat), "name": "Android", "status": "ACTIVE"})),
            Some(&t),
        )
        .await;
    let (_, subsub) = app
        .call(
            "POST",
            "/categories/subsubcategories",
            Some(json!({"subCategoryId": id(&sub), "name": "Pixel", "status": "ACTIVE"})),
            Some(&t),
        )
        .await;
    let body = json!({"name": "Pixel 8", "displayName": "Google Pixel 8", "keepingUnits": 2, "imageUrls": [], "status": "ACTIVE",
        "shopId": shop, "supplierId": id(&supplier), "categoryId": id(&cat), "subCategoryId": id(&sub),
        "subSubCategoryId": id(&subsub), "warrantyMonths": 12, "loyaltyPoints": 5});
    let (s, product) = app.call("POST", "/products", Some(body.clone()), Some(&t)).await;
    assert_eq!(s, 201, "{product}");
    let (s, list) = app.call("GET", &format!("/products?shopId={shop}"), None, Some(&t)).await;
    assert_eq!(s, 200, "{list}");
    let row = &list["data"][0];
    assert_eq!(
        row["supplier"],
        json!({"id": id(&supplier), "name": "Lanka Traders", "email": null, "contactNumber": "0771234567", "haveWhatsApp": true})
    );
    assert_eq!(row["category"], json!({"id": id(&cat), "name": "Phones"}));
    assert_eq!(row["subCategory"], json!({"id": id(&sub), "name": "Android", "categoryId": id(&cat)}));
    assert_eq!(row["subSubCategory"], json!({"id": id(&subsub), "name": "Pixel", "subCategoryId": id(&sub)}));
    assert_eq!((row["supplierId"].as_str(), row["stock"].as_i64()), (Some(id(&supplier).as_str()), Some(0)));
    // A product without relations answers nulls, not missing members.
    let (_, bare) = app.call("POST", "/products", Some(json!({"name": "Bare"})), Some(&t)).await;
    assert!(bare["supplier"].is_null() && bare.get("category").is_some(), "{bare}");

    // The dashboard's PUT repeats the id: the path's is fine, another is refused, and an id on
    // a create is refused (ids are the server's).
    let pid = id(&product);
    let mut put = body.clone();
    put.as_object_mut().unwrap().remove("shopId");
    put["id"] = json!(pid);
    put["status"] = json!("INACTIVE");
    let (s, edited) = app.call("PUT", &format!("/products/{pid}"), Some(put.clone()), Some(&t)).await;
    assert_eq!((s, edited["status"].as_str()), (200, Some("INACTIVE")), "{edited}");
    put["id"] = json!(id(&bare));
    let (s, b) = app.call("PUT", &format!("/products/{pid}"), Some(put), Some(&t)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("id")), "{b}");
    let mut create = body.clone();
    create["id"] = json!(pid);
    let (s, b) = app.call("POST", "/products", Some(create), Some(&t)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("id")), "{b}");
    for (path, bad_path) in [
        (format!("/suppliers/{}", id(&supplier)), format!("/suppliers/{pid}")),
        (format!("/categories/{}", id(&cat)), format!("/categories/{pid}")),
    ] {
        let named = path.rsplit('/').next().unwrap().to_owned();
        let (s, b) = app.call("PUT", &path, Some(json!({"id": named, "name": "Renamed"})), Some(&t)).await;
        assert_eq!(s, 200, "{path}: {b}");
        let (s, b) = app.call("PUT", &bad_path, Some(json!({"id": named, "name": "Renamed"})), Some(&t)).await;
        assert_eq!(s, 422, "{bad_path}: {b}");
    }
    // Negative counts are refused on edit as on create, not silently dropped.
    let (s, b) = app.call("PUT", &format!("/products/{pid}"), Some(json!({"keepingUnits": -1})), Some(&t)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("keepingUnits")), "{b}");

    // Hidden is HIDE in our API and INACTIVE in the first system's: both filter the list; a
    // category created INACTIVE is hidden, not silently active.
    for st in ["HIDE", "INACTIVE"] {
        let (s, l) = app.call("GET", &format!("/products?shopId={shop}&status={st}"), None, Some(&t)).await;
        assert_eq!((s, l["meta"]["totalItems"].as_i64()), (200, Some(1)), "{st}: {l}");
    }
    let (s, c) = app
        .call("POST", "/categories", Some(json!({"shopId": shop, "name": "Old", "status": "INACTIVE"})), Some(&t))
        .await;
    assert_eq!((s, c["status"].as_str()), (201, Some("HIDE")), "{c}");
}
