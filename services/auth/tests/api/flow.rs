//! Sign-up to sign-out, refresh-token families, brute-force brakes, password reset.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Options, PASSWORD};

fn unique_email(tag: &str) -> String {
    format!("{tag}.{}@example.test", uuid::Uuid::new_v4().simple())
}

async fn outbox_count(app: &crate::helpers::TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from auth.outbox where message_type = $1")
        .bind(kind)
        .fetch_one(&app.db.admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn otp_sign_up_login_refresh_logout_and_a_reused_refresh_token_kills_its_family() {
    let app = spawn_app().await;
    let email = unique_email("owner");

    let (status, body) = app.post("/auth/otp/generate", json!({"email": email, "name": "Nimal"}), None).await;
    assert_eq!(status, 201, "{body}");
    let code = app.last_otp(&email).await;
    assert_eq!(code.len(), 6);
    let stored: Vec<u8> = sqlx::query_scalar("select code_hash from auth.otps where email = lower($1)")
        .bind(&email)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert!(!stored.windows(6).any(|w| w == code.as_bytes()), "the code is stored hashed");

    let register = |otp: &str| {
        json!({"name": "Nimal", "email": email, "password": PASSWORD, "otp": otp, "businessName": "Nimal Mobile",
               "address": "12 Temple Rd, Kandy", "contactPhone": "+94 81 222 3333"})
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = app.post("/auth/register", register(wrong), None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("AUTH_OTP_INVALID")), "a wrong code is a 400, not a 500");
    let (status, body) = app.post("/auth/register", register(&code), None).await;
    assert_eq!(status, 201, "{body}");
    let user = &body["user"];
    assert_eq!(user["role"], "SHOP_OWNER");
    assert_eq!(user["shops"][0]["businessName"], "Nimal Mobile");
    assert_eq!(user["shops"][0]["role"], "SHOP_OWNER");
    assert_eq!(user["defaultShop"]["id"], user["shops"][0]["id"]);
    assert!(body.get("password").is_none() && !body.to_string().contains("argon2"), "no secrets");
    assert_eq!(outbox_count(&app, "auth.user.registered").await, 1);
    assert_eq!(outbox_count(&app, "auth.shop.created").await, 1);
    let (status, body) = app.post("/auth/register", register(&code), None).await;
    assert_eq!(status, 400, "a used code is gone: {body}");
    let (status, body) =
        app.post("/auth/otp/generate", json!({"email": email.to_uppercase(), "name": "X"}), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("AUTH_EMAIL_TAKEN")));

    // Sign-in: wrong password and unknown e-mail answer alike.
    let (s1, b1) = app.post("/auth/login", json!({"email": email, "password": "wrong password"}), None).await;
    let (s2, b2) =
        app.post("/auth/login", json!({"email": unique_email("nobody"), "password": "wrong password"}), None).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1["code"], b2["code"]);
    assert_eq!(b1["detail"], b2["detail"]);

    // Two sessions: a phone and a till.
    let phone = app.login(&email).await;
    let till = app.login(&email).await;
    let access = phone["accessToken"].as_str().unwrap();
    let (status, shops) = app.call("GET", "/shops", None, Some(access)).await;
    assert_eq!(status, 200);
    assert_eq!(shops.as_array().unwrap().len(), 1);

    // Rotation: every refresh gives a new refresh token.
    let r1 = phone["refreshToken"].as_str().unwrap().to_owned();
    let (status, rotated) = app.post("/auth/refresh", json!({"refreshToken": r1}), None).await;
    assert_eq!(status, 200, "{rotated}");
    let r2 = rotated["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // Bearer form works too.
    let res = app.http.post(format!("{}/auth/refresh", app.base_url)).bearer_auth(&r2).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let r3 = res.json::<serde_json::Value>().await.unwrap()["refreshToken"].as_str().unwrap().to_owned();

    // Replaying r1 (already rotated): the family dies, so the newest token of it stops too.
    let (status, body) = app.post("/auth/refresh", json!({"refreshToken": r1}), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("AUTH_REFRESH_REUSED")));
    let (status, _) = app.post("/auth/refresh", json!({"refreshToken": r3}), None).await;
    assert_eq!(status, 401, "the newer token of the killed family is revoked too");

    // The till's session is another family and keeps working; logout ends it.
    let t1 = till["refreshToken"].as_str().unwrap().to_owned();
    let (status, till2) = app.post("/auth/refresh", json!({"refreshToken": t1}), None).await;
    assert_eq!(status, 200);
    let t2 = till2["refreshToken"].as_str().unwrap().to_owned();
    let (status, body) = app.post("/auth/logout", json!({"refreshToken": t2}), None).await;
    assert_eq!((status, body["message"].as_str()), (201, Some("Signed out.")));
    let (status, _) = app.post("/auth/refresh", json!({"refreshToken": t2}), None).await;
    assert_eq!(status, 401, "a logged-out session cannot refresh");

    // Log out everywhere.
    let a = app.login(&email).await;
    let b = app.login(&email).await;
    let (status, body) = app.post("/auth/logout-all", json!({}), Some(a["accessToken"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert!(body["sessions"].as_u64().unwrap() >= 2);
    for s in [&a, &b] {
        let (status, _) = app.post("/auth/refresh", json!({"refreshToken": s["refreshToken"]}), None).await;
        assert_eq!(status, 401);
    }

    // Suspended accounts are refused at login and at refresh.
    let c = app.login(&email).await;
    sqlx::query("update auth.users set status = 'SUSPENDED' where lower(email) = lower($1)")
        .bind(&email)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let (status, body) = app.post("/auth/login", json!({"email": email, "password": PASSWORD}), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("AUTH_ACCOUNT_DISABLED")));
    let (status, _) = app.post("/auth/refresh", json!({"refreshToken": c["refreshToken"]}), None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_sixth_wrong_otp_is_refused_even_with_the_right_code_and_resends_wait() {
    let app = spawn_app().await;
    let email = unique_email("brute");
    let (status, _) = app.post("/auth/otp/generate", json!({"email": email, "name": "B"}), None).await;
    assert_eq!(status, 201);
    let code = app.last_otp(&email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let body = |otp: &str| json!({"name": "B", "email": email, "password": PASSWORD, "otp": otp});
    for attempt in 1..=5 {
        let (status, b) = app.post("/auth/customer/register", body(wrong), None).await;
        assert_eq!((status, b["code"].as_str()), (400, Some("AUTH_OTP_INVALID")), "attempt {attempt}");
    }
    let (status, b) = app.post("/auth/customer/register", body(&code), None).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (400, Some("AUTH_OTP_ATTEMPTS_EXCEEDED")),
        "6th try refused even with the right code"
    );

    // A new code within 60 s is refused with Retry-After.
    let res = app
        .http
        .post(format!("{}/auth/otp/generate", app.base_url))
        .json(&json!({"email": email, "name": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "AUTH_OTP_RESEND_TOO_SOON");

    // After the wait a fresh code works: the old attempts do not lock the e-mail out.
    sqlx::query("update auth.otps set last_sent_at = now() - interval '61 seconds' where email = lower($1)")
        .bind(&email)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let (status, _) = app.post("/auth/otp/generate", json!({"email": email, "name": "B"}), None).await;
    assert_eq!(status, 201);
    let fresh = app.last_otp(&email).await;
    // An expired code is a 400 with its own code, never a 500.
    sqlx::query("update auth.otps set expires_at = now() - interval '1 second' where email = lower($1)")
        .bind(&email)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let (status, b) = app.post("/auth/customer/register", body(&fresh), None).await;
    assert_eq!((status, b["code"].as_str()), (400, Some("AUTH_OTP_EXPIRED")));
    sqlx::query("update auth.otps set expires_at = now() + interval '5 minutes' where email = lower($1)")
        .bind(&email)
        .execute(&app.db.admin)
        .await
        .unwrap();
    let (status, b) = app.post("/auth/customer/register", body(&fresh), None).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["user"]["role"], "CUSTOMER");

    // Bad input is a 422 with the field, never a 500.
    for (payload, field) in [
        (json!({"email": "not an email", "name": "x"}), "email"),
        (json!({"email": unique_email("x"), "name": ""}), "name"),
    ] {
        let (status, b) = app.post("/auth/otp/generate", payload, None).await;
        assert_eq!(status, 422, "{b}");
        assert_eq!(b["errors"][0]["field"], field);
    }
    let (status, _) =
        app.post("/auth/otp/generate", json!({"email": unique_email("x"), "name": "x", "role": "ADMIN"}), None).await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (status, b) = app
        .post(
            "/auth/customer/register",
            json!({"name": "B", "email": unique_email("p"), "password": "short", "otp": "123456"}),
            None,
        )
        .await;
    assert_eq!((status, b["errors"][0]["field"].as_str()), (422, Some("password")));
}

#[tokio::test]
async fn login_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(Options { login_per_email: 10, ..Options::default() }).await;
    let (_, owner) = app.seed_shop().await;
    for i in 0..10 {
        let (status, _) =
            app.post("/auth/login", json!({"email": owner.email, "password": "wrong password"}), None).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let res = app
        .http
        .post(format!("{}/auth/login", app.base_url))
        .json(&json!({"email": owner.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "even the right password waits once the limit is hit");
    assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn two_instances_spend_one_sign_in_budget() {
    // Instances share the database: the limit is the limit however many run (issue 15).
    let opts = Options { login_per_email: 6, ..Options::default() };
    let app = spawn_app_with(Options { login_per_email: 6, ..Options::default() }).await;
    let (second, stop_second) = app.second_instance(&opts).await;
    let (_, owner) = app.seed_shop().await;
    let wrong = json!({"email": owner.email, "password": "wrong password"});
    // Concurrent guesses spread over both instances: six are heard, the rest wait.
    let guesses = (0..10).map(|i| {
        let url = if i % 2 == 0 { format!("{}/auth/login", app.base_url) } else { format!("{second}/auth/login") };
        let req = app.http.post(url).json(&wrong);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures::future::join_all(guesses).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429, 429, 429, 429], "one budget of six across two instances");
    for base in [&app.base_url, &second] {
        let (status, body) = app
            .http
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": owner.email, "password": PASSWORD}))
            .send()
            .await
            .map(|r| (r.status().as_u16(), ()))
            .unwrap();
        assert_eq!((status, body), (429, ()), "{base}: spent on the other instance too");
    }
    // Another key's budget is its own.
    let (_, other) = app.seed_shop().await;
    let (status, _) = app.post("/auth/login", json!({"email": other.email, "password": PASSWORD}), None).await;
    assert_eq!(status, 200);
    stop_second.cancel();
}

#[tokio::test]
async fn password_reset_is_single_use_and_closes_every_session() {
    let app = spawn_app().await;
    let (_, owner) = app.seed_shop().await;
    let session = app.login(&owner.email).await;
    // The first system's clients add `useCase` and `role`: accepted and ignored.
    let (s1, b1) = app
        .post("/auth/forgot-password", json!({"email": owner.email, "useCase": "RESET", "role": "SHOP_OWNER"}), None)
        .await;
    let (s2, b2) = app.post("/auth/forgot-password", json!({"email": unique_email("ghost")}), None).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1, b2, "same answer whether or not the account exists");
    let link: String = sqlx::query_scalar(
        "select payload->>'resetUrl' from auth.outbox where message_type = 'auth.password_reset.requested'",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    let token = url::Url::parse(&link).unwrap().query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned();
    let (status, _) =
        app.post("/auth/reset-password", json!({"token": token, "password": "a brand new secret"}), None).await;
    assert_eq!(status, 200);
    let (status, b) =
        app.post("/auth/reset-password", json!({"token": token, "password": "another new secret"}), None).await;
    assert_eq!((status, b["code"].as_str()), (400, Some("AUTH_TOKEN_INVALID")), "single use");
    let (status, _) = app.post("/auth/refresh", json!({"refreshToken": session["refreshToken"]}), None).await;
    assert_eq!(status, 401, "a reset revokes all sessions");
    let (status, _) =
        app.post("/auth/login", json!({"email": owner.email, "password": "a brand new secret"}), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn invites_bring_staff_into_the_shop() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let owner_token = app.access_token(&owner.email).await;
    let staff_email = unique_email("staff");
    let (status, b) =
        app.post(&format!("/shops/{shop}/invites"), json!({"email": staff_email}), Some(&owner_token)).await;
    assert_eq!(status, 201, "{b}");
    let link: String =
        sqlx::query_scalar("select payload->>'acceptUrl' from auth.outbox where message_type = 'auth.invite.created'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    let token = url::Url::parse(&link).unwrap().query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned();
    let (status, b) =
        app.post("/invites/accept", json!({"token": token, "name": "Kamal", "password": PASSWORD}), None).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["user"]["shops"][0]["role"], "SHOP_STAFF");
    let (status, _) =
        app.post("/invites/accept", json!({"token": token, "name": "Kamal", "password": PASSWORD}), None).await;
    assert_eq!(status, 400, "invites are single use");
    let (status, members) = app.call("GET", &format!("/shops/{shop}/members"), None, Some(&owner_token)).await;
    assert_eq!(status, 200);
    assert_eq!(members.as_array().unwrap().len(), 2);
    // The last owner cannot be demoted or removed.
    let (status, b) = app
        .call(
            "PATCH",
            &format!("/shops/{shop}/members/{}", owner.id),
            Some(json!({"role": "SHOP_STAFF"})),
            Some(&owner_token),
        )
        .await;
    assert_eq!((status, b["code"].as_str()), (409, Some("SHOP_LAST_OWNER")));
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from auth.outbox where message_type = 'auth.member.changed'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_token_from_auth_carries_the_shops_and_verifies_against_its_jwks() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let token = app.access_token(&owner.email).await;
    let jwks: serde_json::Value =
        app.http.get(format!("{}/.well-known/jwks.json", app.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks.to_string().find("private").is_none() && jwks["keys"][0].get("d").is_none(), "no private parts");
    let verifier = platform::auth::JwtVerifier::new(platform::auth::JwtConfig {
        jwks_url: url::Url::parse(&format!("{}/.well-known/jwks.json", app.base_url)).unwrap(),
        issuer: crate::helpers::ISSUER.into(),
        audience: "cashvio".into(),
        jwks_min_refresh_secs: 0,
    });
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.sub.0, owner.id);
    assert_eq!(claims.shops[0].id.0, shop);
    assert!(claims.exp - claims.iat <= 900, "15-minute access tokens");

    // Rotation: a new key signs, the old one stays published so its tokens keep verifying.
    let new_kid = cashvio_auth::keys::rotate(&app.db.admin_in("auth").await, std::time::Duration::from_secs(1_020))
        .await
        .unwrap();
    let jwks: serde_json::Value =
        app.http.get(format!("{}/.well-known/jwks.json", app.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(jwks.to_string().contains(&new_kid));
    assert!(verifier.verify(&token).await.is_ok(), "tokens of the old key still verify");
}

#[tokio::test]
async fn shop_customers_are_projected_from_order_events_once_each() {
    use contracts::common::{Recipient, ShopBrand};
    use contracts::sales::OrderCompleted;
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let token = app.access_token(&owner.email).await;
    let exchange: String = app.exchange.clone();
    let broker = bus::Broker::new(&testkit::amqp_url(), "auth-test");
    let customer = uuid::Uuid::new_v4();
    let order = |n: i64| OrderCompleted {
        order_id: uuid::Uuid::new_v4(),
        reservation_id: None,
        order_number: n,
        shop: ShopBrand { id: shop, name: "Shop".into(), logo_url: None, address: None, contact_phone: None },
        currency: "LKR".into(),
        customer_id: Some(customer),
        customer: Some(Recipient { email: "buyer@example.test".into(), name: Some("Buyer".into()) }),
        lines: vec![],
        subtotal: "0.00".into(),
        discount_total: "0.00".into(),
        total: "0.00".into(),
        payments: vec![],
        change: "0.00".into(),
        wallet_balance_after: None,
        cashier_name: None,
        completed_at: chrono::Utc::now(),
    };
    let first = uuid::Uuid::now_v7();
    testkit::events::publish(&broker, &exchange, &order(1), first).await;
    testkit::events::publish(&broker, &exchange, &order(1), first).await; // redelivered
    testkit::events::publish(&broker, &exchange, &order(2), uuid::Uuid::now_v7()).await;
    let mut page = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, p) = app.call("GET", &format!("/shops/{shop}/customers"), None, Some(&token)).await;
        page = p;
        if page["data"][0]["orderCount"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(page["meta"]["totalItems"], 1, "{page}");
    assert_eq!(page["data"][0]["orderCount"], 2, "two orders, the redelivery not counted: {page}");
    assert_eq!(page["data"][0]["email"], "buyer@example.test");
    assert_eq!(page["data"][0]["id"], page["data"][0]["customerId"], "the first clients read `id`: {page}");
    assert!(page["data"][0]["id"].is_string());

    // Many at once (they arrive together and are counted in one statement), some twice;
    // the latest order's name wins.
    let ids: Vec<uuid::Uuid> = (0..20).map(|_| uuid::Uuid::now_v7()).collect();
    for (n, id) in ids.iter().enumerate() {
        let mut o = order(3 + n as i64);
        if n == 19 {
            o.customer = Some(Recipient { email: "buyer@example.test".into(), name: Some("Buyer Renamed".into()) });
        }
        testkit::events::publish(&broker, &exchange, &o, *id).await;
        if n % 4 == 0 {
            testkit::events::publish(&broker, &exchange, &o, *id).await; // redelivered
        }
    }
    for _ in 0..100 {
        let (_, p) = app.call("GET", &format!("/shops/{shop}/customers"), None, Some(&token)).await;
        page = p;
        if page["data"][0]["orderCount"] == 22 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // nothing more arrives
    let (_, page) = app.call("GET", &format!("/shops/{shop}/customers"), None, Some(&token)).await;
    assert_eq!(page["data"][0]["orderCount"], 22, "each order once: {page}");
    assert_eq!(page["data"][0]["name"], "Buyer Renamed", "{page}");
}

#[tokio::test]
async fn logout_with_the_access_token_as_the_first_clients_send_it_ends_that_session_only() {
    let app = spawn_app().await;
    let (_, owner) = app.seed_shop().await;
    let ending = app.login(&owner.email).await;
    let other = app.login(&owner.email).await;
    let access = ending["accessToken"].as_str().unwrap();
    let (status, body) = app.post("/auth/logout", json!({}), Some(access)).await;
    assert_eq!((status, body["message"].as_str()), (201, Some("Signed out.")), "{body}");
    let (status, body) = app.call("GET", "/shops", None, Some(access)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("AUTH_SESSION_REVOKED")), "{body}");
    let (status, _) = app.post("/auth/refresh", json!({"refreshToken": ending["refreshToken"]}), None).await;
    assert_eq!(status, 401, "its refresh token ended with it");
    let (status, _) = app.call("GET", "/shops", None, Some(other["accessToken"].as_str().unwrap())).await;
    assert_eq!(status, 200, "another session goes on");
    // Signing out again, or with a token that no longer verifies, is still a 201.
    let (status, _) = app.post("/auth/logout", json!({}), Some(access)).await;
    assert_eq!(status, 201);
    let (status, _) = app.post("/auth/logout", json!({}), Some("not.a.token")).await;
    assert_eq!(status, 201);
    // Unknown fields other than the ones the first clients send are still refused.
    let (status, _) = app.post("/auth/forgot-password", json!({"email": owner.email, "admin": true}), None).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_customer_app_signs_customers_up_through_register_without_a_shop() {
    let app = spawn_app().await;
    let email = unique_email("customer");
    let (status, _) = app.post("/auth/otp/generate", json!({"email": email, "name": "Kamal"}), None).await;
    assert_eq!(status, 201);
    // Half a shop is still refused, naming what is missing, and spends nothing.
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"name": "Kamal", "email": email, "password": "a long secret", "otp": "000000", "businessName": "K"}),
            None,
        )
        .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("address")), "{body}");
    let otp = app.last_otp(&email).await;
    // As the customer app sends it: no businessName, no address.
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"name": "Kamal", "email": email, "password": "a long secret", "contactNumber": "0771234567", "otp": otp}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["role"], "CUSTOMER", "{body}");
    let shops: i64 = sqlx::query_scalar(
        "select count(*) from auth.memberships m join auth.users u using (user_id) where u.email = lower($1)",
    )
    .bind(&email)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(shops, 0, "a customer opens no shop");
}
