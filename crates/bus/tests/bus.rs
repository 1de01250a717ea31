//! The bus against the real RabbitMQ and PostgreSQL: the outbox publishes committed events
//! only, exactly once through stops and dropped connections; the inbox gives a redelivered
//! message one effect; failing messages end in the DLQ; RPC times out cleanly.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use bus::message::{MessageMeta, Outgoing};
use bus::{
    Broker, Consumer, Handler, HandlerError, Incoming, OutboxRelay, QueueSpec, RpcClient, RpcError, RpcFault,
    RpcHandler, RpcServer,
};
use testkit::TestDb;

#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    n: u32,
}
impl contracts::Event for Ping {
    const TYPE: &'static str = "test.ping.sent";
    const VERSION: u16 = 1;
}

struct Ctx {
    db: TestDb,
    pool: PgPool,
    broker: Broker,
    exchange: String,
}

async fn ctx() -> Ctx {
    let db = TestDb::new().await.expect("test database");
    // Effects of the test handlers live in the service's own schema, as a real table would.
    sqlx::query("create table stock.test_effects (message_id uuid not null, n int not null)")
        .execute(&db.admin)
        .await
        .unwrap();
    let pool = db.service_pool("cashvio_stock", "stock").unwrap();
    let broker = Broker::new(&testkit::amqp_url(), "bus-test");
    Ctx { db, pool, broker, exchange: format!("{}.events", testkit::unique("test")) }
}

async fn enqueue(pool: &PgPool, n: u32, commit: bool) -> Uuid {
    let mut tx = pool.begin().await.unwrap();
    let id =
        bus::enqueue(&mut tx, &Ping { n }, &MessageMeta { request_id: Some(format!("req-{n}")), traceparent: None })
            .await
            .unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    id
}

/// (message id, request id) of each message seen.
type Seen = Vec<(Uuid, Option<String>)>;

/// Watches everything published on the exchange, on its own connection.
struct Observer {
    seen: Arc<Mutex<Seen>>,
    _broker: Broker,
}

impl Observer {
    async fn start(exchange: &str) -> Self {
        let broker = Broker::new(&testkit::amqp_url(), "bus-test-observer");
        let ch = broker.channel().await.unwrap();
        bus::topology::declare_exchange(&ch, exchange).await.unwrap();
        let q = ch
            .queue_declare(
                "",
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        ch.queue_bind(q.name().as_str(), exchange, "#", QueueBindOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let mut consumer = ch
            .basic_consume(
                q.name().as_str(),
                "",
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(async move {
            let _keep = ch;
            while let Some(Ok(d)) = consumer.next().await {
                let m = Incoming::from_delivery(&d, "observer").unwrap();
                s.lock().await.push((m.message_id, m.meta.request_id));
            }
        });
        Self { seen, _broker: broker }
    }

    async fn count(&self) -> usize {
        self.seen.lock().await.len()
    }

    /// Waits until `n` different messages arrived (a re-sent duplicate must not count as the
    /// one still missing).
    async fn wait_for_distinct(&self, n: usize, within: Duration) -> Vec<(Uuid, Option<String>)> {
        let start = Instant::now();
        loop {
            let seen = self.seen.lock().await.clone();
            if counts(&seen).len() >= n || start.elapsed() >= within {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<(Uuid, Option<String>)> {
        let start = Instant::now();
        while self.count().await < n && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.seen.lock().await.clone()
    }
}

fn spawn_relay(c: &Ctx, batch: i64) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let relay = OutboxRelay::new(c.pool.clone(), c.broker.clone(), &c.exchange, "stock").batch_size(batch);
    let handle = tokio::spawn(relay.run(stop.clone()));
    (stop, handle)
}

async fn unpublished(c: &Ctx) -> i64 {
    sqlx::query_scalar("select count(*) from stock.outbox where published_at is null")
        .fetch_one(&c.db.admin)
        .await
        .unwrap()
}

fn counts(seen: &[(Uuid, Option<String>)]) -> HashMap<Uuid, usize> {
    let mut m = HashMap::new();
    for (id, _) in seen {
        *m.entry(*id).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn rolled_back_event_is_never_published_committed_one_is() {
    let c = ctx().await;
    let obs = Observer::start(&c.exchange).await;
    let rolled_back = enqueue(&c.pool, 1, false).await;
    let committed = enqueue(&c.pool, 2, true).await;
    let (stop, handle) = spawn_relay(&c, 10);

    let seen = obs.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // room for a wrong second publish
    let seen_after = obs.seen.lock().await.clone();
    stop.cancel();
    handle.await.unwrap();

    assert_eq!(seen.first().map(|s| s.0), Some(committed));
    assert_eq!(seen_after.len(), 1, "exactly one message published: {seen_after:?}");
    assert!(!seen_after.iter().any(|(id, _)| *id == rolled_back));
    assert_eq!(seen_after[0].1.as_deref(), Some("req-2"), "request id travels in the headers");
    let rows: i64 = sqlx::query_scalar("select count(*) from stock.outbox").fetch_one(&c.db.admin).await.unwrap();
    assert_eq!(rows, 1, "the rolled-back row never existed");
    assert_eq!(unpublished(&c).await, 0);
}

#[tokio::test]
async fn relay_stopped_and_restarted_midway_publishes_each_event_exactly_once() {
    let c = ctx().await;
    let obs = Observer::start(&c.exchange).await;
    const N: usize = 600;
    let mut tx = c.pool.begin().await.unwrap();
    for n in 0..N {
        bus::enqueue(&mut tx, &Ping { n: u32::try_from(n).unwrap() }, &MessageMeta::default()).await.unwrap();
    }
    tx.commit().await.unwrap();

    // Batches of one keep the relay busy long enough to stop it part-way.
    let (stop, handle) = spawn_relay(&c, 1);
    obs.wait_for(30, Duration::from_secs(10)).await;
    stop.cancel();
    handle.await.unwrap();
    let left = unpublished(&c).await;
    assert!(left > 0, "the relay was stopped mid-way (nothing left means the test did not test a stop)");

    let (stop, handle) = spawn_relay(&c, 50);
    obs.wait_for(N, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // room for a wrong second publish
    stop.cancel();
    handle.await.unwrap();
    let seen = obs.seen.lock().await.clone();
    let per_id = counts(&seen);
    assert_eq!(per_id.len(), N, "every committed event was published");
    assert!(per_id.values().all(|&n| n == 1), "no event published twice after a graceful stop");
    assert_eq!(unpublished(&c).await, 0);
}

/// Rows a relay claimed and never marked (it died between its two statements) are left to
/// it until the claim lapses, while the rows nobody holds go at once; then they go, once.
#[tokio::test]
async fn rows_claimed_by_a_relay_that_died_go_once_its_claim_lapses() {
    let c = ctx().await;
    let obs = Observer::start(&c.exchange).await;
    let held = enqueue(&c.pool, 1, true).await;
    // What the dead relay's claim left: the row held for 2 s from now.
    sqlx::query("update stock.outbox set claimed_until = now() + interval '2 seconds' where message_id = $1")
        .bind(held)
        .execute(&c.db.admin)
        .await
        .unwrap();
    let free = enqueue(&c.pool, 2, true).await;
    let claimed_at = Instant::now();
    let (stop, handle) = spawn_relay(&c, 10);

    let first = obs.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(first.iter().map(|s| s.0).collect::<Vec<_>>(), vec![free], "the free row goes, the held one waits");
    let seen = obs.wait_for(2, Duration::from_secs(10)).await;
    assert!(claimed_at.elapsed() >= Duration::from_millis(1_500), "the held row waited for its claim to lapse");
    tokio::time::sleep(Duration::from_millis(700)).await; // a poll's room for a wrong second publish
    let seen_after = obs.seen.lock().await.clone();
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![free, held]);
    assert_eq!(seen_after.len(), 2, "each row published once: {seen_after:?}");
    assert_eq!(unpublished(&c).await, 0);
    let claims: i64 = sqlx::query_scalar("select count(*) from stock.outbox where claimed_until is not null")
        .fetch_one(&c.db.admin)
        .await
        .unwrap();
    assert_eq!(claims, 0, "a published row keeps no claim");
}

/// Records each message's effect in `stock.test_effects`, in the inbox transaction.
struct RecordEffect {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Handler for RecordEffect {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ping: Ping = msg.event()?;
        sqlx::query("insert into test_effects (message_id, n) values ($1, $2)")
            .bind(msg.message_id)
            .bind(i32::try_from(ping.n).unwrap_or(-1))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Closes a connection from the broker's side, as an operator or a broker restart would.
async fn close_broker_connection(name: &str) {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q"])
        .output()
        .await
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    // One line per connection: `<pid>\t[{...client properties with connection_name...}]`;
    // our connection names are unique, so a plain search is enough.
    let pid = listing
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("connection {name} not found in {listing}"))
        .to_owned();
    let status = tokio::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pid, "closed by the bus test", "-q"])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn dropped_broker_connection_loses_nothing_and_effects_happen_once() {
    let c = ctx().await;
    let obs = Observer::start(&c.exchange).await;
    let spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"]).with_queue_type("classic");
    let handler = Arc::new(RecordEffect { calls: AtomicUsize::new(0) });
    // The consumer has its own connection, so the close below cuts only the relay.
    let consumer_broker = Broker::new(&testkit::amqp_url(), "bus-test-consumer");
    let consumer = Consumer::new(c.pool.clone(), consumer_broker.clone(), &c.exchange, spec.clone(), handler.clone());
    consumer.declare().await.unwrap();
    let consumer_stop = CancellationToken::new();
    let consumer_task = tokio::spawn(consumer.run(consumer_stop.clone()));

    const N: usize = 2_000; // enough that the relay is still busy when rabbitmqctl closes it
    let mut tx = c.pool.begin().await.unwrap();
    for n in 0..N {
        bus::enqueue(&mut tx, &Ping { n: u32::try_from(n).unwrap() }, &MessageMeta::default()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (stop, handle) = spawn_relay(&c, 1);
    obs.wait_for(40, Duration::from_secs(10)).await;
    close_broker_connection(c.broker.connection_name()).await;
    assert!(unpublished(&c).await > 0, "the connection was dropped mid-way");

    let seen = obs.wait_for_distinct(N, Duration::from_secs(60)).await;
    let per_id = counts(&seen);
    assert_eq!(per_id.len(), N, "every committed event was published after reconnecting");
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    // Only a message whose confirm was in flight when the connection died can be sent
    // twice (at most one batch); the inbox absorbs it.
    assert!(duplicates <= 1, "at most the one in-flight message is re-sent, got {duplicates}");

    let start = Instant::now();
    loop {
        let effects: i64 =
            sqlx::query_scalar("select count(*) from stock.test_effects").fetch_one(&c.db.admin).await.unwrap();
        if usize::try_from(effects).unwrap() >= N || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (effects, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct message_id) from stock.test_effects")
            .fetch_one(&c.db.admin)
            .await
            .unwrap();
    assert_eq!((effects, distinct), (N as i64, N as i64), "each event had exactly one effect");
    stop.cancel();
    handle.await.unwrap();
    consumer_stop.cancel();
    consumer_task.await.unwrap();
    delete_queues(&spec).await;
}

async fn publish_raw(broker: &Broker, exchange: &str, id: Uuid, n: u32) {
    publish_body(broker, exchange, id, 1, serde_json::to_vec(&Ping { n }).unwrap()).await;
}

/// Publishes a `test.ping.sent` of any version with any body, as another producer might.
async fn publish_body(broker: &Broker, exchange: &str, id: Uuid, version: u16, body: Vec<u8>) {
    let ch = broker.confirm_channel().await.unwrap();
    let out = Outgoing {
        message_id: id,
        message_type: "test.ping.sent".into(),
        version,
        occurred_at: chrono::Utc::now(),
        meta: MessageMeta::default(),
        body,
    };
    ch.basic_publish(exchange, "test.ping.sent", BasicPublishOptions::default(), &out.body, out.properties())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn delete_queues(spec: &QueueSpec) {
    let broker = Broker::new(&testkit::amqp_url(), "bus-test-cleanup");
    let ch = broker.channel().await.unwrap();
    for q in [spec.name.clone(), spec.retry_queue(), spec.dead_letter_queue()] {
        let _ = ch.queue_delete(&q, QueueDeleteOptions::default()).await;
    }
    broker.close().await;
}

#[tokio::test]
async fn a_message_delivered_twice_has_one_effect() {
    let c = ctx().await;
    let spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"]).with_queue_type("classic");
    let handler = Arc::new(RecordEffect { calls: AtomicUsize::new(0) });
    let consumer = Consumer::new(c.pool.clone(), c.broker.clone(), &c.exchange, spec.clone(), handler.clone());
    consumer.declare().await.unwrap();
    let id = Uuid::now_v7();
    publish_raw(&c.broker, &c.exchange, id, 7).await;
    publish_raw(&c.broker, &c.exchange, id, 7).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));

    let start = Instant::now();
    while handler.calls.load(Ordering::SeqCst) < 1 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let the second delivery arrive
    stop.cancel();
    task.await.unwrap();

    let effects: i64 = sqlx::query_scalar("select count(*) from stock.test_effects where message_id = $1")
        .bind(id)
        .fetch_one(&c.db.admin)
        .await
        .unwrap();
    assert_eq!(effects, 1, "two deliveries, one effect");
    let inbox: i64 = sqlx::query_scalar("select count(*) from stock.inbox").fetch_one(&c.db.admin).await.unwrap();
    assert_eq!(inbox, 1);
    // Both deliveries were settled: nothing left in the queue.
    let ch = c.broker.channel().await.unwrap();
    let left = ch.basic_get(&spec.name, BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(left.is_none(), "the duplicate was acked, not left behind");
    delete_queues(&spec).await;
}

struct AlwaysFails {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Handler for AlwaysFails {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // A write that must be rolled back with the failure.
        sqlx::query("insert into test_effects (message_id, n) values ($1, 0)")
            .bind(msg.message_id)
            .execute(conn)
            .await?;
        Err(HandlerError::Transient(anyhow::anyhow!("downstream is down")))
    }
}

#[tokio::test]
async fn an_always_failing_message_ends_in_the_dlq_after_the_configured_attempts() {
    let c = ctx().await;
    let mut spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"]).with_queue_type("classic");
    spec.max_attempts = 3;
    spec.retry_delay = Duration::from_millis(200);
    let handler = Arc::new(AlwaysFails { calls: AtomicUsize::new(0) });
    let consumer = Consumer::new(c.pool.clone(), c.broker.clone(), &c.exchange, spec.clone(), handler.clone());
    consumer.declare().await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));
    let id = Uuid::now_v7();
    publish_raw(&c.broker, &c.exchange, id, 1).await;

    let dead = first_dead_letter(&c.broker, &spec, "message never reached the DLQ").await;
    tokio::time::sleep(Duration::from_millis(500)).await; // no further attempt may follow
    stop.cancel();
    task.await.unwrap();

    assert_eq!(handler.calls.load(Ordering::SeqCst), 3, "tried exactly max_attempts times");
    assert_eq!(dead.delivery.properties.message_id().as_ref().map(|s| s.to_string()), Some(id.to_string()));
    let headers = dead.delivery.properties.headers().clone().unwrap_or_default();
    match headers.inner().get("x-last-error") {
        Some(AMQPValue::LongString(s)) => assert!(String::from_utf8_lossy(s.as_bytes()).contains("downstream is down")),
        other => panic!("x-last-error missing: {other:?}"),
    }
    let effects: i64 =
        sqlx::query_scalar("select count(*) from stock.test_effects").fetch_one(&c.db.admin).await.unwrap();
    let inbox: i64 = sqlx::query_scalar("select count(*) from stock.inbox").fetch_one(&c.db.admin).await.unwrap();
    assert_eq!((effects, inbox), (0, 0), "failed attempts leave no effect and no inbox row");
    delete_queues(&spec).await;
}

/// Records each message's effect, and refuses (after writing, so the write must roll back)
/// the message with `n == 13`.
struct RefusesThirteen;

#[async_trait::async_trait]
impl Handler for RefusesThirteen {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        let ping: Ping = msg.event()?;
        sqlx::query("insert into test_effects (message_id, n) values ($1, $2)")
            .bind(msg.message_id)
            .bind(i32::try_from(ping.n).unwrap_or(-1))
            .execute(conn)
            .await?;
        if ping.n == 13 {
            return Err(HandlerError::Permanent(anyhow::anyhow!("thirteen is refused")));
        }
        Ok(())
    }
}

#[tokio::test]
async fn messages_that_arrive_together_share_a_transaction_and_a_bad_one_spoils_none() {
    let c = ctx().await;
    let spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"]).with_queue_type("classic");
    let consumer =
        Consumer::new(c.pool.clone(), c.broker.clone(), &c.exchange, spec.clone(), Arc::new(RefusesThirteen));
    consumer.declare().await.unwrap();
    // Queued before the consumer starts: they arrive as fast as the prefetch lets them.
    const N: u32 = 40;
    for n in 0..N {
        publish_raw(&c.broker, &c.exchange, Uuid::now_v7(), n).await;
    }
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));
    let start = Instant::now();
    let dead = first_dead_letter(&c.broker, &spec, "the refused message never reached the DLQ").await;
    loop {
        let done: i64 = sqlx::query_scalar("select count(*) from stock.inbox").fetch_one(&c.db.admin).await.unwrap();
        if done == i64::from(N - 1) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "only {done} messages applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();

    let (effects, distinct, thirteen, transactions): (i64, i64, i64, i64) = sqlx::query_as(
        "select count(*), count(distinct message_id), count(*) filter (where n = 13), count(distinct xmin::text)
           from stock.test_effects",
    )
    .fetch_one(&c.db.admin)
    .await
    .unwrap();
    assert_eq!(
        (effects, distinct, thirteen),
        (i64::from(N - 1), i64::from(N - 1), 0),
        "each good message once, the bad one never"
    );
    assert!(transactions < effects, "{effects} messages in {transactions} transactions: none shared");
    let headers = dead.delivery.properties.headers().clone().unwrap_or_default();
    match headers.inner().get("x-last-error") {
        Some(AMQPValue::LongString(s)) => assert!(String::from_utf8_lossy(s.as_bytes()).contains("thirteen")),
        other => panic!("x-last-error missing: {other:?}"),
    }
    delete_queues(&spec).await;
}

/// A queue with a linger: messages arriving one by one, apart, within it share one
/// transaction (without it each is applied alone: the test above's batching needs them
/// queued already).
#[tokio::test]
async fn with_a_linger_messages_arriving_apart_share_a_transaction() {
    let c = ctx().await;
    let spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"])
        .with_queue_type("classic")
        .with_linger(Duration::from_secs(3));
    let consumer =
        Consumer::new(c.pool.clone(), c.broker.clone(), &c.exchange, spec.clone(), Arc::new(RefusesThirteen));
    consumer.declare().await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await; // consuming
    const N: u32 = 5;
    for n in 0..N {
        publish_raw(&c.broker, &c.exchange, Uuid::now_v7(), n).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let start = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar("select count(*) from stock.inbox").fetch_one(&c.db.admin).await.unwrap();
        if done == i64::from(N) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "only {done} messages applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    let (effects, transactions): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct xmin::text) from stock.test_effects")
            .fetch_one(&c.db.admin)
            .await
            .unwrap();
    assert_eq!((effects, transactions), (i64::from(N), 1), "every message once, all in one transaction");
    delete_queues(&spec).await;
}

#[derive(Debug, Serialize, Deserialize)]
struct Echo {
    text: String,
}

struct EchoHandler;
#[async_trait::async_trait]
impl RpcHandler for EchoHandler {
    async fn handle(&self, req: &Incoming) -> Result<serde_json::Value, RpcFault> {
        let echo: Echo = req.json().map_err(|e| RpcFault { code: "BAD".into(), message: e.to_string() })?;
        if echo.text == "fail" {
            return Err(RpcFault { code: "ECHO_REFUSED".into(), message: "refused".into() });
        }
        Ok(serde_json::json!({ "text": echo.text.to_uppercase() }))
    }
}

#[tokio::test]
async fn rpc_without_a_responder_times_out_cleanly_and_with_one_answers() {
    let broker = Broker::new(&testkit::amqp_url(), "bus-test-rpc");
    let client = RpcClient::new(broker.clone());
    let queue = testkit::unique("test_rpc");
    let meta = MessageMeta::default();

    // Nobody serves the queue (it does not even exist yet).
    let start = Instant::now();
    let err = client
        .call_raw(
            &queue,
            "test.echo",
            serde_json::to_vec(&Echo { text: "hi".into() }).unwrap(),
            &meta,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, RpcError::Timeout(_)), "{err:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");

    // A responder appears: calls are answered, faults come back as faults.
    let stop = CancellationToken::new();
    let server = RpcServer::new(broker.clone(), &queue, Arc::new(EchoHandler));
    let task = tokio::spawn(server.run(stop.clone()));
    let mut reply = None;
    for _ in 0..50 {
        match client
            .call_raw(
                &queue,
                "test.echo",
                serde_json::to_vec(&Echo { text: "hi".into() }).unwrap(),
                &meta,
                Duration::from_millis(500),
            )
            .await
        {
            Ok(r) => {
                reply = Some(r);
                break;
            }
            Err(RpcError::Timeout(_)) => continue, // server still starting
            Err(e) => panic!("{e:?}"),
        }
    }
    let reply: serde_json::Value = serde_json::from_slice(&reply.expect("answered")).unwrap();
    assert_eq!(reply, serde_json::json!({"ok": {"text": "HI"}}));

    let calls = (0..20).map(|i| {
        let client = client.clone();
        let queue = queue.clone();
        async move {
            let body = serde_json::to_vec(&Echo { text: format!("m{i}") }).unwrap();
            let raw = client
                .call_raw(&queue, "test.echo", body, &MessageMeta::default(), Duration::from_secs(5))
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(v["ok"]["text"], format!("M{i}"), "replies are matched to their calls");
        }
    });
    futures::future::join_all(calls).await;

    let fault = client
        .call_raw(
            &queue,
            "test.echo",
            serde_json::to_vec(&Echo { text: "fail".into() }).unwrap(),
            &meta,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let fault: serde_json::Value = serde_json::from_slice(&fault).unwrap();
    assert_eq!(fault["err"]["code"], "ECHO_REFUSED");

    stop.cancel();
    task.await.unwrap();
    let ch = broker.channel().await.unwrap();
    let _ = ch.queue_delete(&queue, QueueDeleteOptions::default()).await;
}

/// Waits for the next message in `queue` (up to 20 s).
async fn next_in(broker: &Broker, queue: &str) -> lapin::message::BasicGetMessage {
    let ch = broker.channel().await.unwrap();
    let start = Instant::now();
    loop {
        if let Some(m) = ch.basic_get(queue, BasicGetOptions { no_ack: true }).await.unwrap() {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn last_error(m: &lapin::message::BasicGetMessage) -> String {
    let headers = m.delivery.properties.headers().clone().unwrap_or_default();
    match headers.inner().get("x-last-error") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("x-last-error missing: {other:?}"),
    }
}

#[tokio::test]
async fn a_v1_consumer_reads_an_event_with_a_field_it_does_not_know_and_refuses_a_newer_version() {
    let c = ctx().await;
    let mut spec = QueueSpec::new(testkit::unique("test_q"), &["test.#"]).with_queue_type("classic");
    spec.retry_delay = Duration::from_millis(200);
    let handler = Arc::new(RecordEffect { calls: AtomicUsize::new(0) });
    let consumer = Consumer::new(c.pool.clone(), c.broker.clone(), &c.exchange, spec.clone(), handler.clone());
    consumer.declare().await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(stop.clone()));

    // A newer producer added an optional field, same version: read, the field ignored.
    let newer_field = Uuid::now_v7();
    publish_body(&c.broker, &c.exchange, newer_field, 1, br#"{"n": 41, "loyaltyTier": "gold"}"#.to_vec()).await;
    // A new major version: this consumer cannot know what it means, so it refuses it.
    let newer_version = Uuid::now_v7();
    publish_body(&c.broker, &c.exchange, newer_version, 2, br#"{"n": 42}"#.to_vec()).await;

    let dead = next_in(&c.broker, &spec.dead_letter_queue()).await;
    let start = Instant::now();
    while handler.calls.load(Ordering::SeqCst) < 1 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();

    let effects: Vec<(Uuid, i32)> =
        sqlx::query_as("select message_id, n from stock.test_effects").fetch_all(&c.db.admin).await.unwrap();
    assert_eq!(effects, vec![(newer_field, 41)], "the v1 event with an extra field was applied, the v2 one not");
    assert_eq!(dead.delivery.properties.message_id().as_ref().map(|s| s.to_string()), Some(newer_version.to_string()));
    let reason = last_error(&dead);
    assert!(reason.contains("version 2 is newer than this consumer understands (1)"), "{reason}");
    let ch = c.broker.channel().await.unwrap();
    let more = ch.basic_get(&spec.dead_letter_queue(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(more.is_none(), "only the newer version was dead-lettered");
    delete_queues(&spec).await;
}

/// The first message in `spec`'s dead-letter queue, waited for (at most 20 s: `what` names
/// the failure).
async fn first_dead_letter(broker: &Broker, spec: &QueueSpec, what: &str) -> lapin::message::BasicGetMessage {
    let ch = broker.channel().await.unwrap();
    let start = Instant::now();
    loop {
        if let Some(m) = ch.basic_get(&spec.dead_letter_queue(), BasicGetOptions { no_ack: true }).await.unwrap() {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sale as the mailer sees it: routed under a further word when it has no receipt to send.
#[derive(Debug, Serialize, Deserialize)]
struct Sale {
    receipt: bool,
}
impl contracts::Event for Sale {
    const TYPE: &'static str = "test.sale.completed";
    const VERSION: u16 = 1;
    fn routing_key(&self) -> &'static str {
        if self.receipt {
            Self::TYPE
        } else {
            "test.sale.completed.without_receipt"
        }
    }
}

/// (routing key, message type) of everything in `queue` now, taken off it.
async fn drain(broker: &Broker, queue: &str) -> Vec<(String, String)> {
    let ch = broker.channel().await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = ch.basic_get(queue, BasicGetOptions { no_ack: true }).await.unwrap() {
        let kind = m.delivery.properties.kind().as_ref().map(ToString::to_string).unwrap_or_default();
        got.push((m.delivery.routing_key.to_string(), kind));
    }
    got
}

#[tokio::test]
async fn an_event_routed_under_a_further_word_reaches_the_queues_bound_to_its_type_and_any_word_only() {
    let c = ctx().await;
    // As stock binds every sale, and the mailer the type alone.
    let all = QueueSpec::new(testkit::unique("test_all"), &["test.sale.completed.#"]).with_queue_type("classic");
    let receipts =
        QueueSpec::new(testkit::unique("test_receipts"), &["test.sale.completed"]).with_queue_type("classic");
    let ch = c.broker.channel().await.unwrap();
    bus::topology::declare_queue(&ch, &c.exchange, &all).await.unwrap();
    bus::topology::declare_queue(&ch, &c.exchange, &receipts).await.unwrap();

    // Into the outbox both ways: one by one, and as a batch.
    let mut tx = c.pool.begin().await.unwrap();
    let mut batch = bus::OutboxBatch::default();
    for receipt in [false, true] {
        bus::enqueue(&mut tx, &Sale { receipt }, &MessageMeta::default()).await.unwrap();
        batch.push(&Sale { receipt }, &MessageMeta::default()).unwrap();
    }
    batch.write(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let stored: Vec<Option<String>> = sqlx::query_scalar("select routing_key from stock.outbox order by outbox_id")
        .fetch_all(&c.db.admin)
        .await
        .unwrap();
    let narrowed = Some("test.sale.completed.without_receipt".to_owned());
    assert_eq!(stored, [narrowed.clone(), None, narrowed, None], "null: the type is the routing key");

    let (stop, handle) = spawn_relay(&c, 10);
    let start = Instant::now();
    while unpublished(&c).await > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the relay did not publish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    handle.await.unwrap();

    // Confirmed means routed: the queues hold everything they will get.
    let to_all = drain(&c.broker, &all.name).await;
    let to_receipts = drain(&c.broker, &receipts.name).await;
    for spec in [&all, &receipts] {
        delete_queues(spec).await;
    }
    assert_eq!(to_all.len(), 4, "every sale reaches the queue bound to the type and any further word: {to_all:?}");
    assert!(to_all.iter().all(|(_, kind)| kind == "test.sale.completed"), "the type stays the type: {to_all:?}");
    assert_eq!(
        to_receipts,
        vec![("test.sale.completed".to_owned(), "test.sale.completed".to_owned()); 2],
        "only the sales with a receipt reach the queue bound to the type alone"
    );
}
