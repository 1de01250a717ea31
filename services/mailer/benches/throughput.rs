//! Mailer throughput, printed (no assertions on time):
//! - e-mails sent per second from queued events (OTP e-mails, and receipts with a PDF
//!   rendered and stored in S3), through RabbitMQ, PostgreSQL and the SMTP sink over XOAUTH2;
//! - upload throughput in MB/s through `POST /upload` into the moto S3 stand-in.
//!
//! Needs the stack's services and stand-ins (`bash stack/standins.sh start`).
//! Run: `cargo bench -p cashvio-mailer --bench throughput`
#![allow(clippy::unwrap_used, reason = "a benchmark stops with the failure")]

use std::time::{Duration, Instant};

use cashvio_mailer::config::{DeliveryConfig, S3Config, SmtpAuth, SmtpConfig, SmtpTls};
use cashvio_mailer::{Application, Config};
use chrono::Utc;
use contracts::auth::OtpRequested;
use contracts::common::{Recipient, ShopBrand};
use contracts::sales::{OrderCompleted, PaymentLine, ReceiptLine};
use platform::auth::{Role, ShopRole};
use platform::config::Secret;
use platform::ids::ShopId;
use testkit::jwt::{claims, JwksServer, SigningKey};
use testkit::TestDb;
use uuid::Uuid;

const EVENTS: usize = 500;
/// SMTP connections and e-mails per batch (the service defaults are 4 and 16).
const POOL: u32 = 8;
const BATCH: i64 = 32;

fn receipt(to: &str, n: i64) -> OrderCompleted {
    OrderCompleted {
        order_id: Uuid::new_v4(),
        reservation_id: None,
        order_number: n,
        shop: ShopBrand {
            id: Uuid::new_v4(),
            name: "Bench Shop".into(),
            logo_url: None,
            address: None,
            contact_phone: None,
        },
        currency: "LKR".into(),
        customer_id: None,
        customer: Some(Recipient { email: to.into(), name: None }),
        lines: (0..5)
            .map(|i| ReceiptLine {
                name: format!("Item {i}"),
                product_id: None,
                barcode: None,
                quantity: 1,
                unit_price: "100.00".into(),
                discount: "0.00".into(),
                line_total: "100.00".into(),
                warranty_until: None,
            })
            .collect(),
        subtotal: "500.00".into(),
        discount_total: "0.00".into(),
        total: "500.00".into(),
        payments: vec![PaymentLine { method: "CASH".into(), amount: "500.00".into(), reference: None }],
        change: "0.00".into(),
        wallet_balance_after: None,
        cashier_name: None,
        completed_at: Utc::now(),
    }
}

/// Waits until `n` e-mails to `tag…` are sent; returns (events/s from the first e-mail
/// queued to the last sent, seconds).
async fn wait_sent(db: &TestDb, n: usize, tag: &str) -> (f64, f64) {
    let start = Instant::now();
    loop {
        let sent: i64 =
            sqlx::query_scalar("select count(*) from mailer.emails where status = 'sent' and recipient like $1")
                .bind(format!("{tag}%"))
                .fetch_one(&db.admin)
                .await
                .expect("count");
        if usize::try_from(sent).unwrap_or(0) >= n || start.elapsed() > Duration::from_secs(300) {
            let (secs, queueing): (f64, f64) = sqlx::query_as(
                "select extract(epoch from max(sent_at) - min(created_at))::float8,
                        extract(epoch from max(created_at) - min(created_at))::float8
                   from mailer.emails where recipient like $1",
            )
            .bind(format!("{tag}%"))
            .fetch_one(&db.admin)
            .await
            .expect("span");
            println!("    (events turned into queued e-mails at {:.1}/s)", sent as f64 / queueing.max(0.001));
            return (sent as f64 / secs, secs);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[allow(clippy::cast_precision_loss)]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let db = TestDb::new().await.expect("database");
        let key = SigningKey::generate("bench");
        let jwks = JwksServer::start(&[&key]).await;
        let common = testkit::service::common_config("mailer", "cashvio_mailer", "mailer", &db, &jwks);
        let exchange = common.amqp_exchange.clone();
        let bucket = testkit::unique("cashvio-bench").replace('_', "-");
        let queue = testkit::unique("bench_mailer");
        let config = Config {
            common,
            s3: S3Config {
                bucket,
                region: "us-east-1".into(),
                endpoint_url: Some("http://127.0.0.1:5000".into()),
                force_path_style: true,
                create_bucket: true,
                access_key_id: Secret::new("test"),
                secret_access_key: Secret::new("test"),
                session_token: None,
                presign_expiry: Duration::from_secs(300),
            },
            smtp: SmtpConfig {
                host: "127.0.0.1".into(),
                port: 1025,
                tls: SmtpTls::None,
                username: "bench@cashvio.test".into(),
                auth: SmtpAuth::Xoauth2 {
                    token_url: url::Url::parse("http://127.0.0.1:8025/oauth2/token").expect("url"),
                    client_id: "bench".into(),
                    client_secret: Secret::new("bench"),
                    refresh_token: Secret::new("local-refresh-token"),
                },
                from: "Cashvio <bench@cashvio.test>".into(),
                pool_size: POOL,
                timeout: Duration::from_secs(10),
            },
            delivery: DeliveryConfig {
                max_attempts: 5,
                retry_base: Duration::from_millis(200),
                retry_max: Duration::from_secs(5),
                batch_size: BATCH,
                queue,
                event_max_attempts: 3,
                event_retry_delay: Duration::from_millis(500),
            },
        };
        let app = Application::build(config).await.expect("mailer");
        let base = format!("http://127.0.0.1:{}", app.port());
        let stop = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());
        let broker = bus::Broker::new(&testkit::amqp_url(), "mailer-bench");
        let run = Uuid::new_v4().simple().to_string();

        println!("mailer throughput ({EVENTS} events each; SMTP sink on loopback, XOAUTH2, {POOL} connections, batches of {BATCH})");
        let tag = format!("otp-{run}-");
        let events: Vec<OtpRequested> = (0..EVENTS)
            .map(|i| OtpRequested {
                to: Recipient { email: format!("{tag}{i}@bench.test"), name: None },
                code: "123456".into(),
                expires_at: Utc::now(),
            })
            .collect();
        testkit::events::publish_all(&broker, &exchange, &events).await;
        let (rate, secs) = wait_sent(&db, EVENTS, &tag).await;
        println!("  OTP e-mails:     {rate:>7.1} e-mails/s, first queued to last sent ({EVENTS} in {secs:.2} s)");

        let tag = format!("rcpt-{run}-");
        let events: Vec<OrderCompleted> =
            (0..EVENTS).map(|i| receipt(&format!("{tag}{i}@bench.test"), i64::try_from(i).unwrap_or(0))).collect();
        testkit::events::publish_all(&broker, &exchange, &events).await;
        let (rate, secs) = wait_sent(&db, EVENTS, &tag).await;
        println!("  receipts (PDF):  {rate:>7.1} e-mails/s, first queued to last sent ({EVENTS} in {secs:.2} s; each PDF rendered and stored in S3)");

        let staff = claims(Role::ShopStaff, &[(ShopId::new(), ShopRole::ShopStaff)], 3_600);
        testkit::access::grant(&db.admin, "mailer", &staff).await;
        let token = key.sign(&staff);
        let http = reqwest::Client::new();
        let file: Vec<u8> = {
            // A real PNG header (1x1 RGBA with IHDR's CRC): uploads are decoded that far.
            let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89".to_vec();
            b.resize(2 * 1024 * 1024, 7);
            b
        };
        for clients in [1usize, 4] {
            let requests_each = 10;
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (http, base, token, file) = (http.clone(), base.clone(), token.clone(), file.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..requests_each {
                        let form = (0..5).fold(reqwest::multipart::Form::new(), |f, i| {
                            f.part("files", reqwest::multipart::Part::bytes(file.clone()).file_name(format!("f{i}.png")))
                        });
                        let res = http.post(format!("{base}/upload?folder=images")).bearer_auth(&token).multipart(form).send().await;
                        assert!(res.is_ok_and(|r| r.status().is_success()), "upload failed");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("client");
            }
            let secs = start.elapsed().as_secs_f64();
            let mb = (clients * requests_each * 5 * file.len()) as f64 / (1024.0 * 1024.0);
            println!("  uploads, {clients} client(s): {:>7.1} MB/s ({mb:.0} MB in {secs:.2} s; 5 x 2 MB files per request)", mb / secs);
        }
        stop.cancel();
    });
}
