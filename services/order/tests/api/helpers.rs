//! `spawn_app()`: the real order service and the real stock service in-process on port 0,
//! sharing a fresh database, one exchange and the stock RPC queue; typed helpers for shops,
//! products, tokens and orders.

use std::time::Duration;

use cashvio_order::wallet::keys::KmsConfig;
use cashvio_order::{Application, Config};
use platform::auth::{Role, ShopRole};
use platform::config::Secret;
use platform::ids::ShopId;
use serde_json::{json, Value};
use testkit::jwt::{claims, JwksServer, SigningKey};
use testkit::TestDb;
use uuid::Uuid;

pub const PREFIX: &str = "ORDER";
pub const ROLE: &str = "cashvio_order";

pub struct TestApp {
    pub base_url: String,
    pub stock_url: String,
    pub db: TestDb,
    pub jwks: JwksServer,
    /// Signs access tokens the services accept.
    pub key: SigningKey,
    pub shutdown: platform::shutdown::CancellationToken,
    pub stock_shutdown: platform::shutdown::CancellationToken,
    pub http: reqwest::Client,
    pub stock_config: cashvio_stock::Config,
}

pub fn order_config(db: &TestDb, jwks: &JwksServer, stock: &cashvio_stock::Config) -> Config {
    let mut common = testkit::service::common_config("order", ROLE, "sales", db, jwks);
    common.amqp_exchange = stock.common.amqp_exchange.clone();
    common.database_max_connections = 10;
    Config {
        common,
        queue: testkit::unique("test_order"),
        stock_rpc_queue: stock.rpc_queue.clone(),
        stock_shards: stock.shards,
        stock_timeout: Duration::from_secs(3),
        stock_hold_seconds: 120,
        test_pause_after_reserve: Duration::ZERO,
        kms: kms_config(),
    }
}

/// KMS on the moto stand-in, with a key of this test's own (created at start).
pub fn kms_config() -> KmsConfig {
    KmsConfig {
        key_id: format!("alias/{}", testkit::unique("test-wallets")),
        region: "us-east-1".to_owned(),
        endpoint_url: Some(std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned())),
        access_key_id: Secret::new("test"),
        secret_access_key: Secret::new("test"),
        session_token: None,
        create_key: true,
        cache_max_age: Duration::from_secs(300),
        cache_max_uses: 1_000_000,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(kms_config()).await
}

/// The same with KMS reached as `kms` says (a test's stand-in in front of moto).
pub async fn spawn_app_with(kms: KmsConfig) -> TestApp {
    spawn(kms, Duration::ZERO).await
}

/// An order service that waits `pause` between a checkout's reserve and its booking.
pub async fn spawn_app_pausing(pause: Duration) -> TestApp {
    spawn(kms_config(), pause).await
}

async fn spawn(kms: KmsConfig, pause: Duration) -> TestApp {
    let db = TestDb::new().await.expect("test database");
    let key = SigningKey::generate("test-key");
    let jwks = JwksServer::start(&[&key]).await;
    let stock_config = cashvio_stock::Config {
        common: testkit::service::common_config("stock", "cashvio_stock", "stock", &db, &jwks),
        queue: testkit::unique("test_stock"),
        rpc_queue: testkit::unique("test_stock_rpc"),
        shards: contracts::routing::STOCK_SHARDS,
        shard_ping_every: Duration::from_secs(5),
        spread_shards: true,
        actor_idle: Duration::from_secs(30),
        actor_call_timeout: Duration::from_secs(20),
        writers: 2,
        gather: Duration::from_millis(2),
    };
    let (stock_url, stock_shutdown) = start_stock(stock_config.clone()).await;
    let mut config = order_config(&db, &jwks, &stock_config);
    config.kms = kms;
    config.test_pause_after_reserve = pause;
    let app = Application::build(config).await.expect("service builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    TestApp { base_url, stock_url, db, jwks, key, shutdown, stock_shutdown, http, stock_config }
}

/// Starts a stock service; answers its URL and shutdown token.
pub async fn start_stock(config: cashvio_stock::Config) -> (String, platform::shutdown::CancellationToken) {
    let stock = cashvio_stock::Application::build(config).await.expect("stock builds");
    let url = format!("http://127.0.0.1:{}", stock.port());
    let token = stock.shutdown_token();
    tokio::spawn(stock.run_until_stopped());
    (url, token)
}

impl TestApp {
    /// A second order service on this app's database, broker and stock (another instance,
    /// as `INSTANCES=2` runs it): its URL and the token that stops it.
    pub async fn second_order(&self) -> (String, platform::shutdown::CancellationToken) {
        let app = Application::build(order_config(&self.db, &self.jwks, &self.stock_config))
            .await
            .expect("second order instance builds");
        let url = format!("http://127.0.0.1:{}", app.port());
        let token = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());
        (url, token)
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
        self.stock_shutdown.cancel();
    }

    /// A member's token, with the membership in both services' access projections.
    pub async fn member(&self, shop: Uuid, role: ShopRole) -> String {
        let global = match role {
            ShopRole::ShopOwner => Role::ShopOwner,
            ShopRole::ShopStaff => Role::ShopStaff,
        };
        let c = claims(global, &[(ShopId(shop), role)], 3_600);
        testkit::access::grant(&self.db.admin, "stock", &c).await;
        testkit::access::grant(&self.db.admin, "sales", &c).await;
        self.key.sign(&c)
    }

    pub async fn staff(&self, shop: Uuid) -> String {
        self.member(shop, ShopRole::ShopStaff).await
    }

    pub async fn owner(&self, shop: Uuid) -> String {
        self.member(shop, ShopRole::ShopOwner).await
    }

    /// A shop both services know (as auth's shop.created would have told them).
    pub async fn seed_shop(&self) -> Uuid {
        let shop = Uuid::now_v7();
        sqlx::query("insert into stock.shops (shop_id, name, currency, owner_email, owner_name) values ($1, 'Test shop', 'LKR', 'owner@example.test', 'Owner')")
            .bind(shop)
            .execute(&self.db.admin)
            .await
            .unwrap();
        sqlx::query("insert into sales.shops (shop_id, name, currency) values ($1, 'Test shop', 'LKR')")
            .bind(shop)
            .execute(&self.db.admin)
            .await
            .unwrap();
        shop
    }

    /// A registered person (as auth.user.registered would have told the order service).
    pub async fn seed_person(&self, name: &str, email: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("insert into sales.people (user_id, name, email, role) values ($1, $2, $3, 'CUSTOMER')")
            .bind(id)
            .bind(name)
            .bind(email)
            .execute(&self.db.admin)
            .await
            .unwrap();
        id
    }

    pub async fn request(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{base}{path}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
        self.request(&self.base_url, method, path, body, Some(token), None).await
    }

    /// `POST /orders`, with an Idempotency-Key when given.
    pub async fn order(&self, body: Value, token: &str, key: Option<&str>) -> (u16, Value) {
        self.request(&self.base_url, "POST", "/orders", Some(body), Some(token), key).await
    }

    pub async fn stock_call(&self, method: &str, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
        self.request(&self.stock_url, method, path, body, Some(token), None).await
    }

    /// A bulk product at `price` with `units` on hand.
    pub async fn bulk_product(&self, shop: Uuid, name: &str, price: &str, units: i64) -> Uuid {
        let token = self.owner(shop).await;
        let (status, p) = self
            .stock_call(
                "POST",
                "/products",
                Some(json!({"shopId": shop, "name": name, "sellPrice": price, "tracking": "BULK"})),
                &token,
            )
            .await;
        assert_eq!(status, 201, "{p}");
        let id: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
        if units > 0 {
            let (status, level) = self
                .stock_call(
                    "POST",
                    &format!("/products/{id}/receive"),
                    Some(json!({"quantity": units, "unitCost": "10.00"})),
                    &token,
                )
                .await;
            assert_eq!(status, 200, "{level}");
        }
        id
    }

    /// A serialized product with one unit per barcode, each at `price`.
    pub async fn serialized_product(&self, shop: Uuid, name: &str, price: &str, barcodes: &[&str]) -> Uuid {
        let token = self.owner(shop).await;
        let (status, p) = self
            .stock_call(
                "POST",
                "/products",
                Some(json!({"shopId": shop, "name": name, "tracking": "SERIALIZED", "warrantyMonths": 12})),
                &token,
            )
            .await;
        assert_eq!(status, 201, "{p}");
        let id: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
        for code in barcodes {
            let (status, item) = self
                .stock_call(
                    "POST",
                    "/items",
                    Some(json!({"productId": id, "barcode": code, "broughtPrice": "100.00", "sellPrice": price})),
                    &token,
                )
                .await;
            assert_eq!(status, 201, "{item}");
        }
        id
    }

    /// (on hand, reserved) of a product.
    pub async fn level(&self, product: Uuid) -> (i64, i64) {
        let (on_hand, reserved): (i32, i32) =
            sqlx::query_as("select on_hand, reserved from stock.levels where product_id = $1")
                .bind(product)
                .fetch_one(&self.db.admin)
                .await
                .unwrap();
        (i64::from(on_hand), i64::from(reserved))
    }

    /// AVAILABLE, RESERVED or SOLD.
    pub async fn unit_status(&self, barcode: &str) -> String {
        sqlx::query_scalar("select status from stock.items where barcode = $1")
            .bind(barcode)
            .fetch_one(&self.db.admin)
            .await
            .unwrap()
    }

    /// How many rows of `table` (in `sales`) belong to `shop`.
    pub async fn count(&self, table: &str, shop: Uuid) -> i64 {
        sqlx::query_scalar(&format!("select count(*) from sales.{table} where shop_id = $1"))
            .bind(shop)
            .fetch_one(&self.db.admin)
            .await
            .unwrap()
    }
}
