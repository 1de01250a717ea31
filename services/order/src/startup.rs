//! Wiring: the shared runtime plus this service's routes and background tasks.

use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};
use utoipa_axum::router::OpenApiRouter;

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
        let api = OpenApiRouter::new();
        let running = base.start(api, BODY_LIMIT).await?;
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
