//! Cashflow: the balance, the reports and the daily totals always equal the ledger; expenses
//! and upcoming payments (recurring dates roll with month ends); the first system's cashflow
//! page calls field by field; one shop never sees another's money.

use futures::future::join_all;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};
use crate::registers::{assert_totals_match_ledger, cents, ledger_cash};

/// (cash, card, bank) in minor units from the ledger itself, as the balance must be.
async fn ledger_balance(app: &TestApp, shop: Uuid) -> (i64, i64, i64) {
    let row: (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(case when method = 'CASH' then s end), 0)::int8, coalesce(sum(case when method = 'CARD' then s end), 0)::int8,
                coalesce(sum(case when method = 'BANK' then s end), 0)::int8
           from (select method, case direction when 'IN' then amount_minor else -amount_minor end as s
                   from sales.ledger where shop_id = $1 and source <> 'OPENING_FLOAT') l",
    )
    .bind(shop)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    row
}

/// The daily totals, recomputed from the ledger, equal the maintained ones exactly.
async fn assert_days_match_ledger(app: &TestApp, shop: Uuid) {
    let drift: i64 = sqlx::query_scalar(
        "select count(*) from (
             (select day, method, source, direction, amount_minor, entries from sales.ledger_days where shop_id = $1
              except
              select (l.created_at at time zone s.time_zone)::date, l.method, l.source, l.direction, sum(l.amount_minor), count(*)
                from sales.ledger l join sales.shops s using (shop_id) where l.shop_id = $1 group by 1, 2, 3, 4)
             union all
             (select (l.created_at at time zone s.time_zone)::date, l.method, l.source, l.direction, sum(l.amount_minor), count(*)
                from sales.ledger l join sales.shops s using (shop_id) where l.shop_id = $1 group by 1, 2, 3, 4
              except
              select day, method, source, direction, amount_minor, entries from sales.ledger_days where shop_id = $1)) d",
    )
    .bind(shop)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(drift, 0, "ledger_days drifted from the ledger");
}

fn minor(v: &Value) -> i64 {
    let s = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let (whole, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let neg = whole.starts_with('-');
    let m = whole.trim_start_matches('-').parse::<i64>().unwrap() * 100 + format!("{frac:0<2}").parse::<i64>().unwrap();
    if neg {
        -m
    } else {
        m
    }
}

async fn assert_balance_is_the_ledger(app: &TestApp, shop: Uuid, owner: &str) {
    let (status, b) = app.call("GET", &format!("/shop-balance/{shop}"), None, owner).await;
    assert_eq!(status, 200, "{b}");
    let (cash, card, bank) = ledger_balance(app, shop).await;
    assert_eq!(
        (minor(&b["cashBalance"]), minor(&b["cardBalance"]), minor(&b["bankBalance"]), minor(&b["totalBalance"])),
        (cash, card, bank, cash + card + bank),
        "{b}"
    );
    assert_days_match_ledger(app, shop).await;
}

#[tokio::test]
async fn the_first_dashboards_cashflow_page_reads_every_field_from_the_ledger() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 100).await;
    let (staff, owner) = (app.staff(shop).await, app.owner(shop).await);
    let customer = app.seed_person("Sunil", "sunil@example.test").await;
    let (s, _) = app
        .call(
            "PUT",
            &format!("/shops/{shop}/settings"),
            Some(json!({"allowCredit": true, "creditLimit": 5000})),
            &owner,
        )
        .await;
    assert_eq!(s, 200);
    // A cash sale with change, a card sale, a sale left partly owed, an expense.
    for (qty, payments) in
        [(8, json!([{"method": "CASH", "amount": 1000}])), (2, json!([{"method": "CARD", "amount": 200}]))]
    {
        let (s, o) = app
            .order(
                json!({"shopId": shop, "items": [{"productId": rice, "quantity": qty}], "payments": payments}),
                &staff,
                None,
            )
            .await;
        assert_eq!(s, 201, "{o}");
    }
    let (s, o) = app
        .order(
            json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice, "quantity": 2}],
                   "payments": [{"method": "CASH", "amount": 50}]}),
            &staff,
            None,
        )
        .await;
    assert_eq!(s, 201, "{o}");
    let (s, e) = app
        .call(
            "POST",
            "/cash-flow/expenses",
            Some(json!({"shopId": shop, "amount": "40.00", "method": "CASH", "category": "=SUM(A1)", "description": "Tea"})),
            &staff,
        )
        .await;
    assert_eq!((s, e["amount"].as_str(), e["method"].as_str()), (201, Some("40.00"), Some("CASH")), "{e}");

    // Upcoming payments as the first dashboard sends them, and ours.
    let (s, rent) = app
        .call(
            "POST",
            "/upcoming-payments",
            Some(json!({"description": "Rent", "amount": "123.45", "dueDate": "2026-01-31", "isRecurring": true, "shopId": shop})),
            &owner,
        )
        .await;
    assert_eq!(s, 201, "{rent}");
    for (field, kind) in [
        ("id", "s"),
        ("description", "s"),
        ("amount", "s"),
        ("dueDate", "s"),
        ("paymentType", "s"),
        ("isPriority", "b"),
        ("shopId", "s"),
        ("createdAt", "s"),
        ("updatedAt", "s"),
    ] {
        let ok = if kind == "s" { rent[field].is_string() } else { rent[field].is_boolean() };
        assert!(ok, "{field} in {rent}");
    }
    assert_eq!(
        (rent["paymentType"].as_str(), rent["frequency"].as_str(), rent["isOverdue"].as_bool()),
        (Some("RECURRING"), Some("MONTHLY"), Some(true))
    );
    let rent_id = rent["id"].as_str().unwrap().to_owned();
    let (s, bill) = app
        .call(
            "POST",
            "/upcoming-payments",
            Some(json!({"description": "Electricity", "amount": 30, "dueDate": "2099-01-10", "frequency": "QUARTERLY", "isPriority": true})),
            &owner,
        )
        .await;
    assert_eq!((s, bill["paymentType"].as_str()), (201, Some("RECURRING")), "{bill}");
    let (s, b) = app
        .call("POST", "/upcoming-payments", Some(json!({"description": "X", "amount": 1, "dueDate": "2026-01-01", "isRecurring": false, "frequency": "DAILY"})), &owner)
        .await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("frequency")), "{b}");
    // PUT with the id in the body (the first dashboard's), then pay twice: the rent rolls
    // from Jan 31 to Feb 28 and back to Mar 31, each payment an expense.
    let (s, edited) = app
        .call(
            "PUT",
            &format!("/upcoming-payments/{rent_id}"),
            Some(json!({"id": rent_id, "description": "Shop rent", "amount": "100.00", "dueDate": "2026-01-31", "isRecurring": true})),
            &owner,
        )
        .await;
    assert_eq!(
        (s, edited["description"].as_str(), edited["amount"].as_str()),
        (200, Some("Shop rent"), Some("100.00")),
        "{edited}"
    );
    for want in ["2026-02-28", "2026-03-31"] {
        let (s, paid) = app.call("PUT", &format!("/upcoming-payments/{rent_id}/pay"), None, &owner).await;
        assert_eq!(s, 200, "{paid}");
        assert_eq!(
            (paid["payment"]["dueDate"].as_str(), paid["expense"]["amount"].as_str()),
            (Some(want), Some("100.00")),
            "{paid}"
        );
    }
    let (s, list) = app.call("GET", &format!("/upcoming-payments?shopId={shop}"), None, &owner).await;
    assert_eq!((s, list["count"].as_i64(), list["data"].as_array().map(Vec::len)), (200, Some(2), Some(2)), "{list}");

    // Shop balance: strings, equal to the ledger (cash 1000 - 200 change + 50 - 40 - 200 rent;
    // card 200).
    assert_balance_is_the_ledger(&app, shop, &owner).await;
    let (_, b) = app.call("GET", &format!("/shop-balance/{shop}"), None, &owner).await;
    assert_eq!(
        (b["cashBalance"].as_str(), b["cardBalance"].as_str(), b["bankBalance"].as_str(), b["totalBalance"].as_str()),
        (Some("610.00"), Some("200.00"), Some("0.00"), Some("810.00")),
        "{b}"
    );

    // Customer dues: numbers.
    let (s, d) = app.call("GET", &format!("/cash-flow/customer-dues/{shop}"), None, &owner).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!((d["totalDues"].as_f64(), d["count"].as_i64()), (Some(150.0), Some(1)), "{d}");
    let due = &d["duesList"][0];
    assert_eq!(
        (due["customerId"].as_str(), due["customerName"].as_str(), due["contactInfo"].as_str()),
        (Some(customer.to_string().as_str()), Some("Sunil"), Some("sunil@example.test"))
    );
    assert_eq!(
        (due["balance"].as_f64(), due["dueAmount"].as_f64(), due["isDue"].as_bool()),
        (Some(-150.0), Some(150.0), Some(true))
    );

    // The comprehensive report, every field the dashboard reads with its type.
    let (s, r) = app.call("GET", &format!("/cash-flow/comprehensive/{shop}"), None, &owner).await;
    assert_eq!(s, 200, "{r}");
    for f in [
        "currentBalance",
        "totalIncome",
        "totalExpenses",
        "projectedBalance",
        "totalUpcoming",
        "dailyTarget",
        "dailyProgress",
        "incomeGrowth",
        "expenseGrowth",
        "adjustedBalance",
    ] {
        assert!(r[f].is_number(), "{f} is a number: {r}");
    }
    assert!(
        r["upcomingPayments"].is_array()
            && r["transactions"]["recent"].is_array()
            && r["transactions"]["monthlyTrends"].is_array()
    );
    assert!(
        r["customerDues"]["totalDues"].is_number()
            && r["customerDues"]["duesList"].is_array()
            && r["customerDues"]["count"].is_number()
    );
    assert!(["HEALTHY", "WARNING", "CRITICAL"].contains(&r["healthStatus"].as_str().unwrap()), "{r}");
    assert!(r["daysUntilNextPayment"].is_number() || r["daysUntilNextPayment"].is_null());
    assert_eq!(r["currentBalance"].as_f64(), Some(810.0));
    // Income this month: 1000 - 200 change + 200 + 50 = 1050; expenses 40 + 200 rent.
    assert_eq!((r["totalIncome"].as_f64(), r["totalExpenses"].as_f64()), (Some(1050.0), Some(240.0)), "{r}");
    assert_eq!(r["dailyProgress"].as_f64(), Some(1050.0));
    let recent = &r["transactions"]["recent"][0];
    for f in ["id", "description", "amount", "date", "shopId", "type", "category", "createdAt", "updatedAt"] {
        assert!(recent[f].is_string(), "{f} in {recent}");
    }
    assert!(recent["isRecurring"].is_boolean());
    let sale = r["transactions"]["recent"].as_array().unwrap().iter().find(|t| t["source"] == "SALE").unwrap();
    assert_eq!(sale["type"], "ORDER_PAYMENT");
    assert!(sale["description"].as_str().unwrap().contains("Order #ORD-"), "{sale}");
    let summary = &r["transactions"]["summary"];
    assert!(summary["ORDER_PAYMENT"]["count"].is_number() && summary["EXPENSE"]["total"].is_number(), "{summary}");
    let trend = r["transactions"]["monthlyTrends"].as_array().unwrap();
    assert_eq!(trend.len(), 6);
    assert!(trend[5]["month"].is_string() && trend[5]["income"].is_number() && trend[5]["net"].is_number());
    // The rent (overdue, next due Mar 31) is in the upcoming payments within 30 days.
    assert_eq!(r["totalUpcoming"].as_f64(), Some(100.0), "{r}");
    assert_eq!(r["daysUntilNextPayment"].as_i64(), Some(0), "overdue: {r}");

    // The CSV export: the header, one line per row, and a formula kept as text.
    let res = app
        .http
        .get(format!("{}/cash-flow/export?shopId={shop}", app.base_url))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from sales.ledger where shop_id = $1")
        .bind(shop)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(csv.lines().count() as i64, rows + 1, "{csv}");
    assert!(csv.contains("\"'=SUM(A1): Tea\""), "a formula stays text: {csv}");
    let (s, b) =
        app.call("GET", &format!("/cash-flow/export?shopId={shop}&from=2026-05-02&to=2026-05-01"), None, &owner).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("to")));

    // The ledger and expenses are history: no update, no delete, not even by hand.
    for sql in
        ["update sales.ledger set amount_minor = 1 where shop_id = $1", "delete from sales.expenses where shop_id = $1"]
    {
        assert!(sqlx::query(sql).bind(shop).execute(&app.db.admin).await.is_err(), "{sql}");
    }
    // A one-time payment is paid once; deleting a paid recurring one cancels it.
    let (_, once) = app
        .call(
            "POST",
            "/upcoming-payments",
            Some(json!({"description": "Repair", "amount": 10, "dueDate": "2026-02-01", "shopId": shop})),
            &owner,
        )
        .await;
    let once_id = once["id"].as_str().unwrap();
    let (s, _) = app.call("PUT", &format!("/upcoming-payments/{once_id}/pay"), None, &owner).await;
    assert_eq!(s, 200);
    let (s, again) = app.call("PUT", &format!("/upcoming-payments/{once_id}/pay"), None, &owner).await;
    assert_eq!((s, again["code"].as_str()), (409, Some("PAYMENT_NOT_PENDING")), "{again}");
    let (s, _) = app.call("DELETE", &format!("/upcoming-payments/{rent_id}"), None, &owner).await;
    assert_eq!(s, 200);
    let (_, gone) = app.call("GET", &format!("/upcoming-payments/{rent_id}"), None, &owner).await;
    assert_eq!(gone["status"], "CANCELLED");
    assert_balance_is_the_ledger(&app, shop, &owner).await;

    // Staff book expenses but do not read the owner's figures; another shop sees nothing.
    let (s, _) = app.call("GET", &format!("/shop-balance/{shop}"), None, &staff).await;
    assert_eq!(s, 403);
    let other = app.seed_shop().await;
    let other_owner = app.owner(other).await;
    for path in [
        format!("/shop-balance/{shop}"),
        format!("/cash-flow/comprehensive/{shop}"),
        format!("/cash-flow/customer-dues/{shop}"),
    ] {
        let (s, _) = app.call("GET", &path, None, &other_owner).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = app.call("GET", &format!("/upcoming-payments/{rent_id}"), None, &other_owner).await;
    assert_eq!(s, 404);
    let (s, b) = app.call("GET", &format!("/shop-balance/{other}"), None, &other_owner).await;
    assert_eq!((s, b["totalBalance"].as_str()), (200, Some("0.00")), "{b}");
    app.stop();
}

/// Sales with split payments and change, returns, top-ups, dues paid, expenses, paid bills and
/// cash in and out on two registers per shop (one closing with a miscount halfway and opening
/// a second shift), in two shops, some at once; then a time-zone change. The balance per method, the daily
/// totals and the reports equal the ledger throughout, and neither shop sees the other's.
#[tokio::test]
async fn balances_and_daily_totals_equal_the_ledger_after_a_random_workload() {
    let app = spawn_app().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1122);
    let mut shops = Vec::new();
    for _ in 0..2 {
        let shop = app.seed_shop().await;
        let rice = app.bulk_product(shop, "Rice", "100.00", 1_000).await;
        let (staff, owner) = (app.staff(shop).await, app.owner(shop).await);
        let customers = [app.seed_person("A", "a@example.test").await, app.seed_person("B", "b@example.test").await];
        let (s, _) = app
            .call(
                "PUT",
                &format!("/shops/{shop}/settings"),
                Some(json!({"allowCredit": true, "creditLimit": 100000})),
                &owner,
            )
            .await;
        assert_eq!(s, 200);
        let tills = [Uuid::now_v7(), Uuid::now_v7()];
        for till in tills {
            let (s, x) =
                app.call("POST", &format!("/registers/{till}/open"), Some(json!({"float": 1000})), &staff).await;
            assert_eq!(s, 201, "{x}");
        }
        shops.push((shop, rice, staff, owner, customers, tills));
    }
    let methods = ["CASH", "CARD", "BANK"];
    for round in 0..6 {
        let mut calls = Vec::new();
        for (shop, rice, staff, owner, customers, tills) in &shops {
            for _ in 0..4 {
                let customer = customers[rng.gen_range(0..2)];
                let till = tills[rng.gen_range(0..2)];
                let qty: i64 = rng.gen_range(1..4);
                let body = match rng.gen_range(0..7) {
                    // Split tender, cash last with change.
                    0 => (
                        "order",
                        json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice, "quantity": qty}],
                        "payments": [{"method": methods[rng.gen_range(1..3)], "amount": 50}, {"method": "CASH", "amount": qty * 100}]}),
                    ),
                    // Partly owed.
                    1 => (
                        "order",
                        json!({"shopId": shop, "customerId": customer, "items": [{"productId": rice, "quantity": qty}],
                        "payments": [{"method": "CASH", "amount": rng.gen_range(1..qty * 100)}]}),
                    ),
                    2 => ("top-up", json!({"amount": rng.gen_range(1..500), "method": methods[rng.gen_range(0..3)]})),
                    3 => (
                        "expense",
                        json!({"shopId": shop, "amount": rng.gen_range(1..90), "method": methods[rng.gen_range(0..3)], "category": "Supplies"}),
                    ),
                    // Cash into or out of a till.
                    5 => (
                        if rng.gen_bool(0.5) { "cash-in" } else { "cash-out" },
                        json!({"amount": rng.gen_range(1..300), "reason": "till float"}),
                    ),
                    _ => (
                        "order",
                        json!({"shopId": shop, "items": [{"productId": rice, "quantity": qty}],
                        "payments": [{"method": methods[rng.gen_range(0..3)], "amount": qty * 100}]}),
                    ),
                };
                let (kind, mut body) = body;
                if kind == "order" {
                    body["registerId"] = json!(till);
                }
                let app = &app;
                let (staff, shop) = (staff.clone(), *shop);
                calls.push(async move {
                    let (s, v) = match kind {
                        "order" => app.order(body, &staff, None).await,
                        "top-up" => {
                            app.call("POST", &format!("/customer-wallet/{shop}/{customer}/top-up"), Some(body), &staff)
                                .await
                        }
                        "cash-in" | "cash-out" => {
                            app.call("POST", &format!("/registers/{till}/{kind}"), Some(body), &staff).await
                        }
                        _ => app.call("POST", "/cash-flow/expenses", Some(body), &staff).await,
                    };
                    assert_eq!(s, 201, "{kind}: {v}");
                    v
                });
            }
            // A return of a cash sale, once per round, and a paid bill.
            let (s, o) = app
                .order(json!({"shopId": shop, "items": [{"productId": rice, "quantity": 2}], "payments": [{"method": "CASH", "amount": 200}]}), staff, None)
                .await;
            assert_eq!(s, 201, "{o}");
            let (s, back) = app
                .call(
                    "POST",
                    &format!("/orders/{}/returns", o["id"].as_str().unwrap()),
                    Some(json!({"items": [{"productId": rice, "quantity": 1}]})),
                    staff,
                )
                .await;
            assert_eq!(s, 201, "{back}");
            let (s, bill) = app
                .call("POST", "/upcoming-payments", Some(json!({"shopId": shop, "description": format!("Bill {round}"), "amount": 25, "dueDate": "2026-11-01", "frequency": "WEEKLY"})), owner)
                .await;
            assert_eq!(s, 201, "{bill}");
            let (s, paid) = app
                .call(
                    "PUT",
                    &format!("/upcoming-payments/{}/pay", bill["id"].as_str().unwrap()),
                    Some(json!({"method": "BANK"})),
                    owner,
                )
                .await;
            assert_eq!((s, paid["payment"]["dueDate"].as_str()), (200, Some("2026-11-08")), "{paid}");
        }
        join_all(calls).await;
        for (shop, _, _, owner, _, _) in &shops {
            assert_balance_is_the_ledger(&app, *shop, owner).await;
        }
        // Halfway, the first till of each shop closes with a miscount and opens a second
        // shift: the variance is counted − expected, the expected the ledger's.
        if round == 2 {
            for (_, _, staff, _, _, tills) in &shops {
                let (_, x) = app.call("GET", &format!("/registers/{}/current", tills[0]), None, staff).await;
                let expected = cents(&x["expectedCash"]);
                assert_eq!(expected, ledger_cash(&app, x["shiftId"].as_str().unwrap()).await, "{x}");
                let counted = (expected + rng.gen_range(-500..500)).max(0);
                let (s, z) = app
                    .call(
                        "POST",
                        &format!("/registers/{}/close", tills[0]),
                        Some(json!({"counted": format!("{}.{:02}", counted / 100, counted % 100)})),
                        staff,
                    )
                    .await;
                assert_eq!(s, 200, "{z}");
                assert_eq!((cents(&z["expectedCash"]), cents(&z["variance"])), (expected, counted - expected), "{z}");
                let (s, _) = app
                    .call("POST", &format!("/registers/{}/open", tills[0]), Some(json!({"float": 300})), staff)
                    .await;
                assert_eq!(s, 201);
            }
        }
    }
    // Every open shift's X report is its ledger's.
    for (_, _, staff, _, _, tills) in &shops {
        for till in tills {
            let (_, x) = app.call("GET", &format!("/registers/{till}/current"), None, staff).await;
            assert_eq!(cents(&x["expectedCash"]), ledger_cash(&app, x["shiftId"].as_str().unwrap()).await, "{x}");
        }
    }
    assert_totals_match_ledger(&app).await;
    // The reports agree with the ledger too, and shop A's figures are A's alone.
    for (shop, _, _, owner, _, _) in &shops {
        let (_, r) = app.call("GET", &format!("/cash-flow/comprehensive/{shop}"), None, owner).await;
        let (cash, card, bank) = ledger_balance(&app, *shop).await;
        assert_eq!(minor(&r["currentBalance"]), cash + card + bank, "{r}");
        let income: i64 = sqlx::query_scalar(
            "select coalesce(sum(case when source = 'CHANGE' then -amount_minor else amount_minor end), 0)::int8 from sales.ledger
              where shop_id = $1 and method <> 'WALLET'
                and (source in ('SALE', 'CHANGE', 'DUE_PAYMENT', 'WALLET_TOP_UP') or (source = 'CLOSING_VARIANCE' and direction = 'IN'))",
        )
        .bind(shop)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
        assert_eq!(minor(&r["totalIncome"]), income, "{r}");
        let (_, d) = app.call("GET", &format!("/cash-flow/customer-dues/{shop}"), None, owner).await;
        let theirs = &shops.iter().find(|s| s.0 != *shop).unwrap().4;
        for due in d["duesList"].as_array().unwrap() {
            assert!(!theirs.contains(&due["customerId"].as_str().unwrap().parse::<Uuid>().unwrap()), "{d}");
        }
    }
    // A new time zone re-buckets the days; the totals still equal the ledger.
    let (shop, _, _, owner, _, _) = &shops[0];
    let (s, _) = app
        .call("PUT", &format!("/shops/{shop}/settings"), Some(json!({"timeZone": "Pacific/Kiritimati"})), owner)
        .await;
    assert_eq!(s, 200);
    assert_balance_is_the_ledger(&app, *shop, owner).await;
    app.stop();
}
