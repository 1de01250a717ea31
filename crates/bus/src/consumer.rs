//! The consumer: each message is handled inside a database transaction that also inserts
//! its id into the service's `inbox` (messages that arrive together share one transaction);
//! the message is acked only after that commit. A
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

    /// Applies messages that arrived together (new ones, each once, in one transaction).
    /// By default one by one; a handler whose effect folds into one statement for many
    /// messages (a projection's counters) overrides it.
    async fn handle_all(&self, conn: &mut PgConnection, messages: &[&Incoming]) -> Result<(), HandlerError> {
        for message in messages {
            self.handle(conn, message).await?;
        }
        Ok(())
    }

    /// Whether the message has any effect here, judged from the message alone. `false`
    /// acks it without a transaction or an inbox row: with nothing to apply there is
    /// nothing to apply twice (the mailer and a sale that asked for no receipt).
    fn wants(&self, _message: &Incoming) -> bool {
        true
    }

    /// Whether applying the message twice has the effect of applying it once, judged from
    /// the message alone (a commit or release by reservation id, a restock keyed by its
    /// return). `true` runs the handler on a pooled connection without a transaction or an
    /// inbox row: a redelivery applies it again, harmlessly, and the three statements the
    /// inbox costs are saved on every sale.
    fn idempotent(&self, _message: &Incoming) -> bool {
        false
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
        // Whatever has arrived is taken together (up to the prefetch), after the spec's
        // linger if it has one: see `process_ready`. Chunks run concurrently, so a slow one
        // (a receipt rendered and uploaded) holds up nothing behind it; at low load and
        // without a linger every chunk is one message, as before batching.
        let deliveries = consumer.take_until(async move { stopped.cancelled().await });
        let size = usize::from(self.prefetch);
        let chunks = if self.spec.linger.is_zero() {
            deliveries.ready_chunks(size).boxed()
        } else {
            tokio_stream::StreamExt::chunks_timeout(deliveries, size, self.spec.linger).boxed()
        };
        chunks.for_each_concurrent(size, |ready| self.process_ready(&ch, ready)).await;
        if shutdown.is_cancelled() {
            let _ = ch.close(200, "shutdown").await;
            return Ok(());
        }
        Err(anyhow::anyhow!("consumer stream ended (connection or channel closed)"))
    }

    /// The deliveries that arrived together. Those that need the inbox are applied in one
    /// transaction with one inbox statement (under load that is most of them, and the
    /// transaction's BEGIN, inbox insert and COMMIT are paid once per handful of messages,
    /// not once per message); if any of them fails, the transaction is rolled back and each
    /// is applied on its own, as it would have been alone, so one bad message cannot hold up
    /// or re-run the others. The rest (idempotent, unwanted or unreadable) are processed
    /// one by one at the same time.
    async fn process_ready(&self, ch: &lapin::Channel, ready: Vec<lapin::Result<lapin::message::Delivery>>) {
        let mut together = Vec::new();
        let mut alone = Vec::new();
        for delivery in ready {
            match delivery {
                Err(e) => tracing::warn!(queue = %self.spec.name, error = %e, "consumer stream error"),
                Ok(d) => match Incoming::from_delivery(&d, &self.spec.name) {
                    Ok(msg) if self.handler.wants(&msg) && !self.handler.idempotent(&msg) => together.push((d, msg)),
                    _ => alone.push(d),
                },
            }
        }
        let settle = |result: anyhow::Result<()>| {
            if let Err(e) = result {
                tracing::warn!(queue = %self.spec.name, error = %format!("{e:#}"), "delivery not settled");
            }
        };
        let alone = futures::future::join_all(alone.into_iter().map(|d| async { settle(self.process(ch, d).await) }));
        let together = async {
            if together.len() > 1 {
                let msgs: Vec<&Incoming> = together.iter().map(|(_, m)| m).collect();
                match self.apply_together(&msgs).await {
                    Ok(fresh) => {
                        for ((d, _), fresh) in together.iter().zip(fresh) {
                            if !fresh {
                                tracing::info!(queue = %self.spec.name, "duplicate delivery ignored");
                            }
                            settle(d.acker.ack(BasicAckOptions::default()).await.context("ack"));
                        }
                        return;
                    }
                    Err(e) => tracing::info!(queue = %self.spec.name, error = %e, count = together.len(),
                        "a message of a batch failed; applying each on its own"),
                }
            }
            for (d, _) in together {
                settle(self.process(ch, d).await);
            }
        };
        futures::future::join(alone, together).await;
    }

    /// Applies `msgs` (all wanted, none idempotent) in one transaction with one inbox insert.
    /// Answers, per message, whether it was new (`false`: already applied).
    async fn apply_together(&self, msgs: &[&Incoming]) -> Result<Vec<bool>, HandlerError> {
        // In id order, so two transactions inserting overlapping ids (redeliveries reaching
        // two instances) take the index entries' locks in the same order.
        let mut keys: Vec<(uuid::Uuid, &str)> = msgs.iter().map(|m| (m.message_id, m.message_type.as_str())).collect();
        keys.sort_unstable();
        let ids: Vec<uuid::Uuid> = keys.iter().map(|(id, _)| *id).collect();
        let types: Vec<String> = keys.iter().map(|(_, t)| (*t).to_owned()).collect();
        let mut tx = self.pool.begin().await?;
        // Unqualified on purpose, as in `apply`.
        let mut fresh: std::collections::HashSet<uuid::Uuid> = sqlx::query_scalar!(
            "insert into inbox (message_id, message_type) select * from unnest($1::uuid[], $2::text[])
             on conflict do nothing returning message_id",
            &ids,
            &types
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut answers = Vec::with_capacity(msgs.len());
        let mut new_ones = Vec::with_capacity(msgs.len());
        for msg in msgs {
            // `remove`: a message delivered twice in one batch is applied once.
            let new = fresh.remove(&msg.message_id);
            if new {
                new_ones.push(*msg);
            }
            answers.push(new);
        }
        let span = tracing::info_span!("messages", queue = %self.spec.name, count = new_ones.len());
        self.handler.handle_all(&mut tx, &new_ones).instrument(span).await?;
        tx.commit().await?;
        Ok(answers)
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
        if self.handler.idempotent(msg) {
            let mut conn = self.pool.acquire().await?;
            self.handler.handle(&mut conn, msg).await?;
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
