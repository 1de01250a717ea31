//! Every reference stays inside its shop: each endpoint of each service that takes an id of
//! one shop's records, called by the owner of another shop and by a customer, answers 403 or
//! 404, and nothing of the first shop changed (re-read as its owner before and after).
//!
//! Needs the stack (`make up`); `stack/smoke.sh` runs it.
#![allow(clippy::unwrap_used, clippy::too_many_lines, reason = "a test: a panic is the failure report")]

use reqwest::Method;
use serde_json::{json, Value};

use e2e::day::{charger, id, open_shop, pay, sell, GET, POST, PUT};
use e2e::{unique, Stack};

const DELETE: Method = Method::DELETE;
const PATCH: Method = Method::PATCH;

#[tokio::test]
#[ignore = "needs the running stack (make up); run by stack/smoke.sh"]
async fn another_shops_staff_and_customers_reach_nothing_of_a_shop_by_its_ids() {
    let stack = Stack::new().await;
    let shop = open_shop(&stack, &format!("Tenant A {}", unique())).await;
    let (intruder, _other) = stack.owner("Other Owner", &format!("Tenant B {}", unique())).await;
    let customer = stack.google_customer("Curious Customer").await;
    let (a, t) = (shop.id.clone(), shop.owner.token.clone());

    // Shop A's records, one of each kind.
    let category = id(&Stack::expect(
        stack.call(POST, "/stock/categories", Some(json!({"shopId": a, "name": "Cases"})), Some(&t)).await,
        201,
        "category",
    ));
    let sub = id(&Stack::expect(
        stack
            .call(
                POST,
                "/stock/categories/subcategories",
                Some(json!({"name": "Hard", "categoryId": category})),
                Some(&t),
            )
            .await,
        201,
        "subcategory",
    ));
    let subsub = id(&Stack::expect(
        stack
            .call(
                POST,
                "/stock/categories/subsubcategories",
                Some(json!({"name": "Clear", "subCategoryId": sub})),
                Some(&t),
            )
            .await,
        201,
        "sub-subcategory",
    ));
    let supplier = id(&Stack::expect(
        stack
            .call(
                POST,
                "/stock/suppliers",
                Some(json!({"shopId": a, "name": "Case Co", "contactNumber": "0771234567"})),
                Some(&t),
            )
            .await,
        201,
        "supplier",
    ));
    let barcode = format!("IMEI-A-{a}");
    let (_, units) = stack.call(GET, &format!("/stock/products/{}/items", shop.phone), None, Some(&t)).await;
    let item = units["data"].as_array().unwrap().iter().find(|u| u["barcode"] == barcode.as_str()).map(id).unwrap();
    let reservation = Stack::expect(
        stack
            .call(
                POST,
                "/stock/reservations",
                Some(json!({"shopId": a, "lines": [charger(&shop, 1)], "ttlSeconds": 600})),
                Some(&t),
            )
            .await,
        201,
        "reservation",
    );
    let reservation = reservation["reservationId"].as_str().unwrap().to_owned();
    let (s, order) =
        sell(&stack, &shop, json!({"items": [charger(&shop, 1)], "payments": [pay("CASH", "1500.00")]}), None).await;
    assert_eq!(s, 201, "{order}");
    let order = id(&order);
    let upcoming = id(&Stack::expect(
        stack
            .call(
                POST,
                "/order/upcoming-payments",
                Some(json!({"shopId": a, "description": "Rent", "amount": "50000.00", "dueDate": "2030-01-01"})),
                Some(&t),
            )
            .await,
        201,
        "upcoming payment",
    ));
    let members =
        Stack::expect(stack.call(GET, &format!("/auth/shops/{a}/members"), None, Some(&t)).await, 200, "members");
    let member = members.as_array().unwrap().iter().find(|m| m["userId"] != shop.owner.id.as_str()).unwrap();
    let member = member["userId"].as_str().unwrap().to_owned();
    let reg = &shop.register;
    let p = &shop.charger;
    let wallet = format!("/order/customer-wallet/{a}/{}", shop.cashier.id);

    // What A's owner sees; compared after the attempts.
    let watched: Vec<String> = vec![
        format!("/stock/categories/{category}"),
        format!("/stock/categories/subcategories/{sub}"),
        format!("/stock/categories/subsubcategories/{subsub}"),
        format!("/stock/suppliers/{supplier}"),
        format!("/stock/products/{p}"),
        format!("/stock/items/{item}"),
        format!("/stock/reservations/{reservation}"),
        format!("/order/orders/{order}"),
        format!("/order/registers/{reg}/current"),
        format!("/order/shops/{a}/settings"),
        format!("/order/upcoming-payments/{upcoming}"),
        format!("/order/shop-balance/{a}"),
        format!("/auth/shops/{a}"),
        format!("/auth/shops/{a}/members"),
    ];
    let mut before = Vec::new();
    for path in &watched {
        before.push(Stack::expect(stack.call(GET, path, None, Some(&t)).await, 200, path));
    }

    let image = before[4]["imageUrls"][0].as_str().unwrap().to_owned();
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (GET, format!("/stock/categories/{category}"), None),
        (PUT, format!("/stock/categories/{category}"), Some(json!({"name": "Taken"}))),
        (DELETE, format!("/stock/categories/{category}"), None),
        (GET, format!("/stock/categories/subcategories/{sub}"), None),
        (PUT, format!("/stock/categories/subcategories/{sub}"), Some(json!({"name": "Taken"}))),
        (DELETE, format!("/stock/categories/subcategories/{sub}"), None),
        (GET, format!("/stock/categories/subsubcategories/{subsub}"), None),
        (PUT, format!("/stock/categories/subsubcategories/{subsub}"), Some(json!({"name": "Taken"}))),
        (DELETE, format!("/stock/categories/subsubcategories/{subsub}"), None),
        (GET, format!("/stock/suppliers/{supplier}"), None),
        (PUT, format!("/stock/suppliers/{supplier}"), Some(json!({"name": "Taken"}))),
        (DELETE, format!("/stock/suppliers/{supplier}"), None),
        (GET, format!("/stock/products/{p}"), None),
        (PUT, format!("/stock/products/{p}"), Some(json!({"name": "Taken"}))),
        (DELETE, format!("/stock/products/{p}"), None),
        (POST, format!("/stock/products/{p}/receive"), Some(json!({"quantity": 5}))),
        (POST, format!("/stock/products/{p}/adjust"), Some(json!({"delta": -1, "reason": "taken"}))),
        (GET, format!("/stock/products/{p}/movements"), None),
        (GET, format!("/stock/products/{}/items", shop.phone), None),
        (GET, format!("/stock/items/{item}"), None),
        (PUT, format!("/stock/items/{item}"), Some(json!({"sellPrice": "1.00"}))),
        (DELETE, format!("/stock/items/{item}"), None),
        (GET, format!("/stock/items/barcode/{barcode}?shopId={a}"), None),
        (GET, format!("/stock/reservations/{reservation}"), None),
        (POST, format!("/stock/reservations/{reservation}/commit"), None),
        (POST, format!("/stock/reservations/{reservation}/release"), None),
        (GET, format!("/order/orders/{order}"), None),
        (PATCH, format!("/order/orders/{order}"), Some(json!({"note": "taken"}))),
        (POST, format!("/order/orders/{order}/cancel"), None),
        (POST, format!("/order/orders/{order}/returns"), Some(json!({"items": [{"productId": p, "quantity": 1}]}))),
        (GET, format!("/order/orders/{order}/receipt"), None),
        (GET, format!("/order/registers/{reg}/current"), None),
        (POST, format!("/order/registers/{reg}/cash-out"), Some(json!({"amount": "100.00", "reason": "taken"}))),
        (POST, format!("/order/registers/{reg}/close"), Some(json!({"counted": "0.00"}))),
        (GET, wallet.clone(), None),
        (POST, format!("{wallet}/top-up"), Some(json!({"amount": "100.00", "method": "CASH"}))),
        (GET, format!("/order/shops/{a}/settings"), None),
        (PUT, format!("/order/shops/{a}/settings"), Some(json!({"allowCredit": false}))),
        (GET, format!("/order/shop-balance/{a}"), None),
        (GET, format!("/order/cash-flow/comprehensive/{a}"), None),
        (GET, format!("/order/cash-flow/customer-dues/{a}"), None),
        (GET, format!("/order/upcoming-payments/{upcoming}"), None),
        (PUT, format!("/order/upcoming-payments/{upcoming}"), Some(json!({"description": "Taken"}))),
        (PUT, format!("/order/upcoming-payments/{upcoming}/pay"), Some(json!({}))),
        (DELETE, format!("/order/upcoming-payments/{upcoming}"), None),
        (GET, format!("/auth/shops/{a}"), None),
        (PUT, format!("/auth/shops/{a}"), Some(json!({"businessName": "Taken"}))),
        (GET, format!("/auth/shops/{a}/members"), None),
        (POST, format!("/auth/shops/{a}/invites"), Some(json!({"email": format!("x-{}@example.com", unique())}))),
        (PATCH, format!("/auth/shops/{a}/members/{member}"), Some(json!({"status": "SUSPENDED"}))),
        (DELETE, format!("/auth/shops/{a}/members/{member}"), None),
        (GET, format!("/auth/employees?shopId={a}"), None),
        (DELETE, "/mailer/upload".to_owned(), Some(json!({"key": image}))),
    ];
    for (who, token) in [("another shop's owner", &intruder.token), ("a customer", &customer.token)] {
        for (method, path, body) in &attempts {
            let (s, b) = stack.call(method.clone(), path, body.clone(), Some(token)).await;
            assert!(s == 403 || s == 404, "{who}: {method} {path} answered {s}: {b} (only 403 or 404 may come back)");
        }
    }

    for (path, was) in watched.iter().zip(&before) {
        let now = Stack::expect(stack.call(GET, path, None, Some(&t)).await, 200, path);
        assert_eq!(&now, was, "{path} changed");
    }
}
