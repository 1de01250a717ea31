//! Who may call what: every auth endpoint against anonymous, a customer, staff of shop A,
//! the owner of shop A, the owner of shop B and a platform admin, in one table.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::spawn_app;

/// The identities, in the column order of the table.
const WHO: [&str; 6] = ["anonymous", "customer", "staff A", "owner A", "owner B", "admin"];

#[tokio::test]
async fn authorization_matrix() {
    let app = spawn_app().await;
    let (shop_a, owner_a) = app.seed_shop().await;
    let (_shop_b, owner_b) = app.seed_shop().await;
    let staff_a = app.seed_user("SHOP_STAFF", &[(shop_a, "SHOP_STAFF")]).await;
    let customer = app.seed_user("CUSTOMER", &[]).await;
    let admin = app.seed_user("ADMIN", &[]).await;
    let employee = Uuid::now_v7();
    sqlx::query(
        "insert into auth.employees (employee_id, shop_id, name, salary_minor) values ($1, $2, 'Ruwan', 8500000)",
    )
    .bind(employee)
    .bind(shop_a)
    .execute(&app.db.admin)
    .await
    .unwrap();
    let mut tokens: Vec<Option<String>> = vec![None];
    for who in [&customer, &staff_a, &owner_a, &owner_b, &admin] {
        tokens.push(Some(app.access_token(&who.email).await));
    }
    let c = customer.id;
    let s = staff_a.id;
    let nobody = Uuid::now_v7();
    let new_email = || json!({"email": format!("inv.{}@example.test", Uuid::new_v4().simple())});

    // (method, path, body, expected status per identity in WHO order)
    let taken = owner_a.email.clone();
    let table: Vec<(&str, String, Option<Value>, [u16; 6])> = vec![
        // Public endpoints: the caller's identity changes nothing; their own proofs decide.
        (
            "POST",
            "/auth/otp/generate".into(),
            Some(json!({"email": taken, "name": "X"})),
            [409, 409, 409, 409, 409, 409],
        ),
        (
            "POST",
            "/auth/register".into(),
            Some(
                json!({"name": "X", "email": "new@example.test", "password": "long enough pw", "otp": "123456", "businessName": "B", "address": "A"}),
            ),
            [400, 400, 400, 400, 400, 400],
        ),
        (
            "POST",
            "/auth/customer/register".into(),
            Some(json!({"name": "X", "email": "new@example.test", "password": "long enough pw", "otp": "123456"})),
            [400, 400, 400, 400, 400, 400],
        ),
        (
            "POST",
            "/auth/login".into(),
            Some(json!({"email": taken, "password": "not the password"})),
            [401, 401, 401, 401, 401, 401],
        ),
        ("POST", "/auth/refresh".into(), Some(json!({"refreshToken": "bogus"})), [401, 401, 401, 401, 401, 401]),
        (
            "POST",
            "/auth/reset-password".into(),
            Some(json!({"token": "bogus", "password": "long enough pw"})),
            [400, 400, 400, 400, 400, 400],
        ),
        ("POST", "/invites/accept".into(), Some(json!({"token": "bogus"})), [400, 400, 400, 400, 400, 400]),
        ("GET", "/auth/google/login".into(), None, [404, 404, 404, 404, 404, 404]),
        ("POST", "/auth/google/exchange".into(), Some(json!({"code": "bogus"})), [400, 400, 400, 400, 400, 400]),
        ("GET", "/.well-known/jwks.json".into(), None, [200, 200, 200, 200, 200, 200]),
        (
            "POST",
            "/auth/forgot-password".into(),
            Some(json!({"email": "x@example.test"})),
            [202, 202, 202, 202, 202, 202],
        ),
        ("GET", "/shops".into(), None, [401, 200, 200, 200, 200, 200]),
        (
            "POST",
            "/shops".into(),
            Some(json!({"businessName": "New", "address": "Road"})),
            [401, 403, 403, 201, 201, 201],
        ),
        ("GET", format!("/shops/{shop_a}"), None, [401, 403, 200, 200, 403, 200]),
        ("PUT", format!("/shops/{shop_a}"), Some(json!({"address": "New road"})), [401, 403, 403, 200, 403, 403]),
        ("PATCH", format!("/shops/{shop_a}/set-default"), None, [401, 403, 204, 204, 403, 403]),
        ("GET", format!("/shops/{shop_a}/customers"), None, [401, 403, 200, 200, 403, 200]),
        ("POST", format!("/shops/{shop_a}/invites"), Some(new_email()), [401, 403, 403, 201, 403, 403]),
        ("GET", format!("/shops/{shop_a}/members"), None, [401, 403, 200, 200, 403, 200]),
        (
            "PATCH",
            format!("/shops/{shop_a}/members/{s}"),
            Some(json!({"status": "ACTIVE"})),
            [401, 403, 403, 200, 403, 403],
        ),
        ("DELETE", format!("/shops/{shop_a}/members/{nobody}"), None, [401, 403, 403, 404, 403, 403]),
        ("GET", "/users".into(), None, [401, 403, 403, 403, 403, 200]),
        ("GET", format!("/users/{c}"), None, [401, 200, 403, 403, 403, 200]),
        ("PUT", format!("/users/{c}"), Some(json!({"name": "Renamed"})), [401, 200, 403, 403, 403, 200]),
        ("PUT", format!("/users/{c}"), Some(json!({"status": "ACTIVE"})), [401, 403, 403, 403, 403, 200]),
        ("DELETE", format!("/users/{nobody}"), None, [401, 403, 403, 403, 403, 404]),
        (
            "POST",
            "/employees".into(),
            Some(json!({"shopId": shop_a, "name": "New hire"})),
            [401, 403, 403, 201, 403, 403],
        ),
        ("GET", format!("/employees?shopId={shop_a}"), None, [401, 403, 200, 200, 403, 403]),
        ("GET", format!("/employees/{employee}"), None, [401, 403, 200, 200, 403, 403]),
        ("PUT", format!("/employees/{employee}"), Some(json!({"position": "Cashier"})), [401, 403, 403, 200, 403, 403]),
        ("GET", format!("/employees/shop/{shop_a}/count"), None, [401, 403, 200, 200, 403, 403]),
        ("DELETE", format!("/employees/{nobody}"), None, [401, 404, 404, 404, 404, 404]),
        // Last, as they end the callers' sessions: logout-all, then logout (which with an
        // access token ends its session, and answers 201 with a dead one too).
        ("POST", "/auth/logout-all".into(), Some(json!({})), [401, 200, 200, 200, 200, 200]),
        ("POST", "/auth/logout".into(), Some(json!({"refreshToken": "bogus"})), [201, 201, 201, 201, 201, 201]),
    ];

    let mut failures = Vec::new();
    for (method, path, body, expected) in &table {
        for (i, want) in expected.iter().enumerate() {
            let (got, answer) = app.call(method, path, body.clone(), tokens[i].as_deref()).await;
            if got != *want {
                failures.push(format!("{method} {path} as {}: expected {want}, got {got} {answer}", WHO[i]));
            }
            if got >= 400 {
                assert!(
                    answer["code"].is_string(),
                    "{method} {path} as {}: problem+json with a code: {answer}",
                    WHO[i]
                );
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix mismatches:\n{}", failures.join("\n"));
    // The table ends with the logouts: those tokens are dead now (revoked at once), so the
    // checks below sign in again.
    assert_eq!(app.call("GET", "/shops", None, tokens[3].as_deref()).await.0, 401, "logged out everywhere");
    let mut tokens: Vec<Option<String>> = vec![None];
    for who in [&customer, &staff_a, &owner_a, &owner_b, &admin] {
        tokens.push(Some(app.access_token(&who.email).await));
    }

    // Salary: the owner sees it, staff of the same shop do not.
    let (_, as_owner) = app.call("GET", &format!("/employees/{employee}"), None, tokens[3].as_deref()).await;
    let (_, as_staff) = app.call("GET", &format!("/employees/{employee}"), None, tokens[2].as_deref()).await;
    assert_eq!(as_owner["salary"], "85000.00");
    assert!(as_staff.get("salary").is_none(), "{as_staff}");
    // Users never come back with secrets.
    let (_, users) = app.call("GET", "/users?limit=100", None, tokens[5].as_deref()).await;
    let text = users.to_string();
    assert!(!text.contains("argon2") && !text.contains("passwordHash") && !text.contains("googleSub"), "{text}");
    assert!(users["meta"]["totalItems"].as_i64().unwrap() >= 5);
}
