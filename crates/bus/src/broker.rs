//! The process's broker connection, re-established on demand: callers ask for a channel
//! and get one from a live connection; after a drop the next ask reconnects.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use platform::config::Secret;

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    url: Secret,
    name: String,
    connection: Mutex<Option<Arc<Connection>>>,
}

impl Broker {
    /// `name` becomes the connection name in the broker's management (one per process),
    /// so operators (and tests) can find and close it.
    pub fn new(url: &Secret, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.clone(),
                name: format!("{name}-{}", uuid::Uuid::new_v4().simple()),
                connection: Mutex::new(None),
            }),
        }
    }

    pub fn connection_name(&self) -> &str {
        &self.inner.name
    }

    /// A connected connection, reconnecting if the last one is gone.
    pub async fn connection(&self) -> anyhow::Result<Arc<Connection>> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.status().connected() {
                return Ok(conn.clone());
            }
        }
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
            .with_connection_name(self.inner.name.clone().into());
        let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(self.inner.url.expose(), props))
            .await
            .context("connecting to the broker timed out")?
            .context("connecting to the broker")?;
        tracing::info!(connection = %self.inner.name, "connected to the broker");
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let conn = self.connection().await?;
        conn.create_channel().await.context("opening a channel")
    }

    /// A channel in publisher-confirm mode.
    pub async fn confirm_channel(&self) -> anyhow::Result<Channel> {
        let ch = self.channel().await?;
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.context("confirm.select")?;
        Ok(ch)
    }

    /// How many consumers `queue` has now (a passive declare on a channel of its own: a
    /// queue that does not exist is an error).
    pub async fn consumers(&self, queue: &str) -> anyhow::Result<u32> {
        let ch = self.channel().await?;
        let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        let q = ch
            .queue_declare(queue, passive, lapin::types::FieldTable::default())
            .await
            .with_context(|| format!("looking at {queue}"))?;
        let _ = ch.close(200, "looked").await;
        Ok(q.consumer_count())
    }

    /// Readiness: a live connection exists or can be made now.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.connection().await.map(|_| ())
    }

    /// Closes the connection (graceful shutdown, after consumers and the relay stopped).
    pub async fn close(&self) {
        if let Some(conn) = self.inner.connection.lock().await.take() {
            let _ = conn.close(200, "shutdown").await;
        }
    }
}

/// Backoff between reconnect attempts: 100 ms doubling to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.min(6));
    Duration::from_millis(ms.min(5_000))
}

/// The one reconnect loop of every long-lived broker session (event consumers, RPC servers):
/// runs `session` until `shutdown`; when it fails (connection or channel lost) logs why and
/// runs it again after a growing backoff. `session` returns `Ok` on shutdown (or when an RPC
/// server stepped down: it subscribes again after the shortest pause).
pub(crate) async fn reconnecting<F, Fut>(
    what: &str,
    queue: &str,
    shutdown: &tokio_util::sync::CancellationToken,
    mut session: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match session().await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(%queue, error = %format!("{e:#}"), "{what} interrupted; reconnecting");
            }
        }
        if !shutdown.is_cancelled() {
            crate::outbox::sleep_or_stop(shutdown, backoff(failures)).await;
        }
    }
    tracing::info!(%queue, "{what} stopped");
}
