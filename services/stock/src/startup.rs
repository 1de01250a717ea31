//! Wiring: the shared runtime plus the reservation registry, its RPC server, the event
//! consumer and the catalog routes.

use std::sync::Arc;

use bus::runtime::{Running, ServiceBase};
use bus::{Consumer, QueueSpec, RpcServer};
use platform::shutdown::CancellationToken;

use crate::consumer::{StockEvents, BINDINGS};
use crate::http::AppState;
use crate::reservations::{Coordinator, Registry};
use crate::rpc::StockRpc;
use crate::Config;

/// Request body limit; nginx enforces the same in front.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Application {
    running: Running,
    registry: Registry,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut base = ServiceBase::new(config.common)?;
        let registry = Registry::start(base.pool.clone(), config.actor_idle, config.actor_call_timeout).await?;
        let coordinator = Coordinator::new(registry.clone());

        let consumer = Consumer::new(
            base.pool.clone(),
            base.broker.clone(),
            &base.config.amqp_exchange,
            QueueSpec::new(config.queue.clone(), BINDINGS).with_queue_type(&base.config.amqp_queue_type),
            Arc::new(StockEvents { coordinator: coordinator.clone() }),
        );
        if let Err(e) = consumer.declare().await {
            tracing::warn!(error = %format!("{e:#}"), "could not declare the stock queue yet");
        }
        base.task("stock-consumer", move |stop| Box::pin(consumer.run(stop)));
        let rpc = RpcServer::new(
            base.broker.clone(),
            &config.rpc_queue,
            Arc::new(StockRpc { coordinator: coordinator.clone() }),
        );
        base.task("stock-rpc", move |stop| Box::pin(rpc.run(stop)));

        let state = AppState { pool: base.pool.clone(), registry: registry.clone(), coordinator };
        let running = base.start(crate::http::router(state), BODY_LIMIT).await?;
        Ok(Self { running, registry })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.running.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let registry = self.registry.clone();
        let result = self.running.run_until_stopped().await;
        registry.stop_all();
        result
    }
}
