//! Health, readiness, metrics, OpenAPI, bad configuration and graceful shutdown.

use crate::helpers::{spawn_app, PREFIX, ROLE};

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = spawn_app().await;
    testkit::service::assert_shell(&app.base_url, "order").await;
    app.stop();
}

#[tokio::test]
async fn binary_refuses_bad_configuration_and_drains_on_sigterm() {
    let app = spawn_app().await;
    testkit::service::assert_process_contract(
        env!("CARGO_BIN_EXE_cashvio-order"),
        PREFIX,
        ROLE,
        &app.db,
        &app.jwks,
        &[("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")],
    )
    .await;
    app.stop();
}
