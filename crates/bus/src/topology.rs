//! Declares the exchange and a consumer's queues. Declarations are idempotent, so every
//! process declares what it uses at start (and again after a reconnect).
//!
//! For a consumer queue `q`:
//! - `q`: durable quorum queue bound to the exchange; a rejected message dead-letters to
//!   `q.retry`.
//! - `q.retry`: holds a message for `retry_delay` (queue TTL), then dead-letters it back to
//!   `q`. The broker's `x-death` header counts the rounds.
//! - `q.dlq`: where a message ends after `max_attempts`, kept for an operator to inspect and
//!   replay (`cashvio-admin` will grow a replay command).

use std::time::Duration;

use anyhow::Context;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

/// Quorum queues (replicated, the production choice) or classic queues (light; tests make
/// hundreds of queues and a single-node broker slows to a crawl with that many quorum ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    Quorum,
    Classic,
}

impl std::str::FromStr for QueueType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "quorum" => Ok(QueueType::Quorum),
            "classic" => Ok(QueueType::Classic),
            _ => Err("must be quorum or classic".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    pub queue_type: QueueType,
    /// Routing-key patterns on the events exchange (`sales.order.*`).
    pub bindings: Vec<String>,
    /// Deliveries before a failing message goes to the DLQ (first try included).
    pub max_attempts: u32,
    pub retry_delay: Duration,
    /// How long the consumer holds a delivery for more to handle with it in one transaction
    /// (zero: it takes what has arrived and goes). For queues whose effects nobody waits on
    /// (a projection), so that a moderate stream of messages shares transactions too.
    pub linger: Duration,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            name: name.into(),
            queue_type: QueueType::Quorum,
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            max_attempts: 5,
            retry_delay: Duration::from_secs(5),
            linger: Duration::ZERO,
        }
    }

    /// The spec whose consumer holds a delivery up to `linger` for others to join it.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }
    /// The queue type by its configured name (`AMQP_QUEUE_TYPE`); unknown names keep quorum.
    pub fn with_queue_type(mut self, name: &str) -> Self {
        self.queue_type = name.parse().unwrap_or(QueueType::Quorum);
        self
    }

    pub fn retry_queue(&self) -> String {
        format!("{}.retry", self.name)
    }
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.name)
    }
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v.to_owned()))
}

pub async fn declare_exchange(ch: &Channel, exchange: &str) -> anyhow::Result<()> {
    ch.exchange_declare(
        exchange,
        ExchangeKind::Topic,
        ExchangeDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("declaring exchange {exchange}"))
}

pub async fn declare_queue(ch: &Channel, exchange: &str, spec: &QueueSpec) -> anyhow::Result<()> {
    declare_exchange(ch, exchange).await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };

    let kind = match spec.queue_type {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    };
    let mut main = FieldTable::default();
    main.insert("x-queue-type".into(), s(kind));
    main.insert("x-dead-letter-exchange".into(), s(""));
    main.insert("x-dead-letter-routing-key".into(), s(&spec.retry_queue()));
    ch.queue_declare(&spec.name, durable, main).await.with_context(|| format!("declaring queue {}", spec.name))?;

    let mut retry = FieldTable::default();
    let ttl = i64::try_from(spec.retry_delay.as_millis()).unwrap_or(i64::MAX);
    retry.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    retry.insert("x-dead-letter-exchange".into(), s(""));
    retry.insert("x-dead-letter-routing-key".into(), s(&spec.name));
    ch.queue_declare(&spec.retry_queue(), durable, retry).await.context("declaring retry queue")?;

    let mut dlq = FieldTable::default();
    dlq.insert("x-queue-type".into(), s(kind));
    ch.queue_declare(&spec.dead_letter_queue(), durable, dlq).await.context("declaring dead-letter queue")?;

    for key in &spec.bindings {
        ch.queue_bind(&spec.name, exchange, key, QueueBindOptions::default(), FieldTable::default())
            .await
            .with_context(|| format!("binding {} to {key}", spec.name))?;
    }
    Ok(())
}
