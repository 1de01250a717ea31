//! `spawn_app()`: the real mailer in-process on port 0 with a fresh database, its own
//! bucket, queue and exchange; helpers for tokens, events and captured mail.

use std::time::{Duration, Instant};

use cashvio_mailer::config::{DeliveryConfig, S3Config, SmtpAuth, SmtpConfig, SmtpTls};
use cashvio_mailer::storage::Storage;
use cashvio_mailer::{Application, Config};
use platform::auth::{Role, ShopRole};
use platform::config::Secret;
use platform::ids::ShopId;
use testkit::jwt::{claims, JwksServer, SigningKey};
use testkit::TestDb;

pub const PREFIX: &str = "MAILER";
pub const ROLE: &str = "cashvio_mailer";
pub const SINK_SMTP_PORT: u16 = 1025;
pub const SINK_HTTP_PORT: u16 = 8025;

pub struct TestApp {
    pub base_url: String,
    pub db: TestDb,
    pub jwks: JwksServer,
    pub key: SigningKey,
    pub shutdown: platform::shutdown::CancellationToken,
    pub storage: Storage,
    pub exchange: String,
    pub broker: bus::Broker,
    pub sink: String,
    pub queue: String,
    pub http: reqwest::Client,
}

/// Where the mailer sends (the shared sink unless a test brings its own) and how fast it
/// retries.
pub struct Options {
    pub smtp_port: u16,
    pub sink_http_port: u16,
    pub max_attempts: i32,
    pub retry_base: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            smtp_port: SINK_SMTP_PORT,
            sink_http_port: SINK_HTTP_PORT,
            max_attempts: 5,
            retry_base: Duration::from_millis(200),
        }
    }
}

pub fn s3_config(bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        endpoint_url: Some(std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5000".into())),
        force_path_style: true,
        create_bucket: true,
        access_key_id: Secret::new("test"),
        secret_access_key: Secret::new("test"),
        session_token: None,
        presign_expiry: Duration::from_secs(300),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let db = TestDb::new().await.expect("test database");
    let key = SigningKey::generate("test-key");
    let jwks = JwksServer::start(&[&key]).await;
    let common = testkit::service::common_config("mailer", ROLE, "mailer", &db, &jwks);
    let exchange = common.amqp_exchange.clone();
    let bucket = testkit::unique("cashvio-test").replace('_', "-");
    let queue = testkit::unique("test_mailer");
    let config = Config {
        common,
        s3: s3_config(&bucket),
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port: opts.smtp_port,
            tls: SmtpTls::None,
            username: "no-reply@cashvio.test".into(),
            auth: SmtpAuth::Xoauth2 {
                token_url: url::Url::parse(&format!("http://127.0.0.1:{}/oauth2/token", opts.sink_http_port)).unwrap(),
                client_id: "cashvio-test".into(),
                client_secret: Secret::new("cashvio-test-secret"),
                refresh_token: Secret::new("local-refresh-token"),
            },
            from: "Cashvio <no-reply@cashvio.test>".into(),
            pool_size: 4,
            timeout: Duration::from_secs(5),
        },
        delivery: DeliveryConfig {
            max_attempts: opts.max_attempts,
            retry_base: opts.retry_base,
            retry_max: Duration::from_secs(5),
            batch_size: 16,
            queue: queue.clone(),
            event_max_attempts: 3,
            event_retry_delay: Duration::from_millis(300),
        },
    };
    let app = Application::build(config).await.expect("mailer builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let storage = app.storage().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base_url,
        db,
        jwks,
        key,
        shutdown,
        storage,
        exchange,
        broker: bus::Broker::new(&testkit::amqp_url(), "mailer-test"),
        sink: format!("http://127.0.0.1:{}", opts.sink_http_port),
        queue,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    /// A staff member's token, with the membership in the mailer's access projection.
    pub async fn staff_token(&self, shop: ShopId) -> String {
        let c = claims(Role::ShopStaff, &[(shop, ShopRole::ShopStaff)], 600);
        testkit::access::grant(&self.db.admin, "mailer", &c).await;
        self.key.sign(&c)
    }

    pub fn admin_token(&self) -> String {
        self.key.sign(&claims(Role::Admin, &[], 600))
    }

    pub async fn publish<E: contracts::Event>(&self, event: &E, message_id: uuid::Uuid) {
        testkit::events::publish(&self.broker, &self.exchange, event, message_id).await;
    }

    /// Captured mail to `to`, waiting until at least `n` arrived (or `within` passed).
    pub async fn mail_to(&self, to: &str, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let got: Vec<serde_json::Value> =
                match self.http.get(format!("{}/api/messages", self.sink)).query(&[("to", to)]).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
            if got.len() >= n || start.elapsed() > within {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `sql` (one i64) until `done` holds for it or `within` passes; returns the last value.
    pub async fn wait_sql(&self, sql: &str, done: impl Fn(i64) -> bool, within: Duration) -> i64 {
        let start = Instant::now();
        loop {
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&self.db.admin).await.unwrap();
            if done(v) || start.elapsed() > within {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every object key under `prefix` in this test's bucket.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let out =
            self.storage.client().list_objects_v2().bucket(self.storage.bucket()).prefix(prefix).send().await.unwrap();
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let out = self.storage.client().get_object().bucket(self.storage.bucket()).key(key).send().await.ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    }
}

/// A unique recipient, so tests sharing the sink see only their own mail.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}.{}@example.test", uuid::Uuid::new_v4().simple())
}
