//! Configuration of the order service, from the environment (see `.env.example`).

use platform::config::{CommonConfig, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The order service's event queue (auth's access events for now).
    pub queue: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env, "order", "ORDER", 3003, "sales")?,
            queue: env.or("ORDER_QUEUE", "order.events".to_owned())?,
        })
    }
}
