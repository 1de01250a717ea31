//! The consumer: each message is handled inside a database transaction that also inserts
//! its id into the service's `inbox`; the message is acked only after that commit. A
//! redelivery (lost ack, broker restart, publisher retry) finds the inbox row and has no
//! second effect. A failing message goes to `<queue>.retry`, comes back after the delay,
//! and after `max_attempts` is moved to `<queue>.dlq` with the last error.

use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::message::Incoming;
use crate::topology::{self, QueueSpec};
use crate::Broker;

/// Why a handler failed, and so what happens to the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a dependency is down): retried after the delay, then dead-lettered.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never work (a payload we cannot read): dead-lettered at once.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Transient(e)
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Transient(e.into())
    }
}

/// What a service does with a message. It runs inside the transaction that records the
/// message in the inbox: write through `conn` and the effect commits exactly once.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, conn: &mut PgConnection, message: &Incoming) -> Result<(), HandlerError>;

    /// Whether the message has any effect here, judged from the message alone. `false`
    /// acks it without a transaction or an inbox row: with nothing to apply there is
    /// nothing to apply twice (the mailer and a sale that asked for no receipt).
    fn wants(&self, _message: &Incoming) -> bool {
        true
    }
}

pub struct Consumer {
    pool: PgPool,
    broker: Broker,
    exchange: String,
    spec: QueueSpec,
    prefetch: u16,
    handler: Arc<dyn Handler>,
}

enum Outcome {
    Done,
    Duplicate,
    Retry(String),
    DeadLetter(String),
}

impl Consumer {
    pub fn new(pool: PgPool, broker: Broker, exchange: &str, spec: QueueSpec, handler: Arc<dyn Handler>) -> Self {
        Self { pool, broker, exchange: exchange.to_owned(), spec, prefetch: 8, handler }
    }

    pub fn prefetch(mut self, n: u16) -> Self {
        self.prefetch = n.max(1);
        self
    }

    /// Declares the queues now, so events published before the first `run` loop are kept.
    pub async fn declare(&self) -> anyhow::Result<()> {
        let ch = self.broker.channel().await?;
        topology::declare_queue(&ch, &self.exchange, &self.spec).await?;
        let _ = ch.close(200, "declared").await;
        Ok(())
    }

    /// Consumes until `shutdown`, reconnecting after broker failures. On shutdown it stops
    /// taking deliveries, finishes those in hand, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        crate::broker::reconnecting("consumer", &self.spec.name, &shutdown, || self.consume(&shutdown)).await;
    }

    async fn consume(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let ch = self.broker.channel().await?;
        topology::declare_queue(&ch, &self.exchange, &self.spec).await?;
        ch.confirm_select(Default::default()).await.context("confirm.select")?;
        ch.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        let consumer = ch
            .basic_consume(&self.spec.name, "", BasicConsumeOptions::default(), FieldTable::default())
            .await
            .context("basic.consume")?;
        tracing::info!(queue = %self.spec.name, "consuming");
        let stopped = shutdown.clone();
        consumer
            .take_until(async move { stopped.cancelled().await })
            .for_each_concurrent(usize::from(self.prefetch), |delivery| {
                let ch = &ch;
                async move {
                    match delivery {
                        Ok(d) => {
                            if let Err(e) = self.process(ch, d).await {
                                tracing::warn!(queue = %self.spec.name, error = %format!("{e:#}"), "delivery not settled");
                            }
                        }
                        Err(e) => tracing::warn!(queue = %self.spec.name, error = %e, "consumer stream error"),
                    }
                }
            })
            .await;
        if shutdown.is_cancelled() {
            let _ = ch.close(200, "shutdown").await;
            return Ok(());
        }
        Err(anyhow::anyhow!("consumer stream ended (connection or channel closed)"))
    }

    async fn process(&self, ch: &lapin::Channel, d: lapin::message::Delivery) -> anyhow::Result<()> {
        let outcome = match Incoming::from_delivery(&d, &self.spec.name) {
            Err(e) => Outcome::DeadLetter(e.to_string()),
            Ok(msg) => {
                let span = tracing::info_span!("message", queue = %self.spec.name, message_id = %msg.message_id,
                    message_type = %msg.message_type, attempt = msg.attempt,
                    request_id = msg.meta.request_id.as_deref().unwrap_or("-"));
                match self.apply(&msg).instrument(span).await {
                    Ok(true) => Outcome::Done,
                    Ok(false) => Outcome::Duplicate,
                    Err(HandlerError::Permanent(e)) => Outcome::DeadLetter(format!("{e:#}")),
                    Err(HandlerError::Transient(e)) if msg.attempt >= self.spec.max_attempts => {
                        Outcome::DeadLetter(format!("after {} attempts: {e:#}", msg.attempt))
                    }
                    Err(HandlerError::Transient(e)) => Outcome::Retry(format!("{e:#}")),
                }
            }
        };
        match outcome {
            Outcome::Done | Outcome::Duplicate => {
                if matches!(outcome, Outcome::Duplicate) {
                    tracing::info!(queue = %self.spec.name, "duplicate delivery ignored");
                }
                d.acker.ack(BasicAckOptions::default()).await.context("ack")?;
            }
            Outcome::Retry(error) => {
                tracing::warn!(queue = %self.spec.name, %error, "handler failed; retrying later");
                d.acker.reject(BasicRejectOptions { requeue: false }).await.context("reject")?;
            }
            Outcome::DeadLetter(error) => {
                tracing::error!(queue = %self.spec.name, %error, "message dead-lettered");
                self.dead_letter(ch, &d, &error).await?;
                d.acker.ack(BasicAckOptions::default()).await.context("ack after dead-letter")?;
            }
        }
        Ok(())
    }

    /// Runs the handler with the inbox insert in one transaction. `Ok(false)` when the
    /// message was already applied.
    async fn apply(&self, msg: &Incoming) -> Result<bool, HandlerError> {
        if !self.handler.wants(msg) {
            return Ok(true);
        }
        let mut tx = self.pool.begin().await?;
        // Unqualified on purpose: the inbox of the service's own schema (its search_path).
        let inserted = sqlx::query!(
            "insert into inbox (message_id, message_type) values ($1, $2) on conflict do nothing",
            msg.message_id,
            msg.message_type
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        self.handler.handle(&mut tx, msg).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter(&self, ch: &lapin::Channel, d: &lapin::message::Delivery, error: &str) -> anyhow::Result<()> {
        let mut props = d.properties.clone();
        let mut headers = props.headers().clone().unwrap_or_default();
        headers
            .insert("x-last-error".into(), AMQPValue::LongString(error.chars().take(2_000).collect::<String>().into()));
        headers.insert("x-original-routing-key".into(), AMQPValue::LongString(d.routing_key.to_string().into()));
        props = props.with_headers(headers);
        let confirm = ch
            .basic_publish("", &self.spec.dead_letter_queue(), BasicPublishOptions::default(), &d.data, props)
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(_) => Ok(()),
            other => Err(anyhow::anyhow!("dead-letter publish not confirmed: {other:?}")),
        }
    }
}
