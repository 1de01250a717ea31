//! Google sign-in end to end against the local OpenID provider: authorization code + PKCE,
//! state and nonce, tokens handed over through a one-time code; forged state, wrong nonce
//! and unverified e-mail refused.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, Options, TestApp};

const PROVIDER: &str = "http://127.0.0.1:9090";

async fn set_user(app: &TestApp, sub: &str, email: &str, verified: bool) {
    let res = app
        .http
        .put(format!("{PROVIDER}/users/{sub}"))
        .json(&json!({"email": email, "email_verified": verified, "name": "Google User"}))
        .send()
        .await
        .expect("the OpenID stand-in runs (bash stack/standins.sh start)");
    assert!(res.status().is_success());
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// Starts sign-in on the app and returns the provider URL it redirects to.
async fn begin(app: &TestApp) -> url::Url {
    let res = app.http.get(format!("{}/auth/google/login", app.base_url)).send().await.unwrap();
    assert_eq!(res.status(), 302, "redirect to the provider");
    let url = url::Url::parse(&location(&res)).unwrap();
    let params: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    for p in ["state", "nonce", "code_challenge", "client_id", "redirect_uri"] {
        assert!(params.contains_key(p), "authorize URL carries {p}: {url}");
    }
    assert_eq!(params["code_challenge_method"], "S256");
    url
}

/// "Logs in" at the provider as `sub` and returns the callback URL it redirects to.
async fn approve(app: &TestApp, authorize: &url::Url, sub: &str) -> url::Url {
    let res = app.http.post(authorize.as_str()).form(&[("sub", sub)]).send().await.unwrap();
    assert_eq!(res.status(), 302);
    url::Url::parse(&location(&res)).unwrap()
}

fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> =
        url.query_pairs().into_owned().map(|(k, v)| if k == name { (k, value.to_owned()) } else { (k, v) }).collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

#[tokio::test]
async fn google_sign_in_end_to_end_and_tampering_is_refused() {
    let app = spawn_app_with(Options { google: true, ..Options::default() }).await;
    let sub = format!("g-{}", Uuid::new_v4().simple());
    let email = format!("google.{}@example.test", Uuid::new_v4().simple());
    set_user(&app, &sub, &email, true).await;

    let callback = approve(&app, &begin(&app).await, &sub).await;
    let res = app.http.get(callback.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 302, "{:?}", res.text().await);
    let to_app = url::Url::parse(&location(&res)).unwrap();
    assert!(to_app.as_str().starts_with("http://app.cashvio.test/auth/google/complete?code="));
    assert!(!to_app.as_str().contains("eyJ"), "no token in the URL");
    let code = to_app.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (status, tokens) = app.post("/auth/google/exchange", json!({"code": code}), None).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["user"]["role"], "CUSTOMER");
    assert_eq!(tokens["user"]["email"], email);
    let (status, _) = app.post("/auth/google/exchange", json!({"code": code}), None).await;
    assert_eq!(status, 400, "the hand-over code works once");

    // The callback URL replayed (its state is spent) is refused.
    let res = app.http.get(callback.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // A forged state is refused.
    let fresh = approve(&app, &begin(&app).await, &sub).await;
    let forged = with_param(&fresh, "state", "forged-state");
    let res = app.http.get(forged.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "AUTH_GOOGLE_FAILED");

    // A wrong nonce (the provider was asked with another one) is refused.
    let authorize = with_param(&begin(&app).await, "nonce", "someone-elses-nonce");
    let cb = approve(&app, &authorize, &sub).await;
    let res = app.http.get(cb.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("nonce"), "{body}");

    // An unverified Google e-mail is refused.
    let sub2 = format!("g-{}", Uuid::new_v4().simple());
    set_user(&app, &sub2, &format!("unverified.{}@example.test", Uuid::new_v4().simple()), false).await;
    let cb = approve(&app, &begin(&app).await, &sub2).await;
    let res = app.http.get(cb.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // A second sign-in of the same Google account is the same user (linked by subject).
    let cb = approve(&app, &begin(&app).await, &sub).await;
    let res = app.http.get(cb.as_str()).send().await.unwrap();
    let code =
        url::Url::parse(&location(&res)).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (_, again) = app.post("/auth/google/exchange", json!({"code": code}), None).await;
    assert_eq!(again["user"]["id"], tokens["user"]["id"]);
}
