//! E-mail from events: one receipt per order even when the event comes twice, XOAUTH2 with
//! the stand-in's token, nothing lost while the SMTP server is down, bad addresses fail
//! alone, admin endpoints.

use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use contracts::auth::{InviteCreated, OtpRequested, PasswordResetRequested};
use contracts::common::{Recipient, ShopBrand};
use contracts::sales::{OrderCompleted, PaymentLine, ReceiptLine};
use contracts::stock::LevelLow;

use crate::helpers::{spawn_app, spawn_app_with, unique_email, Options, TestApp};

pub fn shop() -> ShopBrand {
    ShopBrand {
        id: Uuid::new_v4(),
        name: "Kandy Mobile & Co".into(),
        logo_url: None,
        address: Some("12 Temple Rd, Kandy".into()),
        contact_phone: Some("+94 81 222 3333".into()),
    }
}

pub fn order(to: &str) -> OrderCompleted {
    OrderCompleted {
        order_id: Uuid::new_v4(),
        reservation_id: None,
        order_number: 42,
        shop: shop(),
        currency: "LKR".into(),
        customer_id: Some(Uuid::new_v4()),
        customer: Some(Recipient { email: to.into(), name: Some("Nimal <Perera>".into()) }),
        lines: vec![
            ReceiptLine {
                name: "Galaxy A15".into(),
                product_id: Some(Uuid::new_v4()),
                barcode: Some("IMEI-356789".into()),
                quantity: 1,
                unit_price: "54990.00".into(),
                discount: "2000.00".into(),
                line_total: "52990.00".into(),
                warranty_until: Some(Utc::now() + chrono::Duration::days(365)),
            },
            ReceiptLine {
                name: "USB-C cable".into(),
                product_id: Some(Uuid::new_v4()),
                barcode: None,
                quantity: 2,
                unit_price: "750.00".into(),
                discount: "0.00".into(),
                line_total: "1500.00".into(),
                warranty_until: None,
            },
        ],
        subtotal: "56490.00".into(),
        discount_total: "2000.00".into(),
        total: "54490.00".into(),
        payments: vec![
            PaymentLine { method: "CASH".into(), amount: "50000.00".into(), reference: None },
            PaymentLine { method: "WALLET".into(), amount: "5000.00".into(), reference: None },
        ],
        change: "510.00".into(),
        wallet_balance_after: Some("1200.00".into()),
        cashier_name: Some("Sunil".into()),
        completed_at: Utc::now(),
    }
}

async fn token_issued_by_sink(app: &TestApp, token: &str) -> bool {
    let tokens: serde_json::Value =
        app.http.get(format!("{}/api/tokens", app.sink)).send().await.unwrap().json().await.unwrap();
    tokens.to_string().contains(token)
}

#[tokio::test]
async fn an_order_event_delivered_twice_sends_one_receipt_with_pdf_over_xoauth2() {
    let app = spawn_app().await;
    let to = unique_email("receipt");
    let event = order(&to);
    let message_id = Uuid::now_v7();
    app.publish(&event, message_id).await;
    app.publish(&event, message_id).await; // the redelivery

    let mail = app.mail_to(&to, 1, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 1, "one e-mail arrived");
    tokio::time::sleep(Duration::from_millis(800)).await; // room for a wrong second one
    let mail = app.mail_to(&to, 2, Duration::from_millis(10)).await;
    assert_eq!(mail.len(), 1, "the redelivered event sent no second e-mail: {mail:?}");
    let m = &mail[0];
    assert!(m["subject"].as_str().unwrap().contains("#42"), "{m}");
    let html = m["html"].as_str().unwrap();
    let text = m["text"].as_str().unwrap();
    assert!(html.contains("Galaxy A15") && html.contains("54490.00") && html.contains("1200.00"), "{html}");
    assert!(html.contains("Nimal &lt;Perera&gt;"), "names are escaped in HTML");
    assert!(html.contains("Kandy Mobile &amp; Co"), "shop name on the receipt");
    assert!(text.contains("Change: 510.00") && text.contains("Paid by wallet: 5000.00"), "{text}");
    let attachments = m["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["content_type"], "application/pdf");
    assert_eq!(attachments[0]["filename"], "receipt-42.pdf");

    // The login used XOAUTH2 with a token the stand-in's token endpoint issued.
    assert_eq!(m["auth_mechanism"], "XOAUTH2", "{m}");
    let token = m["auth_token"].as_str().expect("bearer token recorded");
    assert!(token_issued_by_sink(&app, token).await, "token came from the token endpoint");

    // The same PDF is in S3 under the shop's receipts folder.
    let key = format!("shops/{}/receipts/{}.pdf", event.shop.id, event.order_id);
    let stored = app.object(&key).await.expect("receipt PDF stored in S3");
    assert!(stored.starts_with(b"%PDF-"));
    assert_eq!(format!("{:x}", Sha256::digest(&stored)), attachments[0]["sha256"].as_str().unwrap());

    let (rows, sent): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status = 'sent') from mailer.emails where recipient = $1",
    )
    .bind(&to)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!((rows, sent), (1, 1));
}

#[tokio::test]
async fn every_event_type_becomes_its_email_and_secrets_are_dropped_after_sending() {
    let app = spawn_app().await;
    let to = unique_email("all");
    let exp = Utc::now() + chrono::Duration::minutes(5);
    let r = || Recipient { email: to.clone(), name: Some("Ama".into()) };
    app.publish(&OtpRequested { to: r(), code: "493817".into(), expires_at: exp }, Uuid::now_v7()).await;
    app.publish(
        &PasswordResetRequested { to: r(), reset_url: "https://app.cashvio.test/reset?t=abc".into(), expires_at: exp },
        Uuid::now_v7(),
    )
    .await;
    app.publish(
        &InviteCreated {
            to: r(),
            shop: shop(),
            role: "SHOP_STAFF".into(),
            invited_by: "Owner".into(),
            accept_url: "https://app.cashvio.test/invite?t=x".into(),
            expires_at: exp,
        },
        Uuid::now_v7(),
    )
    .await;
    app.publish(
        &LevelLow {
            shop: shop(),
            owner: r(),
            product_id: Uuid::new_v4(),
            product_name: "Tempered glass".into(),
            sku: Some("TG-1".into()),
            available: 3,
            keeping_units: 5,
            occurred_at: Utc::now(),
        },
        Uuid::now_v7(),
    )
    .await;
    let mail = app.mail_to(&to, 4, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 4, "{mail:?}");
    let subjects: Vec<&str> = mail.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    for expected in ["493817", "Reset your Cashvio password", "invited to join", "Low stock: Tempered glass (3 left)"] {
        assert!(subjects.iter().any(|s| s.contains(expected)), "{expected} in {subjects:?}");
    }
    assert!(mail.iter().any(|m| m["text"].as_str().unwrap().contains("https://app.cashvio.test/reset?t=abc")));
    // Sensitive bodies are not kept once sent; the rest are.
    let done = app
        .wait_sql(
            &format!("select count(*) from mailer.emails where recipient = '{to}' and status = 'sent'"),
            |n| n == 4,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(done, 4);
    let kept: Vec<(String, bool)> = sqlx::query_as(
        "select template, html_body is not null from mailer.emails where recipient = $1 order by template",
    )
    .bind(&to)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(
        kept,
        vec![
            ("invite".into(), false),
            ("low_stock".into(), true),
            ("otp".into(), false),
            ("password_reset".into(), false)
        ]
    );
}

/// An SMTP sink of this test's own, on free ports, that the test can stop and start.
struct OwnSink {
    child: Option<tokio::process::Child>,
    smtp_port: u16,
    http_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl OwnSink {
    fn new() -> Self {
        Self { child: None, smtp_port: free_port(), http_port: free_port() }
    }

    async fn start(&mut self) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".stack/venv/bin/python");
        let child = tokio::process::Command::new(python)
            .arg(root.join("stack/standins/smtp_sink.py"))
            .args(["--smtp-port", &self.smtp_port.to_string(), "--http-port", &self.http_port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP sink starts (make test installs the stand-ins)");
        self.child = Some(child);
        for _ in 0..100 {
            if reqwest::get(format!("http://127.0.0.1:{}/health", self.http_port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("own SMTP sink did not come up");
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

#[tokio::test]
async fn mail_waits_while_the_smtp_server_is_down_and_goes_out_when_it_is_back() {
    let mut sink = OwnSink::new(); // not started: the SMTP server (and its token endpoint) is down
    let app = spawn_app_with(Options {
        smtp_port: sink.smtp_port,
        sink_http_port: sink.http_port,
        max_attempts: 4,
        // B must still be queued when the sink is back: its retries span 1 + 2 + 4 s, more
        // than starting the sink takes on a loaded machine (300 ms made it a race).
        retry_base: Duration::from_millis(1_000),
    })
    .await;

    // A gives up while the server is down: failed, with its attempts and the error.
    let to_a = unique_email("a");
    let asked_by = Uuid::now_v7();
    app.publish(&order(&to_a), asked_by).await;
    let failed = app
        .wait_sql(
            &format!("select count(*) from mailer.emails where recipient = '{to_a}' and status = 'failed'"),
            |n| n == 1,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(failed, 1, "A ends failed after its attempts");
    let (attempts, error): (i32, String) =
        sqlx::query_as("select attempts, last_error from mailer.emails where recipient = $1")
            .bind(&to_a)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(attempts, 4);
    assert!(!error.is_empty());
    let announced: i64 =
        sqlx::query_scalar("select count(*) from mailer.outbox where message_type = 'mailer.email.failed'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(announced, 1, "the failure is announced through the outbox");
    // It names the request of the message that asked for the e-mail.
    let request_id: Option<String> =
        sqlx::query_scalar("select request_id from mailer.outbox where message_type = 'mailer.email.failed'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(request_id, Some(format!("test-{asked_by}")));

    // B is still being retried when the server comes back.
    let to_b = unique_email("b");
    app.publish(&order(&to_b), Uuid::now_v7()).await;
    let tried = app
        .wait_sql(&format!("select coalesce(max(attempts), 0)::bigint from mailer.emails where recipient = '{to_b}' and status = 'queued'"), |n| n >= 1, Duration::from_secs(10))
        .await;
    assert!(tried >= 1, "B waits as queued with attempts");
    sink.start().await;
    let test_app = TestApp { sink: format!("http://127.0.0.1:{}", sink.http_port), ..app };
    let app = test_app;
    assert_eq!(app.mail_to(&to_b, 1, Duration::from_secs(20)).await.len(), 1, "B goes out once the server is back");

    // A goes out after an admin resends it.
    let id: Uuid = sqlx::query_scalar("select email_id from mailer.emails where recipient = $1")
        .bind(&to_a)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    let res = app
        .http
        .post(format!("{}/emails/{id}/resend", app.base_url))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mail = app.mail_to(&to_a, 1, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 1, "A goes out after resend");
    assert_eq!(mail[0]["auth_mechanism"], "XOAUTH2");
    sink.stop().await;
}

#[tokio::test]
async fn a_bad_address_fails_alone_and_admins_see_it() {
    let app = spawn_app().await;
    let bad = "not-an-address";
    let good = unique_email("good");
    let mut event = order(bad);
    event.shop.name = format!("Shop {}", Uuid::new_v4());
    let asked_by = Uuid::now_v7();
    app.publish(&event, asked_by).await;
    app.publish(&order(&good), Uuid::now_v7()).await;
    assert_eq!(app.mail_to(&good, 1, Duration::from_secs(20)).await.len(), 1, "the queue is not blocked");
    let (status, error): (String, String) =
        sqlx::query_as("select status, last_error from mailer.emails where recipient = $1")
            .bind(bad)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("invalid recipient address"), "{error}");
    let request_id: Option<String> = sqlx::query_scalar(
        "select request_id from mailer.outbox where message_type = 'mailer.email.failed' and payload->>'recipient' = $1",
    )
    .bind(bad)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(request_id, Some(format!("test-{asked_by}")), "the failure names the request that asked for the e-mail");

    let list = |token: Option<String>, query: &'static str| {
        let mut req = app.http.get(format!("{}/emails?{query}", app.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let res = list(Some(app.admin_token()), "status=failed").await.unwrap();
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page["meta"]["totalItems"], 1, "{page}");
    assert_eq!(page["data"][0]["recipient"], bad);
    assert_eq!(page["data"][0]["status"], "failed");
    let staff = app.staff_token(platform::ids::ShopId(event.shop.id)).await;
    assert_eq!(list(Some(staff.clone()), "status=failed").await.unwrap().status(), 403);
    assert_eq!(list(None, "").await.unwrap().status(), 401);
    assert_eq!(list(Some(app.admin_token()), "status=bogus").await.unwrap().status(), 422);
    assert_eq!(list(Some(app.admin_token()), "limit=500").await.unwrap().status(), 422);
    let res = app
        .http
        .post(format!("{}/emails/{}/resend", app.base_url, Uuid::new_v4()))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .http
        .post(format!("{}/emails/{}/resend", app.base_url, Uuid::new_v4()))
        .bearer_auth(staff)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn an_event_that_cannot_become_an_email_is_dead_lettered_not_retried_forever() {
    let app = spawn_app().await;
    // A payload without the fields an OTP e-mail needs (an unknown field alone is fine: the
    // wire is forward compatible): permanent, straight to the DLQ, no e-mail row.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Broken {
        nonsense: bool,
    }
    impl contracts::Event for Broken {
        const TYPE: &'static str = "auth.otp.requested";
        const VERSION: u16 = 1;
    }
    app.publish(&Broken { nonsense: true }, Uuid::now_v7()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows: i64 = sqlx::query_scalar("select count(*) from mailer.emails").fetch_one(&app.db.admin).await.unwrap();
    assert_eq!(rows, 0);
    let inbox: i64 = sqlx::query_scalar("select count(*) from mailer.inbox").fetch_one(&app.db.admin).await.unwrap();
    assert_eq!(inbox, 0, "nothing was applied");
    let ch = app.broker.channel().await.unwrap();
    let dead = ch
        .basic_get(&format!("{}.dlq", app.queue), lapin::options::BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the event is in the dead-letter queue");
    let headers = dead.delivery.properties.headers().clone().unwrap_or_default();
    let error = match headers.inner().get("x-last-error") {
        Some(lapin::types::AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("x-last-error missing: {other:?}"),
    };
    assert!(error.contains("missing field `to`"), "the reason travels with it: {error}");
}

#[tokio::test]
async fn a_revoked_access_token_is_refreshed_on_535() {
    let mut sink = OwnSink::new();
    sink.start().await;
    let app =
        spawn_app_with(Options { smtp_port: sink.smtp_port, sink_http_port: sink.http_port, ..Options::default() })
            .await;
    let first = unique_email("first");
    app.publish(&order(&first), Uuid::now_v7()).await;
    let m1 = app.mail_to(&first, 1, Duration::from_secs(20)).await;
    assert_eq!(m1.len(), 1);
    let t1 = m1[0]["auth_token"].as_str().unwrap().to_owned();

    // The provider restarts and forgets every token it issued (as Google revokes tokens on a
    // password change): the pooled connection is gone, the next login with the cached token
    // gets 535, and the mailer fetches a new token instead of failing the e-mail.
    sink.stop().await;
    sink.start().await;
    let second = unique_email("second");
    app.publish(&order(&second), Uuid::now_v7()).await;
    let m2 = app.mail_to(&second, 1, Duration::from_secs(20)).await;
    assert_eq!(m2.len(), 1, "sent after refreshing the token");
    let t2 = m2[0]["auth_token"].as_str().unwrap();
    assert_ne!(t1, t2, "a new token was fetched");
    let attempts: serde_json::Value =
        app.http.get(format!("{}/api/auth-attempts", app.sink)).send().await.unwrap().json().await.unwrap();
    let refused =
        attempts.as_array().unwrap().iter().filter(|a| a["mechanism"] == "XOAUTH2" && a["success"] == false).count();
    assert!(refused >= 1, "the revoked token was refused once: {attempts}");
    let attempts_col: i32 = sqlx::query_scalar("select attempts from mailer.emails where recipient = $1")
        .bind(&second)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(attempts_col, 1, "the refresh happened within the first attempt");
    sink.stop().await;
}

#[tokio::test]
async fn an_empty_queue_has_nothing_due_so_the_sender_sleeps() {
    let db = testkit::TestDb::new().await.expect("test database");
    // Nothing queued: nothing due (it was "due now" once, and the sender spun on it).
    assert_eq!(cashvio_mailer::email::sender::next_due_in(&db.admin).await, None);
    sqlx::query(
        "insert into mailer.emails (email_id, source_type, template, recipient, subject, status, next_attempt_at)
         values ($1, 'test', 'otp', 'a@example.com', 'later', 'queued', now() + interval '60 seconds')",
    )
    .bind(Uuid::now_v7())
    .execute(&db.admin)
    .await
    .expect("queue one");
    let due = cashvio_mailer::email::sender::next_due_in(&db.admin).await.expect("one is queued");
    assert!(due > Duration::from_secs(50) && due <= Duration::from_secs(60), "{due:?}");
}
