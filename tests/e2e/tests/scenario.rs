//! A shop's day, end to end through nginx, with every service, PostgreSQL, RabbitMQ and the
//! local stand-ins for AWS and Google: an owner signs up by OTP, invites a cashier, builds the
//! catalog with images uploaded through the mailer, receives stock, allows credit, opens a
//! register; a customer signs in with Google and tops up a wallet; the cashier sells every way
//! a till does (cash with change, card, wallet, split, credit within the limit and refused
//! beyond it, a retried checkout); the customer's receipt carries a PDF matching the order; a
//! return refunds to the wallet and restocks; the owner hears of low stock; the shift closes
//! short. Then the reports, the balances, the X/Z reports and the stock levels are checked
//! against the ledgers in SQL, to the cent and the unit.
//!
//! Needs the stack (`make up`); `stack/smoke.sh` runs it:
//! `cargo test -p e2e --test scenario -- --ignored`.
#![allow(clippy::unwrap_used, clippy::too_many_lines, reason = "a test: a panic is the failure report")]

use serde_json::{json, Value};
use uuid::Uuid;

use e2e::day::{charger, id, open_shop, pay, sell, wallet, Shop, GET, POST};
use e2e::{minor, unique, Stack};

#[tokio::test]
#[ignore = "needs the running stack (make up); run by stack/smoke.sh"]
async fn a_shops_day_from_sign_up_to_the_closed_shift_agrees_with_the_ledgers() {
    let stack = Stack::new().await;
    let shop_name = format!("Kandy Mobile {}", unique());
    let shop = open_shop(&stack, &shop_name).await;

    // A customer signs in with Google and tops up a wallet at the till (cash into the drawer).
    let customer = stack.google_customer("Sunil Fernando").await;
    let wallet_path = format!("/order/customer-wallet/{}/{}", shop.id, customer.id);
    let top_up = json!({"amount": "3000.00", "method": "CASH", "registerId": shop.register});
    // Until the order service has the customer from auth's event, a top-up is 404 and
    // changes nothing.
    let w = stack
        .eventually("the order service knows the customer", || async {
            let (s, w) = stack
                .call(POST, &format!("{wallet_path}/top-up"), Some(top_up.clone()), Some(&shop.cashier.token))
                .await;
            match s.as_u16() {
                404 => None,
                _ => Some((s, w)),
            }
        })
        .await;
    assert_eq!(Stack::expect(w, 201, "top-up")["balance"], "3000.00");

    // a. Cash with change.
    let (s, a) =
        sell(&stack, &shop, json!({"items": [charger(&shop, 1)], "payments": [pay("CASH", "2000.00")]}), None).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!((a["total"].as_str(), a["change"].as_str()), (Some("1500.00"), Some("500.00")));
    // b. Card.
    let (s, b) =
        sell(&stack, &shop, json!({"items": [charger(&shop, 1)], "payments": [pay("CARD", "1500.00")]}), None).await;
    assert_eq!((s, b["change"].as_str()), (201, Some("0.00")), "{b}");
    // c. From the wallet.
    let (s, c) = sell(
        &stack,
        &shop,
        json!({"customerId": customer.id, "items": [charger(&shop, 1)], "payments": [pay("WALLET", "1500.00")]}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(wallet(&stack, &shop, &customer).await["balance"], "1500.00");
    // d. Split between card and cash, a serialized unit by its barcode.
    let imei_a = format!("IMEI-A-{}", shop.id);
    let (s, d) = sell(
        &stack,
        &shop,
        json!({"customerId": customer.id, "items": [{"barcode": imei_a}],
        "payments": [pay("CARD", "30000.00"), pay("CASH", "20000.00")]}),
        None,
    )
    .await;
    assert_eq!((s, d["total"].as_str()), (201, Some("50000.00")), "{d}");
    assert!(d["orderItems"][0]["warrantyUntil"].is_string(), "{d}");
    // e. On credit, within the shop's limit of 5000.00: 3000.00 with 500.00 paid leaves 2500.00 due.
    let (s, e) = sell(
        &stack,
        &shop,
        json!({"customerId": customer.id, "items": [charger(&shop, 2)], "payments": [pay("CASH", "500.00")]}),
        None,
    )
    .await;
    assert_eq!((s, e["paymentDue"].as_str()), (201, Some("2500.00")), "{e}");
    assert_eq!(wallet(&stack, &shop, &customer).await["balance"], "-1000.00");
    // Beyond the limit: refused, nothing booked, nothing held.
    let imei_b = format!("IMEI-B-{}", shop.id);
    let (s, over) = sell(
        &stack,
        &shop,
        json!({"customerId": customer.id, "items": [{"barcode": imei_b}], "payments": [pay("CASH", "1000.00")]}),
        None,
    )
    .await;
    assert_eq!((s, over["code"].as_str()), (422, Some("CREDIT_LIMIT_EXCEEDED")), "{over}");
    // f. A checkout retried with the same Idempotency-Key (the till lost the answer): one sale.
    let key = format!("till-1-{}", unique());
    let body = json!({"items": [charger(&shop, 1)], "payments": [pay("CASH", "1500.00")]});
    let (s1, f1) = sell(&stack, &shop, body.clone(), Some(&key)).await;
    let (s2, f2) = sell(&stack, &shop, body, Some(&key)).await;
    assert_eq!((s1, s2), (201, 201), "{f1} {f2}");
    assert_eq!(f1["id"], f2["id"], "the retry is the same order");

    // The customer's receipt for the split sale: its PDF says what the order says.
    let mail = stack.mail(&customer.email, &format!("(#{})", d["sequence"])).await;
    assert_eq!(mail["attachments"][0]["content_type"], "application/pdf", "{mail}");
    let pdf = stack.pdf_of(&mail).await;
    let text = String::from_utf8_lossy(&pdf);
    for line in [
        format!("(Receipt #{})", d["sequence"]),
        "(Total \\(LKR\\): 50000.00)".to_owned(),
        "(Paid by card: 30000.00)".to_owned(),
        "(Paid by cash: 20000.00)".to_owned(),
        format!("(    #{imei_a})"),
    ] {
        let plain = line.replace("\\(", "(").replace("\\)", ")");
        assert!(text.contains(&line) || text.contains(&plain), "the receipt PDF lacks {plain}");
    }

    // A return of the wallet sale refunds to the wallet and restocks.
    let ret = json!({"items": [{"productId": shop.charger, "quantity": 1}], "refund": [pay("WALLET", "1500.00")], "restock": true, "reason": "faulty"});
    let r = stack
        .call_keyed(
            POST,
            &format!("/order/orders/{}/returns", id(&c)),
            Some(ret),
            Some(&shop.cashier.token),
            Some(&unique()),
        )
        .await;
    let r = Stack::expect(r, 201, "return");
    assert_eq!((r["orderStatus"].as_str(), r["totalRefund"].as_str()), (Some("REFUNDED"), Some("1500.00")));
    assert_eq!(wallet(&stack, &shop, &customer).await["balance"], "500.00");
    let levels = format!("/stock/levels?shopId={}", shop.id);
    let charger_level = stack
        .eventually("the return restocks the charger", || async {
            let (_, page) = stack.call(GET, &levels, None, Some(&shop.owner.token)).await;
            let p = page["data"].as_array()?.iter().find(|p| p["id"] == shop.charger.as_str())?.clone();
            (p["onHand"] == 5).then_some(p)
        })
        .await;
    assert_eq!((charger_level["reserved"].as_i64(), charger_level["available"].as_i64()), (Some(0), Some(5)));
    // 10 received, 6 sold, 1 back: availability crossed the threshold of 5 going down once.
    let low = stack.mail(&shop.owner.email, "Low stock: Charger").await;
    assert!(low["subject"].as_str().unwrap().contains("left"), "{low}");

    // The shift closes 100.00 short; the Z report is frozen with the variance.
    let reg = format!("/order/registers/{}", shop.register);
    let x = Stack::expect(
        stack.call(GET, &format!("{reg}/current"), None, Some(&shop.cashier.token)).await,
        200,
        "X report",
    );
    // Float 5000 + top-up 3000 + (2000 - 500 change) + 20000 + 500 + 1500.
    assert_eq!(x["expectedCash"], "31500.00", "{x}");
    let z = json!({"counted": "31400.00", "note": "one note missing"});
    let z = Stack::expect(
        stack.call(POST, &format!("{reg}/close"), Some(z), Some(&shop.cashier.token)).await,
        200,
        "close",
    );
    assert_eq!((z["status"].as_str(), z["variance"].as_str()), (Some("CLOSED"), Some("-100.00")), "{z}");
    let z_again = stack.call(GET, &format!("{reg}/z/{}", z["zNumber"]), None, Some(&shop.cashier.token)).await;
    assert_eq!(Stack::expect(z_again, 200, "Z report")["expectedCash"], "31500.00");

    check_the_ledgers(&stack, &shop, &z).await;
}

/// Reports, balances, the Z report, orders and stock against the rows, in SQL.
async fn check_the_ledgers(stack: &Stack, shop: &Shop, z: &Value) {
    let shop_id: Uuid = shop.id.parse().unwrap();
    let t = &shop.owner.token;
    // Money held per method: every counted ledger row, in less out (the float is the
    // drawer's own, not income; wallet movements are not money held).
    let (cash, card, bank): (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(m) filter (where method = 'CASH'), 0)::int8,
                coalesce(sum(m) filter (where method = 'CARD'), 0)::int8,
                coalesce(sum(m) filter (where method = 'BANK'), 0)::int8
           from (select method, case direction when 'IN' then amount_minor else -amount_minor end as m
                   from sales.ledger
                  where shop_id = $1 and source not in ('OPENING_FLOAT')) l",
    )
    .bind(shop_id)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    // Top-up 3000 + 1500 net + 20000 + 500 + 1500 - 100 short; card 1500 + 30000.
    assert_eq!((cash, card, bank), (2_640_000, 3_150_000, 0));
    let balance = Stack::expect(
        stack.call(GET, &format!("/order/shop-balance/{}", shop.id), None, Some(t)).await,
        200,
        "balance",
    );
    assert_eq!(
        (minor(&balance["cashBalance"]), minor(&balance["cardBalance"]), minor(&balance["bankBalance"])),
        (cash, card, bank),
        "{balance}"
    );
    assert_eq!(minor(&balance["totalBalance"]), cash + card + bank);
    let report = Stack::expect(
        stack.call(GET, &format!("/order/cash-flow/comprehensive/{}", shop.id), None, Some(t)).await,
        200,
        "comprehensive report",
    );
    assert_eq!(minor(&report["cashBalance"]), cash, "{report}");
    assert_eq!(minor(&report["cardBalance"]), card);
    assert_eq!(minor(&report["currentBalance"]), cash + card + bank);
    let dues = &report["customerDues"];
    assert_eq!(dues["count"], 0, "the top-up was spent and the due refunded by the return: {dues}");

    // The Z report is the shift's cash rows.
    let (expected, counted_variance): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(case direction when 'IN' then amount_minor else -amount_minor end)
                         filter (where method = 'CASH' and source <> 'CLOSING_VARIANCE'), 0)::int8,
                coalesce(sum(case direction when 'IN' then amount_minor else -amount_minor end)
                         filter (where source = 'CLOSING_VARIANCE'), 0)::int8
           from sales.ledger where shift_id = (select shift_id from sales.shifts where register_id = $1 and z_number = $2)",
    )
    .bind(shop.register.parse::<Uuid>().unwrap())
    .bind(z["zNumber"].as_i64().unwrap())
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!((minor(&z["expectedCash"]), minor(&z["variance"])), (expected, counted_variance));

    // Every order balances: what was paid, less change, plus what is due, is its total; six
    // sales, none for the refused one or the retry.
    let orders: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select order_number, total_minor, paid_minor, change_minor, due_minor from sales.orders where shop_id = $1 order by order_number",
    )
    .bind(shop_id)
    .fetch_all(&stack.db)
    .await
    .unwrap();
    assert_eq!(orders.len(), 6, "{orders:?}");
    for (number, total, paid, change, due) in &orders {
        assert_eq!(paid - change + due, *total, "{number}");
    }
    let paid_rows: i64 =
        sqlx::query_scalar("select coalesce(sum(p.amount_minor), 0)::int8 from sales.payments p join sales.orders o using (order_id) where o.shop_id = $1")
            .bind(shop_id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!(paid_rows, orders.iter().map(|o| o.2).sum::<i64>(), "payments add up to what orders say was paid");

    // Stock: the level is its ledger, and the API says the same.
    let charger: Uuid = shop.charger.parse().unwrap();
    let (on_hand, reserved, ledger_on, ledger_res): (i32, i32, i64, i64) = sqlx::query_as(
        "select l.on_hand, l.reserved,
                (select coalesce(sum(on_hand_delta), 0)::int8 from stock.movements where product_id = $1),
                (select coalesce(sum(reserved_delta), 0)::int8 from stock.movements where product_id = $1)
           from stock.levels l where l.product_id = $1",
    )
    .bind(charger)
    .fetch_one(&stack.db)
    .await
    .unwrap();
    assert_eq!((on_hand, reserved), (5, 0));
    assert_eq!((i64::from(on_hand), i64::from(reserved)), (ledger_on, ledger_res));
    let units: Vec<(String, String)> =
        sqlx::query_as("select barcode, status from stock.items where product_id = $1 order by barcode")
            .bind(shop.phone.parse::<Uuid>().unwrap())
            .fetch_all(&stack.db)
            .await
            .unwrap();
    let statuses: Vec<&str> = units.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, vec!["SOLD", "AVAILABLE"], "IMEI-A sold, IMEI-B refused on credit and still here: {units:?}");
}
