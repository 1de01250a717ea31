//! Sign-ins per second through `POST /auth/login` (argon2id verify on the blocking pool,
//! a session and refresh token written, an EdDSA access token signed), printed.
//!
//! Run: `cargo bench -p cashvio-auth --bench logins`
#![allow(clippy::unwrap_used, reason = "a benchmark stops with the failure")]

use std::time::{Duration, Instant};

use cashvio_auth::config::{RateLimits, TokenConfig};
use cashvio_auth::{Application, Config};
use platform::auth::JwtConfig;
use platform::config::CommonConfig;
use testkit::TestDb;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

#[allow(clippy::cast_precision_loss)]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let db = TestDb::new().await.expect("database");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let base = format!("http://127.0.0.1:{port}");
        let config = Config {
            common: CommonConfig {
                service: "auth",
                host: "127.0.0.1".into(),
                port,
                database_url: db.url("cashvio_auth"),
                database_schema: "auth".into(),
                database_max_connections: 10,
                amqp_url: testkit::amqp_url(),
                amqp_exchange: format!("{}.events", testkit::unique("bench")),
                amqp_queue_type: "classic".into(),
                jwt: JwtConfig {
                    jwks_url: url::Url::parse(&format!("{base}/.well-known/jwks.json")).expect("url"),
                    issuer: "http://bench/auth".into(),
                    audience: "cashvio".into(),
                    jwks_min_refresh_secs: 0,
                },
                shutdown_grace_secs: 5,
            },
            tokens: TokenConfig {
                issuer: "http://bench/auth".into(),
                audience: "cashvio".into(),
                access_ttl: Duration::from_secs(900),
                refresh_ttl: Duration::from_secs(86_400),
                refresh_ttl_short: Duration::from_secs(86_400),
                refresh_reuse_grace: Duration::from_secs(10),
            },
            app_url: url::Url::parse("http://bench").expect("url"),
            google: None,
            limits: RateLimits {
                login_per_email: u32::MAX,
                login_per_ip: u32::MAX,
                otp_per_email: 5,
                otp_per_ip: 5,
                window: Duration::from_secs(60),
                otp_resend_after: Duration::from_secs(60),
            },
            queue: testkit::unique("bench_auth"),
            queue_linger: std::time::Duration::from_millis(20),
        };
        let app = Application::build(config).await.expect("auth");
        let stop = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());

        let hash = cashvio_auth::crypto::hash_password(PASSWORD.into()).await.expect("hash");
        let mut emails = Vec::new();
        for i in 0..64 {
            let email = format!("bench{i}@example.test");
            sqlx::query("insert into auth.users (user_id, email, name, password_hash, role) values ($1, $2, 'Bench', $3, 'SHOP_STAFF')")
                .bind(Uuid::now_v7())
                .bind(&email)
                .bind(&hash)
                .execute(&db.admin)
                .await
                .expect("seed");
            emails.push(email);
        }
        let http = reqwest::Client::new();
        println!("auth sign-ins (argon2id m=19 MiB t=2 p=1, session + refresh token stored, EdDSA access token)");
        for clients in [1usize, 2, 4, 8] {
            let window = Duration::from_secs(4);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for email in emails.iter().take(clients) {
                let (http, base, email) = (http.clone(), base.clone(), email.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        let res = http
                            .post(format!("{base}/auth/login"))
                            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
                            .send()
                            .await
                            .expect("request");
                        assert!(res.status().is_success(), "login failed: {}", res.status());
                        n += 1;
                    }
                    n
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.expect("client");
            }
            let secs = start.elapsed().as_secs_f64();
            println!("  {clients} client(s): {:>7.1} logins/s ({total} in {secs:.2} s)", total as f64 / secs);
        }
        stop.cancel();
    });
}
