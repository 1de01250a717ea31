//! The runtime every service runs in: the pool, the broker, the token verifier, the HTTP
//! shell and background tasks (outbox relay, event consumers, RPC servers) under one
//! shutdown token. A service's `startup.rs` reads as a list of what it runs:
//!
//! ```ignore
//! let mut base = ServiceBase::new(config.common)?;
//! base.project_access(&config.queue);     // who may do what, from auth's events
//! base.consume(&config.queue, consumer::BINDINGS, StockEvents { .. }).await;
//! base.serve_rpc(&config.rpc_queue, StockRpc { .. });
//! base.task("sweeper", |stop| Box::pin(sweeper.run(stop)));
//! let running = base.start(http::router(state), BODY_LIMIT).await?;
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use platform::auth::{AccessSource, JwtVerifier};
use platform::config::CommonConfig;
use platform::http::{Readiness, Server, Shell};
use platform::metrics::Metrics;

use bus::{Broker, Consumer, Handler, OutboxRelay, QueueSpec, RpcHandler, RpcServer};

pub mod access;
pub mod receipt;

pub use access::ProjectedAccess;

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// What a service has before it starts serving.
pub struct ServiceBase {
    pub config: CommonConfig,
    pub pool: PgPool,
    pub broker: Broker,
    pub metrics: Metrics,
    pub verifier: Arc<JwtVerifier>,
    tasks: Vec<(String, Task)>,
    access: Option<Arc<dyn AccessSource>>,
    /// The projection and the queue its events arrive on, until a consumer of that queue
    /// has taken them.
    projection: Option<(String, Arc<ProjectedAccess>)>,
}

/// A consumer with nothing of its own to handle (a service that only projects access).
struct NoEvents;

#[async_trait::async_trait]
impl Handler for NoEvents {
    async fn handle(&self, _: &mut sqlx::PgConnection, msg: &bus::Incoming) -> Result<(), bus::HandlerError> {
        Err(bus::HandlerError::Permanent(anyhow::anyhow!("not bound to {}", msg.message_type)))
    }
}

impl ServiceBase {
    /// Connects nothing yet (the pool and broker connect lazily), so a service starts and
    /// answers `/health` while its dependencies come up; `/ready` says when they are.
    pub fn new(config: CommonConfig) -> anyhow::Result<Self> {
        let pool = platform::db::pool(&config.database_url, &config.database_schema, config.database_max_connections)?;
        let broker = Broker::new(&config.amqp_url, &format!("cashvio-{}", config.service));
        let metrics = Metrics::new(config.service);
        let verifier = JwtVerifier::new(config.jwt.clone());
        let mut base =
            Self { config, pool, broker, metrics, verifier, tasks: Vec::new(), access: None, projection: None };
        let relay = OutboxRelay::new(
            base.pool.clone(),
            base.broker.clone(),
            &base.config.amqp_exchange,
            &base.config.database_schema,
        );
        base.task("outbox-relay", move |stop| Box::pin(relay.run(stop)));
        Ok(base)
    }

    /// Adds a background task that runs until the shutdown token is cancelled.
    pub fn task(&mut self, name: &str, f: impl FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send + 'static) {
        self.tasks.push((name.to_owned(), Box::new(f)));
    }

    /// Authorizes requests with `source` (auth, which owns the memberships and sessions).
    pub fn authorize_with(&mut self, source: Arc<dyn AccessSource>) {
        self.access = Some(source);
    }

    /// Authorizes requests from this service's projection of auth's events (memberships,
    /// account status, ended sessions), which arrive on `queue`: the service's own event
    /// queue, whose consumer gets the projection's bindings added (one queue, one inbox).
    pub fn project_access(&mut self, queue: &str) {
        let projection = Arc::new(ProjectedAccess::new(self.pool.clone()));
        self.access = Some(projection.clone());
        self.projection = Some((queue.to_owned(), projection));
    }

    /// Consumes the events routed by `bindings` into `queue` (with its retry queue and DLQ),
    /// each handled in a transaction with the inbox, until shutdown.
    pub async fn consume(&mut self, queue: &str, bindings: &[&str], handler: impl Handler) {
        self.consume_with(QueueSpec::new(queue.to_owned(), bindings), handler).await;
    }

    /// [`ServiceBase::consume`] with a tuned spec (attempts, retry delay, prefetch). The queue
    /// type is the deployment's (`AMQP_QUEUE_TYPE`).
    pub async fn consume_with(&mut self, spec: QueueSpec, handler: impl Handler) {
        let mut spec = spec.with_queue_type(&self.config.amqp_queue_type);
        let handler: Arc<dyn Handler> = match self.projection.take() {
            Some((queue, access)) if queue == spec.name => {
                let inner_bindings = spec.bindings.clone();
                spec.bindings.extend(access::BINDINGS.iter().map(|b| (*b).to_owned()));
                spec.bindings.sort();
                spec.bindings.dedup();
                Arc::new(access::WithAccess { access, inner: handler, inner_bindings })
            }
            other => {
                self.projection = other;
                Arc::new(handler)
            }
        };
        let name = spec.name.clone();
        let consumer = Consumer::new(self.pool.clone(), self.broker.clone(), &self.config.amqp_exchange, spec, handler);
        // Declared now, so events published from here on wait in the queue; if the broker is
        // not up yet, the consumer declares it once it connects.
        if let Err(e) = consumer.declare().await {
            tracing::warn!(queue = %name, error = %format!("{e:#}"), "could not declare the queue yet");
        }
        self.task(&format!("consumer {name}"), move |stop| Box::pin(consumer.run(stop)));
    }

    /// Answers the RPC requests sent to `queue` until shutdown.
    pub fn serve_rpc(&mut self, queue: &str, handler: impl RpcHandler) {
        let server = RpcServer::new(self.broker.clone(), queue, Arc::new(handler));
        self.task(&format!("rpc {queue}"), move |stop| Box::pin(server.run(stop)));
    }

    /// Runs `server` (a tuned one: single active consumer, prefetch) until shutdown.
    pub fn serve_rpc_with(&mut self, server: RpcServer, queue: &str) {
        self.task(&format!("rpc {queue}"), move |stop| Box::pin(server.run(stop)));
    }

    /// Binds the HTTP listener (port 0 in tests) with the service's routes.
    pub async fn start(mut self, api: OpenApiRouter, body_limit: usize) -> anyhow::Result<Running> {
        if let Some((queue, _)) = &self.projection {
            let queue = queue.clone();
            self.consume(&queue, &[], NoEvents).await;
        }
        let access = self
            .access
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no access source: call project_access or authorize_with before start"))?;
        let pool = self.pool.clone();
        let broker = self.broker.clone();
        let readiness = Readiness::default()
            .with(
                "database",
                Arc::new(move || {
                    let pool = pool.clone();
                    Box::pin(async move { platform::db::ping(&pool).await })
                }),
            )
            .with(
                "broker",
                Arc::new(move || {
                    let broker = broker.clone();
                    Box::pin(async move { broker.ping().await })
                }),
            );
        let shell = Shell {
            service: self.config.service,
            metrics: self.metrics.clone(),
            readiness,
            verifier: self.verifier.clone(),
            access,
            body_limit,
        };
        let router = platform::http::router(api, shell);
        let server = Server::bind(&self.config.host, self.config.port, router).await?;
        tracing::info!(service = self.config.service, port = server.port(), "listening");
        Ok(Running {
            server,
            tasks: self.tasks,
            shutdown: CancellationToken::new(),
            broker: self.broker,
            pool: self.pool,
            grace: Duration::from_secs(self.config.shutdown_grace_secs),
        })
    }
}

/// A started service: serving once [`Running::run_until_stopped`] is awaited.
pub struct Running {
    server: Server,
    tasks: Vec<(String, Task)>,
    shutdown: CancellationToken,
    broker: Broker,
    pool: PgPool,
    grace: Duration,
}

impl Running {
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Cancel this to stop the service gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves and runs the background tasks until the shutdown token is cancelled; then
    /// stops accepting, lets in-flight requests and messages finish (bounded by the grace
    /// period), and closes the broker connection and the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut set = JoinSet::new();
        for (name, task) in self.tasks {
            let fut = task(self.shutdown.clone());
            set.spawn(async move {
                fut.await;
                name
            });
        }
        let served = self.server.run(self.shutdown.clone(), self.grace).await;
        // The server only returns on shutdown or a fatal error; either way stop the rest.
        self.shutdown.cancel();
        let drained = tokio::time::timeout(self.grace, async {
            while let Some(done) = set.join_next().await {
                if let Ok(name) = done {
                    tracing::info!(task = %name, "stopped");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop within the grace period");
            set.abort_all();
        }
        self.broker.close().await;
        self.pool.close().await;
        served
    }
}
