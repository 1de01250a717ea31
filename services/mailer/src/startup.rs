//! Wiring: the shared runtime plus uploads, the event consumer and the sender.

use std::sync::Arc;

use bus::QueueSpec;
use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};

use crate::consumer::{EventMailer, BINDINGS};
use crate::email::sender::Sender;
use crate::email::smtp::Smtp;
use crate::email::templates::Templates;
use crate::http::AppState;
use crate::storage::Storage;
use crate::Config;

/// Request body limit outside the upload routes (nginx lets 101 MB through for uploads).
pub const BODY_LIMIT: usize = 12 << 20;

pub struct Application {
    running: Running,
    storage: Storage,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut base = ServiceBase::new(config.common)?;
        let storage = Storage::new(&config.s3);
        if config.s3.create_bucket {
            storage.ensure_bucket().await?;
        }
        let templates = Arc::new(Templates::new()?);
        let smtp = Arc::new(Smtp::new(config.smtp));

        let mut spec = QueueSpec::new(config.delivery.queue.clone(), BINDINGS);
        spec.max_attempts = config.delivery.event_max_attempts;
        spec.retry_delay = config.delivery.event_retry_delay;
        base.project_access(&spec.name);
        base.consume_with(spec, EventMailer { templates, storage: storage.clone() }).await;
        let sender = Sender::new(base.pool.clone(), smtp, config.delivery);
        base.task("mail-sender", move |stop| Box::pin(sender.run(stop)));

        let api = crate::http::router(AppState { pool: base.pool.clone(), storage: storage.clone() });
        let running = base.start(api, BODY_LIMIT).await?;
        Ok(Self { running, storage })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.running.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.running.run_until_stopped().await
    }
}
