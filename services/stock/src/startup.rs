//! Wiring: the shared runtime plus the reservation registry, its RPC server, the event
//! consumer and the catalog routes.

use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};

use crate::consumer::{StockEvents, BINDINGS};
use crate::http::AppState;
use crate::reservations::{Stock, Tuning};
use crate::rpc::StockRpc;
use crate::Config;

/// Request body limit; nginx enforces the same in front.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Application {
    running: Running,
    stock: Stock,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The actors write through a pool of their own: a consumer or handler that holds a
        // connection while it waits for an actor (the order events' commits do, inside their
        // inbox transaction) can then never take the connection the actor needs to answer.
        let actor_pool = platform::db::pool(
            &config.common.database_url,
            &config.common.database_schema,
            config.common.database_max_connections,
        )?;
        let mut base = ServiceBase::new(config.common)?;
        let tuning =
            Tuning { idle_after: config.actor_idle, call_timeout: config.actor_call_timeout, writers: config.writers };
        let stock = Stock::start(actor_pool, tuning).await?;

        base.project_access(&config.queue);
        base.consume(&config.queue, BINDINGS, StockEvents { stock: stock.clone() }).await;
        base.serve_rpc(&config.rpc_queue, StockRpc { stock: stock.clone() });

        let state = AppState { pool: base.pool.clone(), stock: stock.clone() };
        let running = base.start(crate::http::router(state), BODY_LIMIT).await?;
        Ok(Self { running, stock })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// The reservation core (tests ask it as the handlers do).
    pub fn stock(&self) -> &Stock {
        &self.stock
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.running.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stock = self.stock.clone();
        let result = self.running.run_until_stopped().await;
        stock.stop_all();
        result
    }
}
