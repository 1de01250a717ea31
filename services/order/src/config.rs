//! Configuration of the order service, from the environment (see `.env.example`).

use std::time::Duration;

use platform::config::{CommonConfig, ConfigError, Env};

use crate::wallet::keys::KmsConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The order service's event queue (auth's shops, people and access events).
    pub queue: String,
    /// Where stock answers reservations: the prefix of its shard queues (`stock.rpc.<k>`).
    pub stock_rpc_queue: String,
    /// How many shards stock's products are spread over (`STOCK_SHARDS`, as stock's).
    pub stock_shards: u16,
    /// How long a checkout waits for stock before answering 503 (and releasing).
    pub stock_timeout: Duration,
    /// How long a checkout's reservation lives if the order service dies before booking it.
    pub stock_hold_seconds: u32,
    /// Fault injection for tests (0 in production): a pause between reserving and booking,
    /// so a test can kill the process mid-checkout.
    pub test_pause_after_reserve: Duration,
    /// KMS and the wallet data-key cache.
    pub kms: KmsConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env, "order", "ORDER", 3003, "sales")?,
            queue: env.or("ORDER_QUEUE", "order.events".to_owned())?,
            stock_rpc_queue: env.or("STOCK_RPC_QUEUE", contracts::routing::STOCK_RPC_QUEUE.to_owned())?,
            stock_shards: env.or("STOCK_SHARDS", contracts::routing::STOCK_SHARDS)?,
            stock_timeout: Duration::from_millis(env.or("ORDER_STOCK_TIMEOUT_MS", 5_000)?),
            stock_hold_seconds: env.or("ORDER_STOCK_HOLD_SECS", crate::stock::HOLD_SECONDS)?,
            test_pause_after_reserve: Duration::from_millis(env.or("ORDER_TEST_PAUSE_AFTER_RESERVE_MS", 0)?),
            kms: KmsConfig {
                key_id: env.or("KMS_KEY_ID", "alias/cashvio-wallets".to_owned())?,
                region: env.or("AWS_REGION", "us-east-1".to_owned())?,
                endpoint_url: match env.optional::<String>("AWS_ENDPOINT_URL")? {
                    Some(raw) => {
                        env.url("AWS_ENDPOINT_URL", &["http", "https"])?;
                        Some(raw.trim().trim_end_matches('/').to_owned())
                    }
                    None => None,
                },
                access_key_id: env.secret("AWS_ACCESS_KEY_ID")?,
                secret_access_key: env.secret("AWS_SECRET_ACCESS_KEY")?,
                session_token: env.secret_optional("AWS_SESSION_TOKEN"),
                create_key: env.or("KMS_CREATE_KEY", false)?,
                cache_max_age: Duration::from_secs(env.or("WALLET_KEY_CACHE_MAX_AGE_SECS", 300)?),
                cache_max_uses: env.or("WALLET_KEY_CACHE_MAX_USES", 1_000_000)?,
            },
        })
    }
}
