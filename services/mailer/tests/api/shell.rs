//! Health, readiness, metrics, OpenAPI, bad configuration and graceful shutdown.

use crate::helpers::{spawn_app, PREFIX, ROLE};

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = spawn_app().await;
    testkit::service::assert_shell(&app.base_url, "mailer").await;
    let doc: serde_json::Value =
        app.http.get(format!("{}/openapi.json", app.base_url)).send().await.unwrap().json().await.unwrap();
    for path in ["/upload", "/upload/presign", "/emails", "/emails/{id}/resend"] {
        assert!(doc["paths"][path].is_object(), "OpenAPI documents {path}");
    }
    app.shutdown.cancel();
}

#[tokio::test]
async fn binary_refuses_bad_configuration_and_drains_on_sigterm() {
    let app = spawn_app().await;
    let env = [
        ("S3_BUCKET", "cashvio-local"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("S3_CREATE_BUCKET", "true"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", "1025"),
        ("SMTP_TLS", "none"),
        ("SMTP_USERNAME", "no-reply@cashvio.test"),
        ("SMTP_OAUTH_TOKEN_URL", "http://127.0.0.1:8025/oauth2/token"),
        ("SMTP_OAUTH_CLIENT_ID", "cashvio-test"),
        ("SMTP_OAUTH_CLIENT_SECRET", "s"),
        ("SMTP_OAUTH_REFRESH_TOKEN", "local-refresh-token"),
        ("MAIL_FROM", "Cashvio <no-reply@cashvio.test>"),
    ];
    testkit::service::assert_process_contract(
        env!("CARGO_BIN_EXE_cashvio-mailer"),
        PREFIX,
        ROLE,
        &app.db,
        &app.jwks,
        &env,
    )
    .await;
    app.shutdown.cancel();
}
