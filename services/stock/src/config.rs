//! Configuration of the stock service, from the environment (see `.env.example`).

use platform::config::{CommonConfig, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { common: CommonConfig::from_env(env, "stock", "STOCK", 3002, "stock")? })
    }
}
