//! The running stack as its users meet it: HTTP through nginx, e-mail from the SMTP sink, the
//! local OpenID provider, and the database for checks in SQL. Used by the scenario tests in
//! `tests/`; they need `make up` (`stack/smoke.sh` runs them).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, reason = "test support: a panic is the failure report")]

pub mod day;

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned()).trim_end_matches('/').to_owned()
}

/// A unique suffix for names and e-mail addresses.
pub fn unique() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
}

pub struct Stack {
    pub http: reqwest::Client,
    pub base: String,
    pub sink: String,
    pub oidc: String,
    pub db: PgPool,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl Stack {
    pub async fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let db = PgPoolOptions::new()
            .max_connections(4)
            .connect(&env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cashvio"))
            .await
            .expect("the stack's database");
        Self {
            http,
            base: env("CASHVIO_URL", "http://127.0.0.1:8000"),
            sink: env("SINK_URL", "http://127.0.0.1:8025"),
            oidc: env("OIDC_URL", "http://127.0.0.1:9090"),
            db,
        }
    }

    /// A JSON call through nginx; never a 5xx, and every 4xx has a `message`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.call_keyed(method, path, body, token, None).await
    }

    /// The same with an `Idempotency-Key`.
    pub async fn call_keyed(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(status.as_u16() < 500, "{method} {path} answered {status}: {value}");
        if status.is_client_error() {
            assert!(value["message"].is_string(), "{method} {path} {status}: no `message` in {value}");
        }
        (status, value)
    }

    /// A call that must answer `want`; its body.
    #[track_caller]
    pub fn expect(got: (StatusCode, Value), want: u16, what: &str) -> Value {
        assert_eq!(got.0.as_u16(), want, "{what}: {}", got.1);
        got.1
    }

    /// Asks until `ask` answers `Some` (events travel through the outbox and RabbitMQ).
    pub async fn eventually<T, F, Fut>(&self, what: &str, ask: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.eventually_within(what, Duration::from_secs(60), ask).await
    }

    /// The same, waiting at most `limit`.
    pub async fn eventually_within<T, F, Fut>(&self, what: &str, limit: Duration, mut ask: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let start = std::time::Instant::now();
        loop {
            if let Some(v) = ask().await {
                return v;
            }
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The e-mails to `to`, oldest first.
    pub async fn mails(&self, to: &str) -> Vec<Value> {
        let list: Value =
            self.http.get(format!("{}/api/messages?to={to}", self.sink)).send().await.unwrap().json().await.unwrap();
        list.as_array().cloned().unwrap_or_default()
    }

    /// The newest e-mail to `to` whose subject contains `subject`.
    pub async fn mail(&self, to: &str, subject: &str) -> Value {
        self.eventually(&format!("an e-mail to {to} about {subject:?}"), || async {
            self.mails(to).await.into_iter().rev().find(|m| m["subject"].as_str().is_some_and(|s| s.contains(subject)))
        })
        .await
    }

    /// The PDF attached to a message of the sink, from its raw MIME.
    pub async fn pdf_of(&self, message: &Value) -> Vec<u8> {
        let index = &message["index"];
        let raw = self.http.get(format!("{}/api/messages/{index}/raw", self.sink)).send().await.unwrap();
        let raw = raw.text().await.unwrap();
        let start = raw.find("Content-Type: application/pdf").expect("a PDF part");
        let part = &raw[start..];
        let body_at = part.find("\r\n\r\n").map(|i| i + 4).or_else(|| part.find("\n\n").map(|i| i + 2)).unwrap();
        let b64: String = part[body_at..].lines().take_while(|l| !l.starts_with("--")).collect::<Vec<_>>().concat();
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("base64 PDF")
    }

    /// A new shop owner: sign-up by OTP with a shop; the shop's id.
    pub async fn owner(&self, name: &str, business: &str) -> (User, String) {
        let email = format!("owner-{}@example.com", unique());
        let (s, b) =
            self.call(Method::POST, "/auth/auth/otp/generate", Some(json!({"email": email, "name": name})), None).await;
        assert_eq!(s, 201, "otp/generate: {b}");
        let mail = self.mail(&email, "Your Cashvio code").await;
        let subject = mail["subject"].as_str().unwrap();
        let otp = subject.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
        let body = json!({"name": name, "email": email, "password": "a shop owner's secret", "otp": otp,
                          "businessName": business, "address": "12 Temple Road, Kandy"});
        let b = Self::expect(self.call(Method::POST, "/auth/auth/register", Some(body), None).await, 201, "register");
        let shop = b["user"]["defaultShopId"].as_str().unwrap().to_owned();
        (user(&b), shop)
    }

    /// Invites `email` to the shop as staff and accepts with the e-mailed token.
    pub async fn staff(&self, owner: &User, shop: &str, name: &str) -> User {
        let email = format!("staff-{}@example.com", unique());
        let invite = json!({"email": email, "role": "SHOP_STAFF"});
        let path = format!("/auth/shops/{shop}/invites");
        Self::expect(self.call(Method::POST, &path, Some(invite), Some(&owner.token)).await, 201, "invite");
        let mail = self.mail(&email, "You are invited").await;
        let text = mail["text"].as_str().unwrap();
        let at = text.find("token=").unwrap() + "token=".len();
        let token: String =
            text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        let accept = json!({"token": token, "name": name, "password": "a cashier's own secret"});
        let b = Self::expect(self.call(Method::POST, "/auth/invites/accept", Some(accept), None).await, 200, "accept");
        user(&b)
    }

    /// A customer signed in with Google (the local OpenID provider), new to Cashvio.
    pub async fn google_customer(&self, name: &str) -> User {
        let sub = unique();
        let email = format!("customer-{sub}@example.com");
        let account = json!({"email": email, "email_verified": true, "name": name});
        let res = self.http.put(format!("{}/users/{sub}", self.oidc)).json(&account).send().await.unwrap();
        assert!(res.status().is_success(), "OpenID provider account: {}", res.status());
        let start = self.http.get(format!("{}/auth/auth/google/login", self.base)).send().await.unwrap();
        assert_eq!(start.status(), 302, "google/login");
        let authorize = location(&start);
        let approved = self.http.post(&authorize).form(&[("sub", sub.as_str())]).send().await.unwrap();
        assert_eq!(approved.status(), 302, "the provider's approval");
        let callback = self.http.get(location(&approved)).send().await.unwrap();
        assert_eq!(callback.status(), 302, "google/callback");
        let complete = location(&callback);
        let code = complete.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
        let b = Self::expect(
            self.call(Method::POST, "/auth/auth/google/exchange", Some(json!({"code": code})), None).await,
            200,
            "google/exchange",
        );
        assert_eq!(b["user"]["role"], "CUSTOMER");
        user(&b)
    }

    /// Uploads a 1×1 PNG through the mailer; its key.
    pub async fn upload_png(&self, token: &str, folder: &str) -> String {
        const PNG: &[u8] = &[
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
            0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xff, 0xff, 0x3f, 0x00, 0x05, 0xfe, 0x02, 0xfe, 0xa7,
            0x35, 0x81, 0x84, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ];
        let boundary = "----cashvio-e2e";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"item.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(PNG);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!("{}/mailer/upload?folder={folder}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "upload");
        let b: Value = res.json().await.unwrap();
        b["urls"][0].as_str().unwrap().to_owned()
    }
}

/// The workspace root (the stack's scripts and its `.stack/` directory).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a stack script from the workspace root; panics when it fails.
pub async fn script(args: &[&str]) {
    let out = tokio::process::Command::new("bash").args(args).current_dir(root()).output().await.unwrap();
    assert!(
        out.status.success(),
        "bash {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Stack {
    /// A call that may meet a fault: a refused connection or a 5xx is an `Err` to retry.
    /// An empty `key` sends no `Idempotency-Key`.
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        token: &str,
        key: &str,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !key.is_empty() {
            req = req.header("idempotency-key", key);
        }
        let res = req
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let text = res.text().await.map_err(|e| e.to_string())?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_server_error() {
            return Err(format!("{status}: {value}"));
        }
        Ok((status, value))
    }

    /// Waits until the order service knows `user` (from auth's event): a sale can name them.
    pub async fn known_to_orders(&self, user: &User) {
        let person: uuid::Uuid = user.id.parse().unwrap();
        self.eventually("the order service knows the customer", || async {
            let known: bool = sqlx::query_scalar("select exists(select 1 from sales.people where user_id = $1)")
                .bind(person)
                .fetch_one(&self.db)
                .await
                .ok()?;
            known.then_some(())
        })
        .await;
    }

    /// Every service's outbox published (relays caught up after a fault).
    pub async fn outboxes_drained(&self) {
        self.eventually("every outbox drained", || async {
            let left: i64 = sqlx::query_scalar(
                "select (select count(*) from auth.outbox where published_at is null)
                      + (select count(*) from stock.outbox where published_at is null)
                      + (select count(*) from sales.outbox where published_at is null)
                      + (select count(*) from mailer.outbox where published_at is null)",
            )
            .fetch_one(&self.db)
            .await
            .ok()?;
            (left == 0).then_some(())
        })
        .await;
    }
}

fn user(token_response: &Value) -> User {
    User {
        id: token_response["user"]["id"].as_str().unwrap().to_owned(),
        email: token_response["user"]["email"].as_str().unwrap().to_owned(),
        token: token_response["accessToken"].as_str().unwrap().to_owned(),
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap().to_owned()
}

/// Money as the API writes it ("1234.50") in minor units.
pub fn minor(v: &Value) -> i64 {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("{:.2}", n.as_f64().unwrap()),
        other => panic!("not an amount: {other}"),
    };
    let negative = s.starts_with('-');
    let (whole, frac) = s.trim_start_matches('-').split_once('.').unwrap_or((s.trim_start_matches('-'), "0"));
    let frac = format!("{frac:0<2}");
    let m = whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap();
    if negative {
        -m
    } else {
        m
    }
}
