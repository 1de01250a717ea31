//! Health, readiness, metrics, OpenAPI, bad configuration and graceful shutdown.

use crate::helpers::{spawn_app, PREFIX, ROLE};

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = spawn_app().await;
    testkit::service::assert_shell(&app.base_url, "auth").await;
    let doc: serde_json::Value =
        app.http.get(format!("{}/openapi.json", app.base_url)).send().await.unwrap().json().await.unwrap();
    // Google login redirects with 302 (the first system's status), as documented.
    let login = &doc["paths"]["/auth/google/login"]["get"]["responses"];
    assert!(login["302"].is_object() && login["303"].is_null(), "{login}");
    assert!(doc["paths"]["/auth/login"]["post"]["responses"]["429"].is_object(), "sign-in documents its rate limit");
    app.shutdown.cancel();
}

#[tokio::test]
async fn binary_refuses_bad_configuration_and_drains_on_sigterm() {
    let app = spawn_app().await;
    let jwks = testkit::jwt::JwksServer::start(&[]).await;
    testkit::service::assert_process_contract(env!("CARGO_BIN_EXE_cashvio-auth"), PREFIX, ROLE, &app.db, &jwks, &[])
        .await;
    app.shutdown.cancel();
}
