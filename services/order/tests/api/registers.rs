//! Register shifts: open with a float, sales and cash movements land in the open shift, the
//! X report equals the ledger, the close records the variance and freezes a gapless Z
//! report, and nothing lands in a closed shift, not even a sale racing the close.

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

/// Expected cash of a shift from the ledger rows themselves.
pub async fn ledger_cash(app: &TestApp, shift: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(case direction when 'IN' then amount_minor else -amount_minor end), 0)::int8
           from sales.ledger where shift_id = $1::uuid and method = 'CASH'",
    )
    .bind(shift)
    .fetch_one(&app.db.admin)
    .await
    .unwrap()
}

/// The kept totals of every shift equal its ledger rows.
pub async fn assert_totals_match_ledger(app: &TestApp) {
    let drift: i64 = sqlx::query_scalar(
        "select count(*) from (
            (select shift_id, method, source, direction, amount_minor, entries from sales.shift_totals
             except select shift_id, method, source, direction, sum(amount_minor), count(*) from sales.ledger
                     where shift_id is not null group by 1, 2, 3, 4)
            union all
            (select shift_id, method, source, direction, sum(amount_minor), count(*) from sales.ledger
              where shift_id is not null group by 1, 2, 3, 4
             except select shift_id, method, source, direction, amount_minor, entries from sales.shift_totals)) d",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(drift, 0, "shift totals drifted from the ledger");
}

pub fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap();
    let (w, f) = s.split_once('.').unwrap();
    let m = w.trim_start_matches('-').parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap();
    if w.starts_with('-') {
        -m
    } else {
        m
    }
}

#[tokio::test]
async fn a_shift_from_its_float_to_its_z_report() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 100).await;
    let (staff, owner) = (app.staff(shop).await, app.owner(shop).await);
    let till = Uuid::now_v7();
    let path = |p: &str| format!("/registers/{till}/{p}");

    let (s, x) = app.call("POST", &path("open"), Some(json!({"float": "500.00", "name": "Front till"})), &staff).await;
    assert_eq!(
        (s, x["expectedCash"].as_str(), x["registerName"].as_str()),
        (201, Some("500.00"), Some("Front till")),
        "{x}"
    );
    let shift = x["shiftId"].as_str().unwrap().to_owned();
    let (s, b) = app.call("POST", &path("open"), Some(json!({"float": 0})), &staff).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SHIFT_ALREADY_OPEN")), "{b}");

    // A cash sale with change and a card sale on the till; cash in and out.
    for (qty, method, paid) in [(3, "CASH", 1000), (1, "CARD", 100)] {
        let (s, o) = app
            .order(
                json!({"shopId": shop, "registerId": till, "items": [{"productId": rice, "quantity": qty}],
                       "payments": [{"method": method, "amount": paid}]}),
                &staff,
                None,
            )
            .await;
        assert_eq!(s, 201, "{o}");
    }
    let (s, x) = app
        .call("POST", &path("cash-in"), Some(json!({"amount": 200, "reason": "change from the bank"})), &staff)
        .await;
    assert_eq!((s, x["expectedCash"].as_str()), (201, Some("1000.00")), "{x}");
    let (s, x) =
        app.call("POST", &path("cash-out"), Some(json!({"amount": "100.00", "reason": "to the safe"})), &staff).await;
    assert_eq!((s, x["expectedCash"].as_str()), (201, Some("900.00")), "{x}");
    let (s, b) = app.call("POST", &path("cash-out"), Some(json!({"amount": 5})), &staff).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("reason")), "{b}");

    // The X report: float 500 + sales 300 (1000 in, 700 change) + 200 in − 100 out.
    let (s, x) = app.call("GET", &path("current"), None, &staff).await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(
        (x["expectedCash"].as_str(), x["expected"]["card"].as_str(), x["sales"].as_i64()),
        (Some("900.00"), Some("100.00"), Some(2)),
        "{x}"
    );
    assert_eq!(cents(&x["expectedCash"]), ledger_cash(&app, &shift).await);
    assert_totals_match_ledger(&app).await;

    // Close 20 short: the variance is a ledger row; the Z report is number 1 and frozen.
    let (s, z) = app
        .call(
            "POST",
            &path("close"),
            Some(json!({"counted": 880, "countedByMethod": {"CARD": 100}, "note": "busy day"})),
            &owner,
        )
        .await;
    assert_eq!(s, 200, "{z}");
    assert_eq!(
        (z["zNumber"].as_i64(), z["variance"].as_str(), z["cardVariance"].as_str(), z["status"].as_str()),
        (Some(1), Some("-20.00"), Some("0.00"), Some("CLOSED")),
        "{z}"
    );
    let short: i64 = sqlx::query_scalar("select amount_minor from sales.ledger where shift_id = $1::uuid and source = 'CLOSING_VARIANCE' and direction = 'OUT'")
        .bind(&shift)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(short, 2000);
    let (s, frozen) = app.call("GET", &path("z/1"), None, &owner).await;
    assert_eq!((s, &frozen), (200, &z));

    // Nothing lands in the closed shift: cash movements are refused; a card sale on the till
    // is booked outside any shift.
    let (s, b) = app.call("POST", &path("cash-in"), Some(json!({"amount": 1, "reason": "late"})), &staff).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SHIFT_NOT_OPEN")), "{b}");
    let (s, b) = app.call("GET", &path("current"), None, &staff).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SHIFT_NOT_OPEN")));
    let (s, o) = app
        .order(json!({"shopId": shop, "registerId": till, "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CARD", "amount": 100}]}), &staff, None)
        .await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(
        cents(&z["expectedCash"]),
        ledger_cash(&app, &shift).await + 2000,
        "the Z report's expected cash is the ledger's before the variance"
    );
    // The next shift is Z number 2.
    let (s, _) = app.call("POST", &path("open"), Some(json!({"float": 0})), &staff).await;
    assert_eq!(s, 201);
    let (s, z2) = app.call("POST", &path("close"), Some(json!({"counted": 0})), &staff).await;
    assert_eq!((s, z2["zNumber"].as_i64(), z2["variance"].as_str()), (200, Some(2), Some("0.00")), "{z2}");

    // With the shop's `requireOpenShift`, a cash sale needs an open shift (the stock it
    // reserved goes back); an unknown register is refused.
    let (s, _) =
        app.call("PUT", &format!("/shops/{shop}/settings"), Some(json!({"requireOpenShift": true})), &owner).await;
    assert_eq!(s, 200);
    let before = app.level(rice).await;
    for body in [
        json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CASH", "amount": 100}]}),
        json!({"shopId": shop, "registerId": till, "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CASH", "amount": 100}]}),
    ] {
        let (s, b) = app.order(body, &staff, None).await;
        assert_eq!((s, b["code"].as_str()), (409, Some("SHIFT_NOT_OPEN")), "{b}");
    }
    assert_eq!(app.level(rice).await, before, "the refused sales hold no stock");
    let (s, b) = app
        .order(json!({"shopId": shop, "registerId": Uuid::now_v7(), "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CARD", "amount": 100}]}), &staff, None)
        .await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("registerId")), "{b}");

    // Another shop's staff find no such register.
    let other = app.seed_shop().await;
    let stranger = app.staff(other).await;
    for (m, p, body) in
        [("GET", path("current"), None), ("POST", path("open"), Some(json!({"float": 0}))), ("GET", path("z/1"), None)]
    {
        let (s, b) = app.call(m, &p, body, &stranger).await;
        assert_eq!(s, 404, "{m} {p}: {b}");
    }
    assert_totals_match_ledger(&app).await;
    app.stop();
}

/// Two registers, many sales at once, one register closing in the middle of them: each sale
/// is in the shift or after it, never in a closed one; the Z report and the next X report
/// equal the ledger.
#[tokio::test]
async fn sales_racing_a_close_land_before_it_or_outside_the_shift() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 1_000).await;
    let staff = app.staff(shop).await;
    let tills = [Uuid::now_v7(), Uuid::now_v7()];
    let mut shifts = Vec::new();
    for till in tills {
        let (s, x) = app.call("POST", &format!("/registers/{till}/open"), Some(json!({"float": 1000})), &staff).await;
        assert_eq!(s, 201, "{x}");
        shifts.push(x["shiftId"].as_str().unwrap().to_owned());
    }
    let sale = |i: usize| {
        let till = tills[i % 2];
        let staff = staff.clone();
        let app = &app;
        async move {
            let (s, o) = app
                .order(
                    json!({"shopId": shop, "registerId": till, "items": [{"productId": rice, "quantity": 1}],
                               "payments": [{"method": "CASH", "amount": 150}]}),
                    &staff,
                    None,
                )
                .await;
            assert_eq!(s, 201, "{o}");
        }
    };
    let closing = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let (s, z) =
            app.call("POST", &format!("/registers/{}/close", tills[0]), Some(json!({"counted": 1000})), &staff).await;
        assert_eq!(s, 200, "{z}");
        z
    };
    let (_, z) = tokio::join!(join_all((0..40).map(sale)), closing);
    // The Z report counted what its shift holds (before the variance row), and nothing
    // joined the shift afterwards.
    let variance = cents(&z["variance"]);
    assert_eq!(cents(&z["expectedCash"]), ledger_cash(&app, &shifts[0]).await - variance, "{z}");
    let in_shift: i64 =
        sqlx::query_scalar("select count(*) from sales.ledger where shift_id = $1::uuid and source = 'SALE'")
            .bind(&shifts[0])
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(Some(in_shift), z["sales"].as_i64(), "{z}");
    let outside: i64 = sqlx::query_scalar(
        "select count(*) from sales.ledger where register_id = $1 and shift_id is null and source = 'SALE'",
    )
    .bind(tills[0])
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(in_shift + outside, 20, "every sale on the first till is in its shift or after it");
    let (s, x) = app.call("GET", &format!("/registers/{}/current", tills[1]), None, &staff).await;
    assert_eq!((s, x["sales"].as_i64()), (200, Some(20)), "{x}");
    assert_eq!(cents(&x["expectedCash"]), ledger_cash(&app, &shifts[1]).await);
    assert_eq!(x["expectedCash"], "3000.00", "float 1000 + 20 sales of 100 (150 in, 50 change)");
    assert_totals_match_ledger(&app).await;
    app.stop();
}

/// A keyed expense, wallet top-up, cash movement or bill payment whose answer was lost after its commit (its
/// stored answer gone, as after a crash) is not repeated by the retry: the effect's id is the
/// key's.
#[tokio::test]
async fn a_keyed_retry_after_a_lost_answer_moves_no_more_money() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let (staff, owner) = (app.staff(shop).await, app.owner(shop).await);
    let till = Uuid::now_v7();
    let (s, _) = app.call("POST", &format!("/registers/{till}/open"), Some(json!({"float": 100})), &staff).await;
    assert_eq!(s, 201);
    let (s, bill) = app
        .call(
            "POST",
            "/upcoming-payments",
            Some(json!({"description": "Water", "amount": 12, "dueDate": "2026-11-30", "frequency": "MONTHLY"})),
            &owner,
        )
        .await;
    assert_eq!(s, 201, "{bill}");
    let customer = app.seed_person("Kamal", "kamal@example.test").await;
    let calls = [
        ("POST", "/cash-flow/expenses".to_owned(), Some(json!({"amount": 30, "category": "Tea"})), staff.clone()),
        (
            "POST",
            format!("/customer-wallet/{shop}/{customer}/top-up"),
            Some(json!({"amount": 80, "method": "CASH"})),
            staff.clone(),
        ),
        ("POST", format!("/registers/{till}/cash-in"), Some(json!({"amount": 50, "reason": "coins"})), staff.clone()),
        ("PUT", format!("/upcoming-payments/{}/pay", bill["id"].as_str().unwrap()), None, owner.clone()),
    ];
    for (i, (method, path, body, token)) in calls.into_iter().enumerate() {
        let key = format!("lost-{i}");
        let ledger = || async {
            sqlx::query_scalar::<_, i64>("select count(*) from sales.ledger where shop_id = $1")
                .bind(shop)
                .fetch_one(&app.db.admin)
                .await
                .unwrap()
        };
        let (s1, first) = app.request(&app.base_url, method, &path, body.clone(), Some(&token), Some(&key)).await;
        assert!((200..300).contains(&s1), "{path}: {first}");
        let rows = ledger().await;
        sqlx::query("delete from sales.idempotency_keys where key = $1")
            .bind(&key)
            .execute(&app.db.admin)
            .await
            .unwrap();
        let (s2, again) = app.request(&app.base_url, method, &path, body, Some(&token), Some(&key)).await;
        assert_eq!(s2, s1, "{path}: {again}");
        assert_eq!(ledger().await, rows, "{path}: the retry moved money again");
    }
    let (_, wallet) = app.call("GET", &format!("/customer-wallet/{shop}/{customer}"), None, &staff).await;
    assert_eq!(wallet["balance"], "80.00", "topped up once: {wallet}");
    let (_, bill) =
        app.call("GET", &format!("/upcoming-payments/{}", bill["id"].as_str().unwrap()), None, &owner).await;
    assert_eq!(
        (bill["dueDate"].as_str(), bill["paidCount"].as_i64()),
        (Some("2026-12-30"), Some(1)),
        "paid once: {bill}"
    );
    app.stop();
}
