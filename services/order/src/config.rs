//! Configuration of the order service, from the environment (see `.env.example`).

use std::time::Duration;

use platform::config::{CommonConfig, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The order service's event queue (auth's shops, people and access events).
    pub queue: String,
    /// Where stock answers reservations.
    pub stock_rpc_queue: String,
    /// How long a checkout waits for stock before answering 503 (and releasing).
    pub stock_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env, "order", "ORDER", 3003, "sales")?,
            queue: env.or("ORDER_QUEUE", "order.events".to_owned())?,
            stock_rpc_queue: env.or("STOCK_RPC_QUEUE", contracts::routing::STOCK_RPC_QUEUE.to_owned())?,
            stock_timeout: Duration::from_millis(env.or("ORDER_STOCK_TIMEOUT_MS", 5_000)?),
        })
    }
}
