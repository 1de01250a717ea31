//! `spawn_app()`: the real stock service in-process on port 0 with a fresh database, its
//! own queues; helpers for tokens, products, reservations over HTTP and RPC, and the SQL
//! invariants every test checks.

use std::time::Duration;

use cashvio_stock::{Application, Config};
use platform::auth::{Role, ShopRole};
use platform::ids::ShopId;
use serde_json::{json, Value};
use testkit::jwt::{claims, JwksServer, SigningKey};
use testkit::TestDb;
use uuid::Uuid;

pub const PREFIX: &str = "STOCK";
pub const ROLE: &str = "cashvio_stock";

pub struct TestApp {
    pub config: Config,
    pub base_url: String,
    pub db: TestDb,
    pub jwks: JwksServer,
    pub key: SigningKey,
    pub shutdown: platform::shutdown::CancellationToken,
    pub rpc_queue: String,
    pub rpc: bus::RpcClient,
    pub http: reqwest::Client,
    pub exchange: String,
    /// The service's reservation core, to ask it as its handlers do.
    pub stock: cashvio_stock::reservations::Stock,
}

pub fn config(db: &TestDb, jwks: &JwksServer) -> Config {
    Config {
        common: testkit::service::common_config("stock", ROLE, "stock", db, jwks),
        queue: testkit::unique("test_stock"),
        rpc_queue: testkit::unique("test_stock_rpc"),
        shards: contracts::routing::STOCK_SHARDS,
        shard_ping_every: Duration::from_secs(5),
        spread_shards: true,
        actor_idle: Duration::from_secs(2),
        actor_call_timeout: Duration::from_secs(20),
        writers: 2,
        gather: Duration::from_millis(2),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with the configuration changed by `tune` (its peers share it).
pub async fn spawn_app_with(tune: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await.expect("test database");
    let key = SigningKey::generate("test-key");
    let jwks = JwksServer::start(&[&key]).await;
    let mut config = config(&db, &jwks);
    tune(&mut config);
    let rpc_queue = config.rpc_queue.clone();
    let exchange = config.common.amqp_exchange.clone();

    let app = Application::build(config.clone()).await.expect("service builds");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let stock = app.stock().clone();
    tokio::spawn(app.run_until_stopped());
    let rpc = bus::RpcClient::new(bus::Broker::new(&testkit::amqp_url(), "stock-test-rpc"));
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    TestApp { config, base_url, db, jwks, key, shutdown, rpc_queue, rpc, http, exchange, stock }
}

/// A second instance of the same service: the same database, queues and shards.
pub struct Peer {
    pub base_url: String,
    pub shutdown: platform::shutdown::CancellationToken,
    pub stock: cashvio_stock::reservations::Stock,
}

impl TestApp {
    /// A staff member's token, with the membership in stock's access projection.
    pub async fn staff(&self, shop: Uuid) -> String {
        let c = claims(Role::ShopStaff, &[(ShopId(shop), ShopRole::ShopStaff)], 3_600);
        testkit::access::grant(&self.db.admin, "stock", &c).await;
        self.key.sign(&c)
    }

    pub async fn seed_shop(&self) -> Uuid {
        let shop = Uuid::now_v7();
        sqlx::query("insert into stock.shops (shop_id, name, currency, owner_email, owner_name) values ($1, 'Test shop', 'LKR', 'owner@example.test', 'Owner')")
            .bind(shop)
            .execute(&self.db.admin)
            .await
            .unwrap();
        shop
    }

    /// Starts another instance of this service (as `INSTANCES=2 make up` does).
    pub async fn spawn_peer(&self) -> Peer {
        let app = Application::build(self.config.clone()).await.expect("the peer builds");
        let peer = Peer {
            base_url: format!("http://127.0.0.1:{}", app.port()),
            shutdown: app.shutdown_token(),
            stock: app.stock().clone(),
        };
        tokio::spawn(app.run_until_stopped());
        peer
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        self.call_at(&self.base_url, method, path, body, token).await
    }

    /// [`TestApp::call`] to the instance at `base`.
    pub async fn call_at(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{base}{path}"));
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

    /// A bulk product with `units` received.
    pub async fn bulk_product(&self, shop: Uuid, name: &str, price: &str, units: i64) -> Uuid {
        let token = self.staff(shop).await;
        let (status, p) = self
            .call(
                "POST",
                "/products",
                Some(json!({"shopId": shop, "name": name, "sellPrice": price, "tracking": "BULK"})),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        let id: Uuid = serde_json::from_value(p["id"].clone()).unwrap();
        if units > 0 {
            let (status, level) = self
                .call(
                    "POST",
                    &format!("/products/{id}/receive"),
                    Some(json!({"quantity": units, "unitCost": "10.00"})),
                    Some(&token),
                )
                .await;
            assert_eq!(status, 200, "{level}");
        }
        id
    }

    /// Reserves over HTTP: (status, body).
    pub async fn reserve_http(&self, shop: Uuid, lines: Value, ttl: u32) -> (u16, Value) {
        let token = self.staff(shop).await;
        self.call(
            "POST",
            "/reservations",
            Some(json!({"shopId": shop, "lines": lines, "ttlSeconds": ttl})),
            Some(&token),
        )
        .await
    }

    /// The RPC queue of `shop`'s shard, as the order service picks it.
    pub fn shard_queue(&self, shop: Uuid) -> String {
        use contracts::routing::{shard_of, shard_queue, STOCK_SHARDS};
        shard_queue(&self.rpc_queue, shard_of(shop, STOCK_SHARDS))
    }

    /// Reserves over the shop's `stock.rpc.<k>`: Ok(view) or Err(fault code).
    pub async fn reserve_rpc(&self, shop: Uuid, lines: Value, ttl: u32) -> Result<Value, String> {
        self.reserve_rpc_as(Uuid::now_v7(), shop, lines, ttl).await
    }

    /// [`TestApp::reserve_rpc`] with the caller's reservation id (as the order service's).
    pub async fn reserve_rpc_as(&self, id: Uuid, shop: Uuid, lines: Value, ttl: u32) -> Result<Value, String> {
        let req = json!({"reservationId": id, "shopId": shop, "lines": lines, "ttlSeconds": ttl});
        let raw = self
            .rpc
            .call_raw(
                &self.shard_queue(shop),
                "stock.reservation.reserve",
                serde_json::to_vec(&req).unwrap(),
                &bus::MessageMeta::default(),
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| format!("rpc: {e}"))?;
        let v: Value = serde_json::from_slice(&raw).unwrap();
        match (v.get("ok"), v.get("err")) {
            (Some(ok), _) => Ok(ok.clone()),
            (_, Some(err)) => Err(err["code"].as_str().unwrap_or("?").to_owned()),
            _ => Err("malformed reply".into()),
        }
    }

    /// The SQL invariants: on_hand and reserved never negative, reserved <= on_hand (the
    /// constraints), reserved equals the held lines, and the ledger adds up to the level.
    pub async fn assert_consistent(&self, product: Uuid) -> (i64, i64) {
        // One statement, so one snapshot: the actor's batch commits the level, the lines and
        // the ledger together, and separate reads could see one side of that commit only.
        let (on_hand, reserved, held, ledger_on, ledger_res): (i32, i32, i64, i64, i64) = sqlx::query_as(
            "select l.on_hand, l.reserved,
                    (select coalesce(sum(quantity), 0)::bigint from stock.reservation_lines
                      where product_id = $1 and status = 'HELD'),
                    (select coalesce(sum(on_hand_delta), 0)::bigint from stock.movements where product_id = $1),
                    (select coalesce(sum(reserved_delta), 0)::bigint from stock.movements where product_id = $1)
               from stock.levels l where l.product_id = $1",
        )
        .bind(product)
        .fetch_one(&self.db.admin)
        .await
        .unwrap();
        assert!(on_hand >= 0 && reserved >= 0 && reserved <= on_hand, "level {on_hand}/{reserved}");
        assert_eq!(i64::from(reserved), held, "reserved equals the held reservation lines");
        assert_eq!(
            (ledger_on, ledger_res),
            (i64::from(on_hand), i64::from(reserved)),
            "the ledger adds up to the level"
        );
        (i64::from(on_hand), i64::from(reserved))
    }
}
