//! Wiring: the shared runtime plus uploads, the event consumer and the sender.

use std::sync::Arc;

use bus::runtime::{Running, ServiceBase};
use bus::{Consumer, QueueSpec};
use platform::shutdown::CancellationToken;

use crate::consumer::{EventMailer, BINDINGS};
use crate::email::sender::Sender;
use crate::email::smtp::Smtp;
use crate::email::templates::Templates;
use crate::http::AppState;
use crate::storage::Storage;
use crate::Config;

/// Request body limit outside the upload routes; nginx enforces 12 MB in front.
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

        let mut spec =
            QueueSpec::new(config.delivery.queue.clone(), BINDINGS).with_queue_type(&base.config.amqp_queue_type);
        spec.max_attempts = config.delivery.event_max_attempts;
        spec.retry_delay = config.delivery.event_retry_delay;
        let handler = Arc::new(EventMailer { templates, storage: storage.clone() });
        let consumer = Consumer::new(base.pool.clone(), base.broker.clone(), &base.config.amqp_exchange, spec, handler);
        // Declared now so events published from here on wait in the queue; if the broker is
        // not up yet, the consumer declares it once it connects.
        if let Err(e) = consumer.declare().await {
            tracing::warn!(error = %format!("{e:#}"), "could not declare the mailer queue yet");
        }
        base.task("mailer-consumer", move |stop| Box::pin(consumer.run(stop)));
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
