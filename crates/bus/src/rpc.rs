//! Request/reply over RabbitMQ's direct reply-to: the caller publishes to the server's
//! queue with `reply_to = amq.rabbitmq.reply-to` and a correlation id, and bounds its wait.
//! A request that nobody takes within the timeout expires in the queue (per-message TTL),
//! so a late server never acts on a request its caller has given up on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use contracts::Rpc;

use crate::message::{Incoming, MessageMeta, Outgoing};
use crate::Broker;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// A business failure the server reports to the caller (not a transport failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcFault {
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Fault(#[from] RpcFault),
    #[error("broker: {0:#}")]
    Broker(anyhow::Error),
    #[error("reply could not be decoded: {0}")]
    Decode(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(serde_json::Value),
    Err(RpcFault),
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>;

struct ReplyChannel {
    channel: lapin::Channel,
}

/// The calling side. One per process; calls may run concurrently.
#[derive(Clone)]
pub struct RpcClient {
    broker: Broker,
    pending: Pending,
    channel: Arc<Mutex<Option<ReplyChannel>>>,
}

impl RpcClient {
    pub fn new(broker: Broker) -> Self {
        Self { broker, pending: Arc::default(), channel: Arc::default() }
    }

    /// Sends `request` to its queue and waits at most `timeout` for the reply.
    pub async fn call<R: Rpc>(&self, request: &R, meta: &MessageMeta, timeout: Duration) -> Result<R::Reply, RpcError> {
        self.call_to(R::QUEUE, request, meta, timeout).await
    }

    /// [`RpcClient::call`] to a queue of the deployment's choosing (a test's own, a shard).
    pub async fn call_to<R: Rpc>(
        &self,
        queue: &str,
        request: &R,
        meta: &MessageMeta,
        timeout: Duration,
    ) -> Result<R::Reply, RpcError> {
        let body = serde_json::to_vec(request).map_err(|e| RpcError::Decode(e.to_string()))?;
        let raw = self.call_raw(queue, R::TYPE, body, meta, timeout).await?;
        match serde_json::from_slice::<Reply>(&raw).map_err(|e| RpcError::Decode(e.to_string()))? {
            Reply::Ok(v) => serde_json::from_value(v).map_err(|e| RpcError::Decode(e.to_string())),
            Reply::Err(f) => Err(RpcError::Fault(f)),
        }
    }

    /// The untyped call: raw request bytes in, raw reply envelope out.
    pub async fn call_raw(
        &self,
        queue: &str,
        message_type: &str,
        body: Vec<u8>,
        meta: &MessageMeta,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let correlation_id = Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(correlation_id.clone(), tx);
        let sent = self.publish(queue, message_type, body, meta, &correlation_id, timeout).await;
        if let Err(e) = sent {
            self.pending.lock().await.remove(&correlation_id);
            return Err(RpcError::Broker(e));
        }
        let outcome = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().await.remove(&correlation_id);
        match outcome {
            Ok(Ok(bytes)) => Ok(bytes),
            // The reply consumer died with the connection; the caller sees a timeout-like
            // failure it treats as "not done".
            Ok(Err(_)) => Err(RpcError::Broker(anyhow::anyhow!("reply channel closed"))),
            Err(_) => Err(RpcError::Timeout(timeout)),
        }
    }

    async fn publish(
        &self,
        queue: &str,
        message_type: &str,
        body: Vec<u8>,
        meta: &MessageMeta,
        correlation_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let mut slot = self.channel.lock().await;
        if slot.as_ref().is_none_or(|c| !c.channel.status().connected()) {
            *slot = Some(self.open_reply_channel().await?);
        }
        let ch = &slot.as_ref().context("reply channel")?.channel;
        let out = Outgoing {
            message_id: Uuid::now_v7(),
            message_type: message_type.to_owned(),
            version: 1,
            occurred_at: chrono::Utc::now(),
            meta: meta.clone(),
            body,
        };
        let expiration = timeout.as_millis().max(1).to_string();
        let props = out
            .properties()
            .with_delivery_mode(1) // a request is worthless after its timeout: no disk
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(correlation_id.into())
            .with_expiration(expiration.into());
        ch.basic_publish("", queue, BasicPublishOptions::default(), &out.body, props)
            .await
            .context("publishing request")?;
        Ok(())
    }

    /// Direct reply-to needs the consumer on the same channel as the publishes.
    async fn open_reply_channel(&self) -> anyhow::Result<ReplyChannel> {
        let channel = self.broker.channel().await?;
        let mut replies = channel
            .basic_consume(
                REPLY_TO,
                "",
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .context("consuming direct reply-to")?;
        let pending = self.pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let Some(id) = d.properties.correlation_id().as_ref().map(ShortString::to_string) else { continue };
                if let Some(tx) = pending.lock().await.remove(&id) {
                    let _ = tx.send(d.data);
                }
            }
        });
        Ok(ReplyChannel { channel })
    }
}

/// Turns a single-active consumer's activity off when dropped.
struct Inactive<'a>(&'a watch::Sender<bool>);

impl Drop for Inactive<'_> {
    fn drop(&mut self) {
        self.0.send_if_modified(|a| std::mem::replace(a, false));
    }
}

/// The serving side of one request type family.
#[async_trait::async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// Answers one request; the message type tells which kind it is.
    async fn handle(&self, request: &Incoming) -> Result<serde_json::Value, RpcFault>;
}

pub struct RpcServer {
    broker: Broker,
    queue: String,
    prefetch: u16,
    handler: Arc<dyn RpcHandler>,
    single_active: Option<watch::Sender<bool>>,
    step_down: Option<Arc<Notify>>,
}

impl RpcServer {
    pub fn new(broker: Broker, queue: &str, handler: Arc<dyn RpcHandler>) -> Self {
        Self { broker, queue: queue.to_owned(), prefetch: 64, handler, single_active: None, step_down: None }
    }

    pub fn prefetch(mut self, n: u16) -> Self {
        self.prefetch = n.max(1);
        self
    }

    /// Serves the queue as RabbitMQ's single active consumer: of every process serving it,
    /// exactly one receives at a time, and the broker hands the queue to the next when that
    /// one's channel closes (its process died, its connection dropped). `active` tells this
    /// process's part: true from the first delivery (only the active consumer gets any),
    /// false as soon as this consumer ends. The broker does not announce activation itself,
    /// so a consumer that became active but has received nothing yet still reads false.
    pub fn single_active(mut self, active: watch::Sender<bool>) -> Self {
        self.single_active = Some(active);
        self
    }

    /// A single active consumer that `step_down` notifies (while it serves: no permit is
    /// kept) lets the queue go: it stops taking deliveries, answers those in hand, only then
    /// reads inactive and closes its channel (the broker hands the queue to the next consumer
    /// and requeues what this one had not taken), and subscribes again, at the back of the
    /// line.
    pub fn step_down_on(mut self, step_down: Arc<Notify>) -> Self {
        self.step_down = Some(step_down);
        self
    }

    pub async fn run(self, shutdown: CancellationToken) {
        crate::broker::reconnecting("rpc server", &self.queue, &shutdown, || self.serve(&shutdown)).await;
    }

    async fn serve(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let ch = self.broker.channel().await?;
        let mut args = FieldTable::default();
        if self.single_active.is_some() {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        ch.queue_declare(&self.queue, QueueDeclareOptions { durable: true, ..Default::default() }, args)
            .await
            .context("declaring rpc queue")?;
        ch.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        let consumer = ch.basic_consume(&self.queue, "", BasicConsumeOptions::default(), FieldTable::default()).await?;
        // Whatever ends this consumer (an error, the stream, shutdown) ends its activity: at
        // once, not after the requests in flight are answered (the broker may already be
        // delivering to the next consumer), and for good when this function returns.
        let _inactive_after = self.single_active.as_ref().map(Inactive);
        let inactive = || {
            if let Some(active) = &self.single_active {
                active.send_if_modified(|a| std::mem::replace(a, false));
            }
        };
        // Held until the deliveries in hand are answered: dropping the last copy cancels the
        // consumer, and the broker would hand the queue on while they still run.
        let keep = consumer.clone();
        let stopped = shutdown.clone();
        let stepped_down = std::sync::atomic::AtomicBool::new(false);
        let step_down = self.step_down.clone();
        let stepping_down = &stepped_down;
        let until = async move {
            match step_down {
                Some(n) => tokio::select! {
                    () = stopped.cancelled() => {}
                    () = n.notified() => stepping_down.store(true, std::sync::atomic::Ordering::SeqCst),
                },
                None => stopped.cancelled().await,
            }
        };
        consumer
            .take_until(until)
            .map(Some)
            .chain(futures::stream::once(async { None }))
            .for_each_concurrent(usize::from(self.prefetch), |delivery| {
                let ch = &ch;
                async move {
                    let Some(Ok(d)) = delivery else {
                        // Stepping down, this consumer stays active until what it holds is
                        // answered (below); otherwise its activity ends now.
                        if !stepping_down.load(std::sync::atomic::Ordering::SeqCst) {
                            inactive();
                        }
                        return;
                    };
                    if let Some(active) = &self.single_active {
                        active.send_if_modified(|a| !std::mem::replace(a, true));
                    }
                    if let Err(e) = self.answer(ch, &d).await {
                        tracing::warn!(queue = %self.queue, error = %format!("{e:#}"), "rpc reply failed");
                    }
                    let _ = d.acker.ack(BasicAckOptions::default()).await;
                }
            })
            .await;
        if shutdown.is_cancelled() {
            let _ = ch.close(200, "shutdown").await;
            return Ok(());
        }
        if stepped_down.load(std::sync::atomic::Ordering::SeqCst) {
            // Answered everything in hand: the activity ends, then the channel closes (the
            // broker hands the queue on and requeues what this consumer had not taken).
            inactive();
            drop(keep);
            ch.close(200, "stepping down").await.context("closing the channel to step down")?;
            tracing::info!(queue = %self.queue, "stepped down as the queue's active consumer");
            return Ok(());
        }
        Err(anyhow::anyhow!("rpc consumer stream ended"))
    }

    async fn answer(&self, ch: &lapin::Channel, d: &lapin::message::Delivery) -> anyhow::Result<()> {
        let reply = match Incoming::from_delivery(d, &self.queue) {
            Ok(req) => match self.handler.handle(&req).await {
                Ok(v) => Reply::Ok(v),
                Err(f) => Reply::Err(f),
            },
            Err(e) => Reply::Err(RpcFault { code: "MALFORMED_REQUEST".into(), message: e.to_string() }),
        };
        let (Some(reply_to), Some(correlation_id)) = (d.properties.reply_to(), d.properties.correlation_id()) else {
            anyhow::bail!("request without reply_to or correlation_id");
        };
        let body = serde_json::to_vec(&reply)?;
        let props = BasicProperties::default()
            .with_correlation_id(correlation_id.clone())
            .with_content_type("application/json".into());
        ch.basic_publish("", reply_to.as_str(), BasicPublishOptions::default(), &body, props).await?;
        Ok(())
    }
}
