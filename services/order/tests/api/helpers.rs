//! `spawn_app()`: the real service in-process on port 0, with a fresh database.

use cashvio_order::{Application, Config};
use testkit::jwt::{JwksServer, SigningKey};
use testkit::TestDb;

pub const PREFIX: &str = "ORDER";
pub const ROLE: &str = "cashvio_order";

pub struct TestApp {
    pub base_url: String,
    pub db: TestDb,
    pub jwks: JwksServer,
    /// Signs access tokens the service accepts (the endpoint tests of each service use it).
    #[allow(dead_code)]
    pub key: SigningKey,
    pub shutdown: platform::shutdown::CancellationToken,
}

pub async fn spawn_app() -> TestApp {
    let db = TestDb::new().await.expect("test database");
    let key = SigningKey::generate("test-key");
    let jwks = JwksServer::start(&[&key]).await;
    let config = Config {
        common: testkit::service::common_config("order", ROLE, "sales", &db, &jwks),
        queue: testkit::unique("test_order"),
    };
    let app = Application::build(config).await.expect("service builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp { base_url, db, jwks, key, shutdown }
}
