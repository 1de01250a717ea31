//! `spawn_app()`: the real auth service in-process with a fresh database; it verifies its
//! own tokens through its own JWKS, as the other services do.

use std::time::Duration;

use cashvio_auth::config::{GoogleConfig, RateLimits, TokenConfig};
use cashvio_auth::{Application, Config};
use platform::auth::JwtConfig;
use platform::config::{CommonConfig, Secret};
use serde_json::{json, Value};
use testkit::TestDb;
use uuid::Uuid;

pub const PREFIX: &str = "AUTH";
pub const ROLE: &str = "cashvio_auth";
pub const ISSUER: &str = "http://cashvio.test/auth";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base_url: String,

    pub db: TestDb,
    pub shutdown: platform::shutdown::CancellationToken,
    pub http: reqwest::Client,
    pub exchange: String,
}

pub struct Options {
    pub google: bool,
    pub login_per_email: u32,
    /// The two-tabs grace for reused refresh tokens; none by default, so a reuse in a test
    /// is a reuse.
    pub refresh_reuse_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { google: false, login_per_email: 1_000, refresh_reuse_grace: Duration::ZERO }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let db = TestDb::new().await.expect("test database");
    let exchange = format!("{}.events", testkit::unique("test"));
    let (base_url, shutdown) = start_instance(&db, &exchange, &opts).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { base_url, db, shutdown, http, exchange }
}

/// One auth process on `db` (several may share one database, as instances do).
async fn start_instance(
    db: &TestDb,
    exchange: &str,
    opts: &Options,
) -> (String, platform::shutdown::CancellationToken) {
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let common = CommonConfig {
        service: "auth",
        host: "127.0.0.1".into(),
        port,
        database_url: db.url(ROLE),
        database_schema: "auth".into(),
        database_max_connections: 10,
        amqp_url: testkit::amqp_url(),
        amqp_exchange: exchange.to_owned(),
        amqp_queue_type: "classic".into(),
        jwt: JwtConfig {
            jwks_url: url::Url::parse(&format!("{base_url}/.well-known/jwks.json")).unwrap(),
            issuer: ISSUER.into(),
            audience: "cashvio".into(),
            jwks_min_refresh_secs: 0,
        },
        shutdown_grace_secs: 5,
    };
    let google = opts.google.then(|| GoogleConfig {
        issuer_url: url::Url::parse("http://127.0.0.1:9090").unwrap(),
        client_id: "cashvio-test".into(),
        client_secret: Secret::new("cashvio-test-secret"),
        redirect_url: url::Url::parse(&format!("{base_url}/auth/google/callback")).unwrap(),
    });
    let config = Config {
        common,
        tokens: TokenConfig {
            issuer: ISSUER.into(),
            audience: "cashvio".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            refresh_ttl_short: Duration::from_secs(7 * 86_400),
            refresh_reuse_grace: opts.refresh_reuse_grace,
        },
        app_url: url::Url::parse("http://app.cashvio.test").unwrap(),
        google,
        limits: RateLimits {
            login_per_email: opts.login_per_email,
            login_per_ip: 10_000,
            otp_per_email: 50,
            otp_per_ip: 10_000,
            window: Duration::from_secs(900),
            otp_resend_after: Duration::from_secs(60),
        },
        queue: testkit::unique("test_auth"),
        queue_linger: Duration::from_millis(20),
    };
    let app = Application::build(config).await.expect("auth builds");
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    (base_url, shutdown)
}

/// A user made directly in the database (password `PASSWORD`) with shop memberships.
pub struct Seeded {
    pub id: Uuid,
    pub email: String,
}

impl TestApp {
    /// A second auth process on this app's database and exchange: its base URL, and the
    /// token that stops it.
    pub async fn second_instance(&self, opts: &Options) -> (String, platform::shutdown::CancellationToken) {
        start_instance(&self.db, &self.exchange, opts).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base_url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base_url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The sign-up code auth handed to the mailer (from its outbox).
    pub async fn last_otp(&self, email: &str) -> String {
        sqlx::query_scalar(
            "select payload->>'code' from auth.outbox where message_type = 'auth.otp.requested'
              and lower(payload->'to'->>'email') = lower($1) order by outbox_id desc limit 1",
        )
        .bind(email)
        .fetch_one(&self.db.admin)
        .await
        .unwrap()
    }

    pub async fn seed_user(&self, role: &str, shops: &[(Uuid, &str)]) -> Seeded {
        let id = Uuid::now_v7();
        let email = format!("{}.{}@example.test", role.to_lowercase(), id.simple());
        let hash = cashvio_auth::crypto::hash_password(PASSWORD.into()).await.unwrap();
        sqlx::query("insert into auth.users (user_id, email, name, password_hash, role, email_verified) values ($1, $2, $3, $4, $5, true)")
            .bind(id)
            .bind(&email)
            .bind(format!("{role} user"))
            .bind(hash)
            .bind(role)
            .execute(&self.db.admin)
            .await
            .unwrap();
        for (shop, shop_role) in shops {
            sqlx::query("insert into auth.memberships (shop_id, user_id, role) values ($1, $2, $3)")
                .bind(shop)
                .bind(id)
                .bind(shop_role)
                .execute(&self.db.admin)
                .await
                .unwrap();
        }
        Seeded { id, email }
    }

    /// A shop owned by a freshly seeded owner.
    pub async fn seed_shop(&self) -> (Uuid, Seeded) {
        let shop = Uuid::now_v7();
        let owner = self.seed_user("SHOP_OWNER", &[]).await;
        sqlx::query(
            "insert into auth.shops (shop_id, business_name, address, owner_id) values ($1, 'Shop', 'Road 1', $2)",
        )
        .bind(shop)
        .bind(owner.id)
        .execute(&self.db.admin)
        .await
        .unwrap();
        sqlx::query("insert into auth.memberships (shop_id, user_id, role) values ($1, $2, 'SHOP_OWNER')")
            .bind(shop)
            .bind(owner.id)
            .execute(&self.db.admin)
            .await
            .unwrap();
        (shop, owner)
    }

    pub async fn login(&self, email: &str) -> Value {
        let (status, body) = self.post("/auth/login", json!({"email": email, "password": PASSWORD}), None).await;
        assert_eq!(status, 200, "login {email}: {body}");
        body
    }

    pub async fn access_token(&self, email: &str) -> String {
        self.login(email).await["accessToken"].as_str().unwrap().to_owned()
    }
}
