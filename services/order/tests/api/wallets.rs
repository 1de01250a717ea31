//! Wallets: payments from them, change kept in them, dues within the shop's credit limit,
//! top-ups; concurrent debits never overspend; the rows hold no plaintext amounts, and a
//! swapped or restored ciphertext is refused with nothing booked.

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

async fn top_up(app: &TestApp, shop: Uuid, customer: Uuid, amount: &str, token: &str) -> Value {
    let (status, wallet) = app
        .call(
            "POST",
            &format!("/customer-wallet/{shop}/{customer}/top-up"),
            Some(json!({"amount": amount, "method": "CASH"})),
            token,
        )
        .await;
    assert_eq!(status, 201, "{wallet}");
    wallet
}

async fn balance(app: &TestApp, shop: Uuid, customer: Uuid, token: &str) -> Value {
    let (status, wallet) = app.call("GET", &format!("/customer-wallet/{shop}/{customer}"), None, token).await;
    assert_eq!(status, 200, "{wallet}");
    wallet["balance"].clone()
}

#[tokio::test]
async fn wallet_payments_change_dues_and_top_ups() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 100).await;
    let staff = app.staff(shop).await;
    let owner = app.owner(shop).await;
    let customer = app.seed_person("Sunil", "sunil@example.test").await;
    let sale = |qty: i64, payments: Value, extra: Value| {
        let mut body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice, "quantity": qty}],
                              "payments": payments});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        body
    };

    let wallet = top_up(&app, shop, customer, "300.00", &staff).await;
    assert_eq!(wallet["balance"], "300.00");
    // Split tender: 300 from the wallet, 200 in cash.
    let (status, order) = app
        .order(
            sale(
                5,
                json!([{"method": "WALLET", "amount": "300.00"}, {"method": "CASH", "amount": "200.00"}]),
                json!({}),
            ),
            &staff,
            None,
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(balance(&app, shop, customer, &staff).await, "0.00");
    // Change kept in the wallet.
    let (status, order) = app
        .order(sale(1, json!([{"method": "CASH", "amount": "150.00"}]), json!({"changeToWallet": true})), &staff, None)
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["change"], "0.00");
    assert_eq!(balance(&app, shop, customer, &staff).await, "50.00");

    // No credit by default: an unpaid rest is refused.
    let (status, refused) =
        app.order(sale(5, json!([{"method": "CASH", "amount": "100.00"}]), json!({})), &staff, None).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("PAYMENT_SHORT")), "{refused}");
    let (status, _) = app
        .call(
            "PUT",
            &format!("/shops/{shop}/settings"),
            Some(json!({"allowCredit": true, "creditLimit": "1000.00"})),
            &owner,
        )
        .await;
    assert_eq!(status, 200);
    // A due within the limit (the first system's negative extraWalletAmount).
    let (status, due) = app
        .order(sale(5, json!([{"method": "CASH", "amount": 100}]), json!({"extraWalletAmount": -400})), &staff, None)
        .await;
    assert_eq!(status, 201, "{due}");
    assert_eq!(due["paymentDue"], "400.00");
    assert_eq!(balance(&app, shop, customer, &staff).await, "-350.00");
    // Over the limit, and a wallet payment from a wallet in debt: refused, nothing held.
    let (status, over) = app.order(sale(7, json!([]), json!({})), &staff, None).await;
    assert_eq!((status, over["code"].as_str()), (422, Some("CREDIT_LIMIT_EXCEEDED")), "{over}");
    let (status, broke) =
        app.order(sale(1, json!([{"method": "WALLET", "amount": "100.00"}]), json!({})), &staff, None).await;
    assert_eq!((status, broke["code"].as_str()), (422, Some("WALLET_INSUFFICIENT")), "{broke}");
    assert_eq!(app.level(rice).await, (89, 0));
    // Paying the due back: first against the due, the rest as credit.
    let wallet = top_up(&app, shop, customer, "400.00", &staff).await;
    assert_eq!(wallet["balance"], "50.00");
    let kinds: Vec<&str> =
        wallet["transactions"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["TOP_UP", "DUE_PAYMENT", "DUE", "CHANGE", "SALE_PAYMENT", "TOP_UP"]);
    let sources: Vec<(String, i64)> = sqlx::query_as(
        "select source, amount_minor from sales.ledger where shop_id = $1 and order_id is null order by created_at, source",
    )
    .bind(shop)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(
        sources,
        vec![("WALLET_TOP_UP".into(), 30_000), ("DUE_PAYMENT".into(), 35_000), ("WALLET_TOP_UP".into(), 5_000)]
    );

    // The customer sees their own wallet; another customer does not.
    let mine = app.key.sign(&testkit::jwt::claims_for(customer, platform::auth::Role::Customer, 3_600));
    assert_eq!(balance(&app, shop, customer, &mine).await, "50.00");
    let (status, all) = app.call("GET", &format!("/customer-wallet/all/{customer}"), None, &mine).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["wallets"][0]["balance"], "50.00");
    let stranger = app.key.sign(&testkit::jwt::claims(platform::auth::Role::Customer, &[], 3_600));
    let (status, _) = app.call("GET", &format!("/customer-wallet/{shop}/{customer}"), None, &stranger).await;
    assert_eq!(status, 404);
    app.stop();
}

#[tokio::test]
async fn two_hundred_concurrent_wallet_debits_never_overspend() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let gum = app.bulk_product(shop, "Gum", "1.00", 1_000).await;
    let staff = app.staff(shop).await;
    let customer = app.seed_person("Ravi", "ravi@example.test").await;
    top_up(&app, shop, customer, "100.00", &staff).await;

    let body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": gum, "quantity": 1}],
                      "payments": [{"method": "WALLET", "amount": "1.00"}]});
    let answers = join_all((0..200).map(|_| app.order(body.clone(), &staff, None))).await;
    let sold = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers.iter().filter(|(s, a)| *s == 422 && a["code"] == "WALLET_INSUFFICIENT").count();
    assert_eq!((sold, refused), (100, 100), "{:?}", answers.iter().find(|(s, _)| *s != 201 && *s != 422));
    assert_eq!(balance(&app, shop, customer, &staff).await, "0.00");
    assert_eq!(app.count("orders", shop).await, 100);
    let (on_hand, reserved) = app.level(gum).await;
    assert_eq!((on_hand, reserved), (900, 0), "refused sales hold nothing");
    app.stop();
}

#[tokio::test]
async fn two_hundred_debits_through_two_instances_give_exact_results() {
    // Two order processes, each with its own wallet actor for the same wallet: a debit that
    // loses the compare-and-set to the other instance books again with the wallet read anew,
    // so every sale the balance covers is sold and no answer is a conflict.
    let app = spawn_app().await;
    let (second, stop_second) = app.second_order().await;
    let shop = app.seed_shop().await;
    let gum = app.bulk_product(shop, "Gum", "1.00", 1_000).await;
    let staff = app.staff(shop).await;
    let customer = app.seed_person("Ravi", "ravi@example.test").await;
    top_up(&app, shop, customer, "150.00", &staff).await;

    let body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": gum, "quantity": 1}],
                      "payments": [{"method": "WALLET", "amount": "1.00"}]});
    let sales = (0..200).map(|i| {
        let base = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let req = app.http.post(format!("{base}/orders")).bearer_auth(&staff).json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap_or_default())
        }
    });
    let answers = join_all(sales).await;
    let sold = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers.iter().filter(|(s, a)| *s == 422 && a["code"] == "WALLET_INSUFFICIENT").count();
    assert_eq!(
        (sold, refused),
        (150, 50),
        "exactly what the balance covers is sold, the rest refused: {:?}",
        answers.iter().find(|(s, a)| !(*s == 201 || a["code"] == "WALLET_INSUFFICIENT"))
    );
    assert_eq!(balance(&app, shop, customer, &staff).await, "0.00", "the balance is spent to the cent");
    assert_eq!(app.count("orders", shop).await, 150);
    let (on_hand, reserved) = app.level(gum).await;
    assert_eq!((on_hand, reserved), (850, 0), "refused sales hold nothing");
    stop_second.cancel();
    app.stop();
}

#[tokio::test]
async fn rows_hold_no_plaintext_and_swapped_or_restored_ciphertexts_are_refused() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "10.00", 100).await;
    let staff = app.staff(shop).await;
    let alice = app.seed_person("Alice", "alice@example.test").await;
    let bob = app.seed_person("Bob", "bob@example.test").await;
    top_up(&app, shop, alice, "123.45", &staff).await;
    top_up(&app, shop, bob, "10.00", &staff).await;

    // No amount column, and no amount in the sealed bytes.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "select column_name::text, data_type::text from information_schema.columns
          where table_schema = 'sales' and table_name in ('wallets', 'wallet_entries') and data_type in ('bigint', 'numeric', 'integer')",
    )
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(columns, vec![("version".to_owned(), "bigint".to_owned()), ("version".to_owned(), "bigint".to_owned())]);
    let blobs: Vec<Vec<u8>> =
        sqlx::query_scalar("select sealed from sales.wallets union all select sealed from sales.wallet_entries")
            .fetch_all(&app.db.admin)
            .await
            .unwrap();
    for blob in &blobs {
        for needle in [12_345i64.to_be_bytes().to_vec(), 12_345i64.to_le_bytes().to_vec(), b"123.45".to_vec()] {
            assert!(!blob.windows(needle.len()).any(|w| w == needle.as_slice()), "plaintext amount in a sealed value");
        }
    }
    let kms_keys: Vec<Vec<u8>> =
        sqlx::query_scalar("select wrapped_key from sales.shop_keys").fetch_all(&app.db.admin).await.unwrap();
    assert_eq!(kms_keys.len(), 1, "one data key per shop, stored wrapped");

    // Swap Alice's and Bob's sealed states (same version: both topped up once).
    sqlx::query(
        "update sales.wallets w set sealed = o.sealed from sales.wallets o
          where w.shop_id = $1 and o.shop_id = $1 and w.wallet_id <> o.wallet_id",
    )
    .bind(shop)
    .execute(&app.db.admin)
    .await
    .unwrap();
    let pay = |customer: Uuid| {
        json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice}],
               "payments": [{"method": "WALLET", "amount": "10.00"}]})
    };
    for who in [alice, bob] {
        let (status, refused) = app.order(pay(who), &staff, None).await;
        assert_eq!((status, refused["code"].as_str()), (409, Some("WALLET_INTEGRITY_FAILED")), "{refused}");
        let (status, read) = app.call("GET", &format!("/customer-wallet/{shop}/{who}"), None, &staff).await;
        assert_eq!((status, read["code"].as_str()), (409, Some("WALLET_INTEGRITY_FAILED")), "{read}");
    }
    assert_eq!(app.count("orders", shop).await, 0, "nothing booked on a tampered wallet");
    assert_eq!(app.level(rice).await, (100, 0), "and nothing held");
    // Swap back, then restore an older state of Alice's after a newer one was written.
    sqlx::query(
        "update sales.wallets w set sealed = o.sealed from sales.wallets o
          where w.shop_id = $1 and o.shop_id = $1 and w.wallet_id <> o.wallet_id",
    )
    .bind(shop)
    .execute(&app.db.admin)
    .await
    .unwrap();
    let (old_sealed, old_version): (Vec<u8>, i64) =
        sqlx::query_as("select sealed, version from sales.wallets where customer_id = $1")
            .bind(alice)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    let (status, order) = app.order(pay(alice), &staff, None).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(balance(&app, shop, alice, &staff).await, "113.45");
    sqlx::query("update sales.wallets set sealed = $2, version = $3 where customer_id = $1")
        .bind(alice)
        .bind(old_sealed)
        .bind(old_version)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let (status, refused) = app.order(pay(alice), &staff, None).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("WALLET_INTEGRITY_FAILED")), "{refused}");
    assert_eq!(app.count("orders", shop).await, 1);
    app.stop();
}

/// The `…order_kms_calls_total` counter on /metrics.
async fn kms_calls(app: &TestApp, base_url: &str) -> u64 {
    let text = app.http.get(format!("{base_url}/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next().is_some_and(|name| name.ends_with("order_kms_calls_total")))
        .unwrap_or_else(|| panic!("no KMS counter in /metrics:\n{text}"));
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
}

#[tokio::test]
async fn steady_state_checkouts_make_no_kms_call_and_keys_rewrap_under_a_new_kms_key() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let gum = app.bulk_product(shop, "Gum", "1.00", 100).await;
    let staff = app.staff(shop).await;
    let customer = app.seed_person("Mala", "mala@example.test").await;
    top_up(&app, shop, customer, "50.00", &staff).await;
    let after_first = kms_calls(&app, &app.base_url).await;
    assert_eq!(after_first, 1, "the shop's data key was generated once");

    let body = json!({"shopId": shop, "customerId": customer, "items": [{"productId": gum}],
                      "payments": [{"method": "WALLET", "amount": "1.00"}]});
    for _ in 0..20 {
        let (status, order) = app.order(body.clone(), &staff, None).await;
        assert_eq!(status, 201, "{order}");
    }
    assert_eq!(kms_calls(&app, &app.base_url).await, after_first, "no KMS call per checkout");

    // Rotation: every shop's data key re-wrapped under a new KMS key while the service runs.
    let kms = cashvio_order::wallet::keys::client(&crate::helpers::kms_config());
    let new_key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
    let before: Vec<u8> = sqlx::query_scalar("select wrapped_key from sales.shop_keys where shop_id = $1")
        .bind(shop)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    let n = cashvio_order::wallet::keys::KeyRing::rewrap_all(&kms, &app.db.admin, &new_key).await.unwrap();
    assert_eq!(n, 1);
    let (kms_key, after): (String, Vec<u8>) =
        sqlx::query_as("select kms_key_id, wrapped_key from sales.shop_keys where shop_id = $1")
            .bind(shop)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(kms_key, new_key);
    assert_ne!(after, before, "wrapped anew");
    // The running instance keeps selling; a new instance (empty cache) unwraps the re-wrapped
    // key and reads the same balance.
    let (status, order) = app.order(body.clone(), &staff, None).await;
    assert_eq!(status, 201, "{order}");
    let second = cashvio_order::Application::build(crate::helpers::order_config(&app.db, &app.jwks, &app.stock_config))
        .await
        .unwrap();
    let second_url = format!("http://127.0.0.1:{}", second.port());
    let stop_second = second.shutdown_token();
    tokio::spawn(second.run_until_stopped());
    let (status, wallet) =
        app.request(&second_url, "GET", &format!("/customer-wallet/{shop}/{customer}"), None, Some(&staff), None).await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!(wallet["balance"], "29.00");
    assert_eq!(kms_calls(&app, &second_url).await, 1, "one Decrypt on the new instance");
    stop_second.cancel();
    app.stop();
}

#[tokio::test]
async fn a_customer_sees_their_history_and_warranties_and_staff_see_their_shops_part() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let other = app.seed_shop().await;
    app.serialized_product(shop, "Phone", "500.00", &["W-1"]).await;
    let rice = app.bulk_product(other, "Rice", "10.00", 10).await;
    let customer = app.seed_person("Nila", "nila@example.test").await;
    let staff = app.staff(shop).await;
    let other_staff = app.staff(other).await;
    for (s, token, item) in
        [(shop, &staff, json!({"barcode": "W-1"})), (other, &other_staff, json!({"productId": rice}))]
    {
        let amount = if s == shop { "500.00" } else { "10.00" };
        let (status, order) = app
            .order(
                json!({"shopId": s, "customerId": customer, "items": [item], "payments": [{"method": "CASH", "amount": amount}]}),
                token,
                None,
            )
            .await;
        assert_eq!(status, 201, "{order}");
    }
    let me = app.key.sign(&testkit::jwt::claims_for(customer, platform::auth::Role::Customer, 3_600));
    let (status, history) = app.call("GET", &format!("/customer-orders/all/{customer}/history"), None, &me).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["customer"]["email"], "nila@example.test");
    assert_eq!(history["shopData"].as_array().unwrap().len(), 2);
    let phone = &history["shopData"][0]["orderHistory"]["orders"][0]["orderItems"][0];
    assert_eq!(phone["product"]["warrantyMonths"], 12, "{phone}");
    let (status, warranty) = app.call("GET", &format!("/customer-orders/all/{customer}/warranty"), None, &me).await;
    assert_eq!(status, 200, "{warranty}");
    assert_eq!((warranty["activeCount"].as_u64(), warranty["expiredCount"].as_u64()), (Some(1), Some(0)));
    assert_eq!(warranty["allActiveWarranty"][0]["barcode"], "W-1");

    // A shop's staff see their shop's part only; another shop's path is refused.
    let (status, theirs) = app.call("GET", &format!("/customer-orders/all/{customer}/history"), None, &staff).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["shopData"].as_array().unwrap().len(), 1);
    let (status, _) = app.call("GET", &format!("/customer-orders/{customer}/shop/{other}/history"), None, &staff).await;
    assert_eq!(status, 403);
    let (status, one) =
        app.call("GET", &format!("/customer-orders/{customer}/shop/{shop}/warranty"), None, &staff).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["activeCount"], 1);
    let stranger = app.key.sign(&testkit::jwt::claims(platform::auth::Role::Customer, &[], 3_600));
    let (status, _) = app.call("GET", &format!("/customer-orders/all/{customer}/history"), None, &stranger).await;
    assert_eq!(status, 404);
    app.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_to_one_wallet_through_two_instances_all_land() {
    // Returns refunding to one customer's wallet at once through two order processes: a
    // return that loses the wallet's compare-and-set runs again, so every refund lands.
    let app = spawn_app().await;
    let (second, stop_second) = app.second_order().await;
    let shop = app.seed_shop().await;
    let gum = app.bulk_product(shop, "Gum", "1.00", 100).await;
    let staff = app.staff(shop).await;
    let customer = app.seed_person("Nila", "nila@example.test").await;
    top_up(&app, shop, customer, "5.00", &staff).await;
    let mut orders = Vec::new();
    for _ in 0..30 {
        let sale = json!({"shopId": shop, "customerId": customer, "items": [{"productId": gum, "quantity": 1}],
                          "payments": [{"method": "CASH", "amount": "1.00"}]});
        let (status, order) = app.order(sale, &staff, None).await;
        assert_eq!(status, 201, "{order}");
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    let returns = orders.iter().enumerate().map(|(i, order)| {
        let base = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let body = json!({"items": [{"productId": gum}], "refund": [{"method": "WALLET", "amount": "1.00"}], "restock": false});
        let (app, staff) = (&app, &staff);
        async move { app.request(&base, "POST", &format!("/orders/{order}/returns"), Some(body), Some(staff), None).await }
    });
    let answers = join_all(returns).await;
    assert!(answers.iter().all(|(s, _)| *s == 201), "{:?}", answers.iter().find(|(s, _)| *s != 201));
    assert_eq!(balance(&app, shop, customer, &staff).await, "35.00", "every refund landed once");
    stop_second.cancel();
    app.stop();
}
