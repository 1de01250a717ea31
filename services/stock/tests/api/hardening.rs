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

/// `Idempotency-Key` on the POSTs that move stock: twenty concurrent copies and a later
/// retry apply once and all get the first answer; the same key with another body is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_moves_stock_once_however_often_and_concurrently_it_is_sent() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let product = app.bulk_product(shop, "Cable", "500.00", 0).await;
    let send = |path: String, body: serde_json::Value, key: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let res = app
                .http
                .post(format!("{}{path}", app.base_url))
                .bearer_auth(t)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let cases = [
        (
            "receive",
            format!("/products/{product}/receive"),
            json!({"quantity": 7, "unitCost": "10.00"}),
            json!({"quantity": 8, "unitCost": "10.00"}),
            "rcv-1",
            7,
        ),
        (
            "adjust",
            format!("/products/{product}/adjust"),
            json!({"delta": -2, "reason": "broken"}),
            json!({"delta": -3, "reason": "broken"}),
            "adj-1",
            5,
        ),
    ];
    for (name, path, body, different, key, on_hand) in cases {
        let answers = futures::future::join_all((0..20).map(|_| send(path.clone(), body.clone(), key))).await;
        for (status, answer) in &answers {
            assert_eq!((*status, answer), (200, &answers[0].1), "{name}: every copy gets the first answer");
        }
        let (status, again) = send(path.clone(), body.clone(), key).await;
        assert_eq!((status, &again), (200, &answers[0].1), "{name}: a later retry too");
        assert_eq!(app.assert_consistent(product).await, (on_hand, 0), "{name}: applied once");
        let (status, other) = send(path.clone(), different, key).await;
        assert_eq!((status, other["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{name}: {other}");
    }
    let movements: i64 = sqlx::query_scalar("select count(*) from stock.movements where product_id = $1")
        .bind(product)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(movements, 2, "one receipt, one adjustment");

    // A reservation: the same key with another body is refused, not silently the first one.
    let lines = |q: i64| json!({"shopId": shop, "lines": [{"productId": product, "quantity": q}], "ttlSeconds": 60});
    let (s1, first) = send("/reservations".into(), lines(2), "res-1").await;
    let (s2, again) = send("/reservations".into(), lines(2), "res-1").await;
    assert_eq!((s1, s2, &again["reservationId"]), (201, 201, &first["reservationId"]));
    let (s3, other) = send("/reservations".into(), lines(3), "res-1").await;
    assert_eq!((s3, other["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{other}");
    assert_eq!(app.assert_consistent(product).await, (5, 2));

    // A unit: added once.
    let (_, p) = app
        .call("POST", "/products", Some(json!({"shopId": shop, "name": "Phone", "tracking": "SERIALIZED"})), Some(&t))
        .await;
    let unit = json!({"productId": p["id"], "barcode": "IMEI-9", "broughtPrice": "1.00", "sellPrice": "2.00"});
    let answers = futures::future::join_all((0..10).map(|_| send("/items".into(), unit.clone(), "unit-1"))).await;
    assert!(answers.iter().all(|(s, a)| *s == 201 && a["id"] == answers[0].1["id"]), "{answers:?}");
}

/// Fields that cannot change are refused, not silently ignored; dates outside 1900–2200
/// are refused; images are this shop's uploads, at most ten.
#[tokio::test]
async fn unchangeable_fields_insane_dates_and_foreign_images_are_422() {
    let app = spawn_app().await;
    let (shop, other) = (app.seed_shop().await, app.seed_shop().await);
    let t = app.staff(shop).await;
    let (_, sup) = app
        .call("POST", "/suppliers", Some(json!({"shopId": shop, "name": "Abans", "contactNumber": "0771"})), Some(&t))
        .await;
    let sup = sup["id"].as_str().unwrap().to_owned();
    let (_, c1) = app.call("POST", "/categories", Some(json!({"shopId": shop, "name": "Phones"})), Some(&t)).await;
    let (_, c1b) = app.call("POST", "/categories", Some(json!({"shopId": shop, "name": "Audio"})), Some(&t)).await;
    let (_, c2) = app
        .call("POST", "/categories/subcategories", Some(json!({"categoryId": c1["id"], "name": "Android"})), Some(&t))
        .await;
    let mine = |name: &str| format!("shops/{shop}/images/products/{name}.png");
    let theirs = format!("https://bucket.s3.amazonaws.com/shops/{other}/images/products/x.png");
    let cases = [
        ("supplier moves shop", "PUT", format!("/suppliers/{sup}"), json!({"shopId": other}), "shopId"),
        (
            "subcategory changes parent",
            "PUT",
            format!("/categories/subcategories/{}", c2["id"].as_str().unwrap()),
            json!({"categoryId": c1b["id"], "name": "Android"}),
            "categoryId",
        ),
        (
            "discount ends in 9999",
            "POST",
            "/discounts".into(),
            json!({"shopId": shop, "name": "Sale", "endsAt": "9999-01-01T00:00:00Z"}),
            "endsAt",
        ),
        (
            "discount starts in 1800",
            "POST",
            "/discounts".into(),
            json!({"shopId": shop, "name": "Sale", "startsAt": "1800-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"}),
            "startsAt",
        ),
        (
            "another shop's image",
            "POST",
            "/products".into(),
            json!({"shopId": shop, "name": "Mug", "sellPrice": "1.00", "imageUrls": [mine("a"), theirs]}),
            "imageUrls",
        ),
        (
            "any string as an image",
            "POST",
            "/products".into(),
            json!({"shopId": shop, "name": "Mug", "sellPrice": "1.00", "imageUrls": ["<script>"]}),
            "imageUrls",
        ),
        (
            "eleven images",
            "POST",
            "/products".into(),
            json!({"shopId": shop, "name": "Mug", "sellPrice": "1.00", "imageUrls": vec![mine("a"); 11]}),
            "imageUrls",
        ),
        (
            "a foreign category image",
            "POST",
            "/categories".into(),
            json!({"shopId": shop, "name": "Toys", "imageUrl": theirs}),
            "imageUrl",
        ),
    ];
    for (name, method, path, body, field) in cases {
        let (s, b) = app.call(method, &path, Some(body), Some(&t)).await;
        assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some(field)), "{name}: {b}");
    }
    // The same values pass where they are right.
    let (s, b) = app
        .call("PUT", &format!("/suppliers/{sup}"), Some(json!({"shopId": shop, "name": "Abans PLC"})), Some(&t))
        .await;
    assert_eq!(s, 200, "repeating the shop is fine: {b}");
    let images = json!([mine("a"), format!("https://bucket.s3.amazonaws.com/{}", mine("b"))]);
    let (s, b) = app
        .call(
            "POST",
            "/products",
            Some(json!({"shopId": shop, "name": "Mug", "sellPrice": "1.00", "imageUrls": images})),
            Some(&t),
        )
        .await;
    assert_eq!((s, &b["imageUrls"]), (201, &images), "{b}");
}

/// The answer under an idempotency key is stored after the stock moved; if it is lost (a
/// timeout, a crash, a takeover after the key was abandoned) the re-run must not count the
/// stock again: the ledger knows the key's effect.
#[tokio::test]
async fn a_rerun_after_a_lost_answer_moves_stock_once() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let t = app.staff(shop).await;
    let product = app.bulk_product(shop, "Cable", "500.00", 0).await;
    let receive = || {
        app.http
            .post(format!("{}/products/{product}/receive", app.base_url))
            .bearer_auth(&t)
            .header("idempotency-key", "lost-1")
            .json(&json!({"quantity": 4}))
            .send()
    };
    assert_eq!(receive().await.unwrap().status().as_u16(), 200);
    // The stored answer is lost.
    sqlx::query("delete from stock.idempotency_keys").execute(&app.db.admin).await.unwrap();
    let res = receive().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(app.assert_consistent(product).await, (4, 0), "counted once");
}
