//! Wiring: the shared runtime plus accounts, shops, staff, the JWKS and the customer
//! projection consumer.

use std::sync::Arc;

use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};

use crate::consumer::{CustomerProjection, BINDINGS};
use crate::http::AppState;
use crate::keys::KeyStore;
use crate::ratelimit::RateLimiter;
use crate::Config;

/// Request body limit; nginx enforces the same in front.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Application {
    running: Running,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut base = ServiceBase::new(config.common)?;
        let keys = KeyStore::new(base.pool.clone());
        // Without a key nothing can sign in: fail at start rather than serve half a service.
        keys.ensure_key().await.map_err(|e| e.context("preparing the signing key"))?;
        base.authorize_with(Arc::new(crate::access::AuthAccess { pool: base.pool.clone() }));
        let spec = bus::QueueSpec::new(config.queue.clone(), BINDINGS).with_linger(config.queue_linger);
        base.consume_with(spec, CustomerProjection).await;
        let limiter = Arc::new(RateLimiter::new(base.pool.clone(), config.limits.window));
        let sweeper = limiter.clone();
        base.task("rate-limit sweeper", move |stop| Box::pin(sweeper.sweep_until(stop)));
        let state = AppState {
            pool: base.pool.clone(),
            keys,
            tokens: config.tokens,
            app_url: config.app_url,
            limiter,
            limits: config.limits,
            google: config.google.map(|g| Arc::new(crate::google::Google::new(g))),
        };
        let running = base.start(crate::http::router(state), BODY_LIMIT).await?;
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
