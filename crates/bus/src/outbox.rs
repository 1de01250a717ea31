//! The transactional outbox. [`enqueue`] writes an event in the caller's transaction; the
//! [`OutboxRelay`] publishes unpublished rows in order with publisher confirms and marks a
//! row published only after the broker confirmed it. A relay stopped or cut off mid-batch
//! leaves the unconfirmed rows unpublished, to be sent again (consumers de-duplicate by
//! message id); a rolled-back transaction leaves no row at all.
//!
//! A batch is two statements and no transaction: the relay claims its rows for [`CLAIM`]
//! (`claimed_until`, so another relay on the schema skips them), publishes them, and marks
//! the confirmed ones published. A relay that dies between the two leaves its claim to
//! lapse; the rows are then claimed and sent again.
//!
//! Waking: [`enqueue`] wakes the relays of its own process, which look a few milliseconds
//! later (by then the writer has usually committed; a later look or the poll covers one that
//! has not), and every relay polls. There is no `NOTIFY`: PostgreSQL serialises the commits
//! of notifying transactions database-wide (a lock held through the commit's flush), which
//! capped every service's event-writing transactions at one commit per fsync.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lapin::options::BasicPublishOptions;
use lapin::publisher_confirm::Confirmation;
use std::sync::{Arc, Mutex, Weak};

use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use contracts::Event;

use crate::message::{MessageMeta, Outgoing};
use crate::Broker;

/// Writes `event` into this schema's outbox inside the caller's transaction and returns its
/// message id. Nothing is published unless that transaction commits.
pub async fn enqueue<E: Event>(conn: &mut PgConnection, event: &E, meta: &MessageMeta) -> anyhow::Result<Uuid> {
    let row = OutboxRow::new(event, meta)?;
    // Unqualified on purpose: the outbox of the schema the caller's connection works in
    // (compile-checked against `bus_template.outbox`, see stack/sqlx.sh).
    sqlx::query!(
        "insert into outbox (message_id, message_type, routing_key, version, payload, request_id, traceparent)
         values ($1, $2, $3, $4, $5, $6, $7)",
        row.message_id,
        row.message_type,
        row.routing_key,
        row.version,
        row.payload,
        row.request_id,
        row.traceparent
    )
    .execute(conn)
    .await
    .context("writing outbox row")?;
    wake_relays();
    Ok(row.message_id)
}

/// One outbox row for a caller that writes it in a statement of its own, together with the
/// change it announces (one round trip fewer than [`enqueue`]): the outbox's columns. The
/// statement inserts into the schema's `outbox` (the same table [`enqueue`] writes); call
/// [`OutboxRow::written`] after it ran, so this process's relays look soon.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub message_id: Uuid,
    pub message_type: &'static str,
    /// The routing key when it is not the message type (`Event::routing_key`).
    pub routing_key: Option<&'static str>,
    pub version: i16,
    pub payload: serde_json::Value,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
}

impl OutboxRow {
    pub fn new<E: Event>(event: &E, meta: &MessageMeta) -> anyhow::Result<Self> {
        Ok(Self {
            message_id: Uuid::now_v7(),
            message_type: E::TYPE,
            routing_key: routed(event),
            version: i16::try_from(E::VERSION).context("message version out of range")?,
            payload: serde_json::to_value(event).context("serialising event")?,
            request_id: meta.request_id.clone(),
            traceparent: meta.traceparent.clone(),
        })
    }

    /// The row is in the caller's transaction: wake the relays.
    pub fn written(&self) {
        wake_relays();
    }
}

/// Events written together: [`OutboxBatch::push`] each, then [`OutboxBatch::write`] them
/// in the caller's transaction with one statement (a writer that commits many products'
/// changes at once announces them at once).
#[derive(Debug, Default)]
pub struct OutboxBatch {
    ids: Vec<Uuid>,
    types: Vec<&'static str>,
    routing_keys: Vec<Option<&'static str>>,
    versions: Vec<i16>,
    payloads: Vec<serde_json::Value>,
    request_ids: Vec<Option<String>>,
    traceparents: Vec<Option<String>>,
}

impl OutboxBatch {
    /// Adds `event`; its message id is the answer.
    pub fn push<E: Event>(&mut self, event: &E, meta: &MessageMeta) -> anyhow::Result<Uuid> {
        let message_id = Uuid::now_v7();
        self.payloads.push(serde_json::to_value(event).context("serialising event")?);
        self.ids.push(message_id);
        self.types.push(E::TYPE);
        self.routing_keys.push(routed(event));
        self.versions.push(i16::try_from(E::VERSION).context("message version out of range")?);
        self.request_ids.push(meta.request_id.clone());
        self.traceparents.push(meta.traceparent.clone());
        Ok(message_id)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Writes every pushed event, in the order pushed, inside the caller's transaction.
    pub async fn write(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let c = self.into_columns();
        // Unqualified, as in `enqueue`. `as _` on the arrays with nulls (see stock's batch).
        sqlx::query!(
            "insert into outbox (message_id, message_type, routing_key, version, payload, request_id, traceparent)
             select m, t, k, v, p, r, tp
               from unnest($1::uuid[], $2::text[], $7::text[], $3::int2[], $4::jsonb[], $5::text[], $6::text[])
                    with ordinality as e(m, t, k, v, p, r, tp, n)
              order by n",
            &c.ids,
            &c.types,
            &c.versions,
            &c.payloads,
            &c.request_ids as _,
            &c.traceparents as _,
            &c.routing_keys as _
        )
        .execute(conn)
        .await
        .context("writing outbox rows")?;
        c.written();
        Ok(())
    }

    /// The events as the columns of one insert, for a caller that writes them inside a
    /// statement of its own (stock's settlement does): that statement must insert them as
    /// [`OutboxBatch::write`] does, in the order given, and call [`OutboxColumns::written`]
    /// once it ran.
    pub fn into_columns(self) -> OutboxColumns {
        OutboxColumns {
            ids: self.ids,
            types: self.types.iter().map(|t| (*t).to_owned()).collect(),
            routing_keys: self.routing_keys.iter().map(|k| k.map(str::to_owned)).collect(),
            versions: self.versions,
            payloads: self.payloads,
            request_ids: self.request_ids,
            traceparents: self.traceparents,
        }
    }
}

/// An [`OutboxBatch`] as columns: see [`OutboxBatch::into_columns`].
#[derive(Debug, Default)]
pub struct OutboxColumns {
    pub ids: Vec<Uuid>,
    pub types: Vec<String>,
    pub routing_keys: Vec<Option<String>>,
    pub versions: Vec<i16>,
    pub payloads: Vec<serde_json::Value>,
    pub request_ids: Vec<Option<String>>,
    pub traceparents: Vec<Option<String>>,
}

impl OutboxColumns {
    /// The rows are in the caller's transaction: wake the relays.
    pub fn written(&self) {
        if !self.ids.is_empty() {
            wake_relays();
        }
    }
}

/// An event's routing key, when it is not its type (the outbox stores null for those).
fn routed<E: Event>(event: &E) -> Option<&'static str> {
    Some(event.routing_key()).filter(|k| *k != E::TYPE)
}

/// The relays running in this process.
static RELAYS: Mutex<Vec<Weak<Notify>>> = Mutex::new(Vec::new());

fn wake_relays() {
    let relays = RELAYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for relay in relays.iter().filter_map(Weak::upgrade) {
        relay.notify_one();
    }
}

fn register_relay() -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let mut relays = RELAYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    relays.retain(|r| r.strong_count() > 0);
    relays.push(Arc::downgrade(&wake));
    wake
}

/// How long a relay's claim on a batch keeps other relays off it: far longer than a batch's
/// confirms take; a batch still unconfirmed by then may be sent twice (consumers de-duplicate).
pub const CLAIM: Duration = Duration::from_secs(15);

/// After a wake, the relay looks this much later, then again at the next steps if it found
/// nothing (the writer had not committed yet), then falls back to its poll.
/// The first look waits long enough for a stream of sales, one at a time, to share a batch
/// (at ~100 a second, 20 ms carried 2-3 events per look, 50 ms ~5); nobody waits on an
/// event in that time.
const LOOKS_AFTER_WAKE: [Duration; 3] =
    [Duration::from_millis(50), Duration::from_millis(150), Duration::from_millis(400)];

struct Row {
    outbox_id: i64,
    message_id: Uuid,
    message_type: String,
    routing_key: Option<String>,
    version: i16,
    payload: serde_json::Value,
    request_id: Option<String>,
    traceparent: Option<String>,
    occurred_at: DateTime<Utc>,
}

/// Publishes the outbox of one schema. Run one per service process; several relays on one
/// schema are safe (each claims its batch, see the module docs).
pub struct OutboxRelay {
    pool: PgPool,
    broker: Broker,
    exchange: String,
    schema: String,
    batch_size: i64,
    poll_interval: Duration,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, broker: Broker, exchange: &str, schema: &str) -> Self {
        Self {
            pool,
            broker,
            exchange: exchange.to_owned(),
            schema: schema.to_owned(),
            batch_size: 100,
            poll_interval: Duration::from_millis(500),
        }
    }

    pub fn batch_size(mut self, n: i64) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Runs until `shutdown`; a batch in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let wake = register_relay();
        // Looks still due after the last wake (see LOOKS_AFTER_WAKE).
        let mut looks = LOOKS_AFTER_WAKE.iter();
        let mut channel = None;
        while !shutdown.is_cancelled() {
            if channel.as_ref().is_none_or(|c: &lapin::Channel| !c.status().connected()) {
                match self.broker.confirm_channel().await {
                    Ok(c) => match crate::topology::declare_exchange(&c, &self.exchange).await {
                        Ok(()) => channel = Some(c),
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(error = %format!("{e:#}"), "declaring the exchange failed");
                            sleep_or_stop(&shutdown, crate::broker::backoff(failures)).await;
                            continue;
                        }
                    },
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "outbox relay cannot reach the broker");
                        sleep_or_stop(&shutdown, crate::broker::backoff(failures)).await;
                        continue;
                    }
                }
            }
            let Some(ch) = channel.as_ref() else { continue };
            match self.publish_batch(ch).await {
                Ok(n) => {
                    failures = 0;
                    if n > 0 {
                        // The looks still due stay: a second writer that woke us while this
                        // batch ran may not have committed yet.
                        if usize::try_from(self.batch_size).is_ok_and(|b| n >= b) {
                            continue; // a full batch: more are waiting
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "outbox batch failed; will retry");
                    channel = None;
                    sleep_or_stop(&shutdown, crate::broker::backoff(failures)).await;
                    continue;
                }
            }
            // Wait for the next look after a wake, a new wake, or the poll.
            let wait = looks.next().copied().unwrap_or(self.poll_interval);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.notified() => {
                    looks = LOOKS_AFTER_WAKE.iter();
                    if let Some(first) = looks.next() {
                        sleep_or_stop(&shutdown, *first).await;
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(schema = %self.schema, "outbox relay stopped");
    }

    /// Claims a batch, publishes it, waits for the confirms, marks the confirmed rows.
    /// Returns how many rows were published.
    #[tracing::instrument(skip_all, fields(schema = %self.schema))]
    async fn publish_batch(&self, ch: &lapin::Channel) -> anyhow::Result<usize> {
        // The oldest unpublished rows no other relay holds, claimed in one statement.
        let mut rows = sqlx::query_as!(
            Row,
            "update outbox set claimed_until = now() + make_interval(secs => $2)
              where outbox_id in (
                  select outbox_id from outbox
                   where published_at is null and (claimed_until is null or claimed_until < now())
                   order by outbox_id limit $1 for update skip locked)
          returning outbox_id, message_id, message_type, routing_key, version, payload, request_id, traceparent,
                    occurred_at",
            self.batch_size,
            CLAIM.as_secs_f64()
        )
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        rows.sort_unstable_by_key(|r| r.outbox_id);
        let mut confirmed = Vec::with_capacity(rows.len());
        let mut failure = None;
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let out = Outgoing {
                message_id: row.message_id,
                message_type: row.message_type.clone(),
                version: u16::try_from(row.version).unwrap_or(1),
                occurred_at: row.occurred_at,
                meta: MessageMeta { request_id: row.request_id.clone(), traceparent: row.traceparent.clone() },
                body: serde_json::to_vec(&row.payload)?,
            };
            match ch
                .basic_publish(
                    &self.exchange,
                    row.routing_key.as_deref().unwrap_or(&row.message_type),
                    BasicPublishOptions::default(),
                    &out.body,
                    out.properties(),
                )
                .await
            {
                Ok(confirm) => pending.push((row.outbox_id, confirm)),
                Err(e) => {
                    failure = Some(anyhow::Error::new(e).context("publishing"));
                    break;
                }
            }
        }
        for (id, confirm) in pending {
            match confirm.await {
                Ok(Confirmation::Ack(_)) => confirmed.push(id),
                Ok(other) => {
                    failure.get_or_insert_with(|| anyhow::anyhow!("broker did not confirm: {other:?}"));
                }
                Err(e) => {
                    failure.get_or_insert_with(|| anyhow::Error::new(e).context("awaiting confirm"));
                }
            }
        }
        // Mark what the broker confirmed even when the rest failed, so only the
        // unconfirmed rows are sent again (their claim is let go at once).
        if !confirmed.is_empty() {
            sqlx::query!(
                "update outbox set published_at = now(), claimed_until = null, attempts = attempts + 1
                  where outbox_id = any($1)",
                &confirmed
            )
            .execute(&self.pool)
            .await?;
        }
        if let Some(e) = &failure {
            let unconfirmed: Vec<i64> = rows.iter().map(|r| r.outbox_id).filter(|id| !confirmed.contains(id)).collect();
            sqlx::query!(
                "update outbox set attempts = attempts + 1, last_error = $2, claimed_until = null
                  where outbox_id = any($1)",
                &unconfirmed,
                format!("{e:#}")
            )
            .execute(&self.pool)
            .await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(confirmed.len()),
        }
    }
}

pub(crate) async fn sleep_or_stop(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {},
        () = tokio::time::sleep(d) => {},
    }
}
