//! Every reference stays inside the caller's shop, enforced by the database (composite
//! (shop, id) foreign keys): another shop's supplier or category is refused exactly like a
//! random id, nothing of the other shop changes, and even SQL that skips the handlers
//! cannot store a cross-shop reference.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

async fn supplier(app: &TestApp, shop: Uuid, token: &str) -> Uuid {
    let (s, b) = app
        .call(
            "POST",
            "/suppliers",
            Some(json!({"shopId": shop, "name": "Abans", "contactNumber": "0771234567"})),
            Some(token),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    serde_json::from_value(b["id"].clone()).unwrap()
}

async fn category(app: &TestApp, path: &str, body: Value, token: &str) -> Uuid {
    let (s, b) = app.call("POST", path, Some(body), Some(token)).await;
    assert_eq!(s, 201, "{b}");
    serde_json::from_value(b["id"].clone()).unwrap()
}

#[tokio::test]
async fn another_shops_suppliers_and_categories_cannot_be_referenced() {
    let app = spawn_app().await;
    let (mine, theirs) = (app.seed_shop().await, app.seed_shop().await);
    let (t, other) = (app.staff(mine).await, app.staff(theirs).await);
    // The other shop's supplier and three levels of categories.
    let their_supplier = supplier(&app, theirs, &other).await;
    let c1 = category(&app, "/categories", json!({"shopId": theirs, "name": "Phones"}), &other).await;
    let c2 = category(&app, "/categories/subcategories", json!({"categoryId": c1, "name": "Android"}), &other).await;
    let c3 =
        category(&app, "/categories/subsubcategories", json!({"subCategoryId": c2, "name": "Samsung"}), &other).await;
    let product = app.bulk_product(mine, "Cable", "500.00", 0).await;

    for (field, foreign) in
        [("supplierId", their_supplier), ("categoryId", c1), ("subCategoryId", c2), ("subSubCategoryId", c3)]
    {
        let random = Uuid::now_v7();
        let create = |id: Uuid| json!({"shopId": mine, "name": "Mug", "sellPrice": "10.00", field: id});
        let (s1, foreign_answer) = app.call("POST", "/products", Some(create(foreign)), Some(&t)).await;
        let (s2, random_answer) = app.call("POST", "/products", Some(create(random)), Some(&t)).await;
        assert_eq!((s1, s2), (422, 422), "create with {field}: {foreign_answer} / {random_answer}");
        assert_eq!(foreign_answer["errors"], random_answer["errors"], "a foreign {field} looks like a random one");
        assert_eq!(foreign_answer["errors"][0]["field"], field);
        let (s, b) = app.call("PUT", &format!("/products/{product}"), Some(json!({field: foreign})), Some(&t)).await;
        assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some(field)), "update with {field}: {b}");
    }
    let receive = |supplier: Uuid| json!({"quantity": 3, "supplierId": supplier});
    let (s1, a1) =
        app.call("POST", &format!("/products/{product}/receive"), Some(receive(their_supplier)), Some(&t)).await;
    let (s2, a2) =
        app.call("POST", &format!("/products/{product}/receive"), Some(receive(Uuid::now_v7())), Some(&t)).await;
    assert_eq!((s1, s2), (422, 422), "{a1} / {a2}");
    assert_eq!(a1["errors"], a2["errors"]);
    assert_eq!(app.assert_consistent(product).await, (0, 0), "nothing received");

    // A receipt from my own supplier is recorded with it.
    let my_supplier = supplier(&app, mine, &t).await;
    let (s, b) = app.call("POST", &format!("/products/{product}/receive"), Some(receive(my_supplier)), Some(&t)).await;
    assert_eq!(s, 200, "{b}");
    let recorded: Option<Uuid> = sqlx::query_scalar("select supplier_id from stock.movements where product_id = $1")
        .bind(product)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(recorded, Some(my_supplier));

    // The other shop saw nothing: its supplier has no products and can be deleted.
    let (s, b) = app.call("GET", &format!("/suppliers/{their_supplier}"), None, Some(&other)).await;
    assert_eq!((s, b["productCount"].as_i64()), (200, Some(0)), "{b}");
    let (s, b) = app.call("DELETE", &format!("/suppliers/{their_supplier}"), None, Some(&other)).await;
    assert_eq!(s, 204, "{b}");
    // My supplier with a receipt on record is in use.
    let (s, b) = app.call("DELETE", &format!("/suppliers/{my_supplier}"), None, Some(&t)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SUPPLIER_IN_USE")), "{b}");

    // Even SQL that bypasses the handlers cannot store a cross-shop reference.
    for (what, sql) in [
        ("product -> category", "update stock.products set category_id = $2 where product_id = $1"),
        ("unit -> product", "insert into stock.items (item_id, shop_id, product_id, barcode, brought_price_minor, sell_price_minor) select gen_random_uuid(), $3, $1, 'X', 1, 1"),
        ("ledger -> product", "insert into stock.movements (shop_id, product_id, kind) values ($3, $1, 'ADJUSTMENT')"),
    ] {
        let err = sqlx::query(sql).bind(product).bind(c1).bind(theirs).execute(&app.db.admin).await;
        let err = err.expect_err(what);
        assert!(err.as_database_error().and_then(|d| d.constraint()).is_some_and(|c| c.ends_with("_fkey")), "{what}: {err}");
    }
}
