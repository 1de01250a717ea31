//! Wiring: the shared runtime plus the checkout, its stock client, the event consumer and
//! the routes.

use anyhow::Context;
use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};

use crate::checkout::Sales;
use crate::consumer::{OrderEvents, BINDINGS};
use crate::stock::Stock;
use crate::wallet::keys::{self, KeyRing};
use crate::wallet::Wallets;
use crate::Config;

/// Request body limit; nginx enforces the same in front.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Application {
    running: Running,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut base = ServiceBase::new(config.common)?;
        base.project_access(&config.queue);
        base.consume(&config.queue, BINDINGS, OrderEvents).await;
        let rpc = bus::RpcClient::new(base.broker.clone());
        let stock = Stock::new(
            rpc,
            config.stock_rpc_queue,
            config.stock_shards,
            config.stock_timeout,
            config.stock_hold_seconds,
        );
        let kms_calls = base.metrics.counter("order_kms_calls", "Calls to KMS (data keys generated or unwrapped)");
        let keys = KeyRing::new(keys::client(&config.kms), &config.kms, base.pool.clone(), kms_calls);
        if config.kms.create_key {
            keys.ensure_key().await.context("KMS: creating the wallet key (KMS_CREATE_KEY=true); is KMS reachable?")?;
        }
        let wallets = Wallets::new(keys, base.pool.clone());
        let sales =
            Sales { pool: base.pool.clone(), stock, wallets, pause_after_reserve: config.test_pause_after_reserve };
        let running = base.start(crate::http::router(sales), BODY_LIMIT).await?;
        Ok(Self { running })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.running.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.running.run_until_stopped().await
    }
}
