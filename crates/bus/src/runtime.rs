//! The common service runtime: the pool, the broker, the token verifier, the HTTP shell and
//! background tasks (outbox relay, consumers, RPC servers) under one shutdown token. Each
//! service's `Application` is a thin layer over it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use platform::auth::JwtVerifier;
use platform::config::CommonConfig;
use platform::http::{Readiness, Server, Shell};
use platform::metrics::Metrics;

use crate::{Broker, OutboxRelay};

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// What a service has before it starts serving.
pub struct ServiceBase {
    pub config: CommonConfig,
    pub pool: PgPool,
    pub broker: Broker,
    pub metrics: Metrics,
    pub verifier: Arc<JwtVerifier>,
    tasks: Vec<(String, Task)>,
}

impl ServiceBase {
    /// Connects nothing yet (the pool and broker connect lazily), so a service starts and
    /// answers `/health` while its dependencies come up; `/ready` says when they are.
    pub fn new(config: CommonConfig) -> anyhow::Result<Self> {
        let pool = platform::db::pool(&config.database_url, &config.database_schema, config.database_max_connections)?;
        let broker = Broker::new(&config.amqp_url, &format!("cashvio-{}", config.service));
        let metrics = Metrics::new(config.service);
        let verifier = JwtVerifier::new(config.jwt.clone());
        let mut base = Self { config, pool, broker, metrics, verifier, tasks: Vec::new() };
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

    /// Binds the HTTP listener (port 0 in tests) with the service's routes.
    pub async fn start(self, api: OpenApiRouter, body_limit: usize) -> anyhow::Result<Running> {
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
