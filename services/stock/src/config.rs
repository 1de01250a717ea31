//! Configuration of the stock service, from the environment (see `.env.example`).

use std::time::Duration;

use platform::config::{CommonConfig, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The event queue (shop projection, order events).
    pub queue: String,
    /// The prefix of the RPC shard queues the order service reserves through
    /// (`stock.rpc.<k>`).
    pub rpc_queue: String,
    /// How many shards shops are spread over (`STOCK_SHARDS`; the order service must agree).
    pub shards: u16,
    /// How often the instance pings every shard (so an owner learns it owns one) and, with
    /// other instances serving, lets a shard go when it owns more than its share.
    pub shard_ping_every: Duration,
    /// Whether an instance owning more than its share of the shards lets one go to another
    /// (`STOCK_SPREAD_SHARDS`, default true). On one machine a second instance adds no CPU
    /// and spreading halves each writer's batches, so the local stack turns it off: the
    /// first instance owns every shard and the others stand by (SCALING.md).
    pub spread_shards: bool,
    /// A product's actor stops after this long without messages or holds.
    pub actor_idle: Duration,
    /// How long a caller waits for an actor's answer.
    pub actor_call_timeout: Duration,
    /// Concurrent writer transactions of the reservation core.
    pub writers: usize,
    /// How long a quiet writer waits for the other products of a reservation
    /// (`STOCK_GATHER_MS`, default 2).
    pub gather: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env, "stock", "STOCK", 3002, "stock")?,
            queue: env.or("STOCK_QUEUE", "stock.events".to_owned())?,
            rpc_queue: env.or("STOCK_RPC_QUEUE", contracts::routing::STOCK_RPC_QUEUE.to_owned())?,
            shards: env.or("STOCK_SHARDS", contracts::routing::STOCK_SHARDS)?,
            shard_ping_every: Duration::from_millis(env.or("STOCK_SHARD_PING_MS", 5_000)?.max(100)),
            spread_shards: env.or("STOCK_SPREAD_SHARDS", true)?,
            actor_idle: Duration::from_secs(env.or("STOCK_ACTOR_IDLE_SECS", 300)?),
            actor_call_timeout: Duration::from_millis(env.or("STOCK_ACTOR_TIMEOUT_MS", 10_000)?),
            writers: env.or("STOCK_WRITERS", 2)?,
            gather: Duration::from_millis(env.or("STOCK_GATHER_MS", 2)?),
        })
    }
}
