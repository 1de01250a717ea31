//! The HTTP shell every service shares: `/health`, `/ready`, `/metrics`, `/openapi.json`,
//! request ids, access logs, metrics, body limits, problem+json fallbacks and graceful
//! shutdown. A service hands in its own routes as a `utoipa_axum` router so its OpenAPI
//! document is generated from the handlers.

mod extract;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Extension;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::{Json, OptionalJson, Path, Query};

use crate::auth::JwtVerifier;
use crate::error::Problem;
use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One named readiness check (database, broker).
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// What `/ready` asks before answering 200.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, ReadyCheck)>,
}

impl Readiness {
    pub fn with(mut self, name: &str, check: ReadyCheck) -> Self {
        self.checks.push((name.to_owned(), check));
        self
    }

    /// Runs every check (bounded to 3 s each) and reports each one's outcome.
    pub async fn run(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let mut ok = true;
        let mut report = serde_json::Map::new();
        for (name, check) in &self.checks {
            let outcome = tokio::time::timeout(Duration::from_secs(3), check()).await;
            let status = match outcome {
                Ok(Ok(())) => "up".to_owned(),
                Ok(Err(e)) => {
                    ok = false;
                    tracing::warn!(check = %name, error = %e, "readiness check failed");
                    "down".to_owned()
                }
                Err(_) => {
                    ok = false;
                    "timeout".to_owned()
                }
            };
            report.insert(name.clone(), serde_json::Value::String(status));
        }
        (ok, report)
    }
}

/// The pieces of the shell a service provides.
pub struct Shell {
    pub service: &'static str,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub verifier: Arc<JwtVerifier>,
    /// Who may do what (see [`crate::auth::AccessSource`]).
    pub access: Arc<dyn crate::auth::AccessSource>,
    /// Request body limit in bytes (nginx enforces the same in front).
    pub body_limit: usize,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is up")))]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "up"}))
}

/// Readiness: the database and the broker are reachable.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Every dependency answers"),
    (status = 503, description = "A dependency is down"),
))]
async fn ready(Extension(readiness): Extension<Readiness>) -> Response {
    let (ok, checks) = readiness.run().await;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({"status": if ok { "ready" } else { "not_ready" }, "checks": checks});
    (status, axum::Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
async fn metrics(Extension(metrics): Extension<Metrics>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::not_found("NOT_FOUND", "No such endpoint.")
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "This endpoint does not take that method.")
}

/// Makes the OpenAPI document say what is served: every error is
/// `application/problem+json` (utoipa writes `application/json` for `body = Problem`), and
/// every operation documents the problems any of them can answer: 400 (unreadable), 401
/// and 403 (token, session, membership), 422 (invalid input), 404 for paths with ids,
/// 413 and 415 for operations with a body.
fn document_problems(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{schema::Ref, Content, RefOr, ResponseBuilder};
    const PROBLEM: &str = "application/problem+json";
    let problem = |code: &str| {
        let description = StatusCode::from_u16(code.parse().unwrap_or(500))
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(PROBLEM, Content::new(Some(Ref::from_schema_name("Problem"))))
                .build(),
        )
    };
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut schemas = Vec::new();
    <Problem as utoipa::ToSchema>::schemas(&mut schemas);
    schemas.push(("Problem".to_owned(), <Problem as utoipa::PartialSchema>::schema()));
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in ops.into_iter().flatten() {
            for (code, response) in op.responses.responses.iter_mut() {
                if let (RefOr::T(r), true) = (response, code.starts_with('4') || code.starts_with('5')) {
                    if let Some(content) = r.content.shift_remove("application/json") {
                        r.content.insert(PROBLEM.to_owned(), content);
                    }
                }
            }
            if op.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == "operations")) {
                continue;
            }
            let mut codes = vec!["400", "401", "403", "422"];
            if path.contains('{') {
                codes.push("404");
            }
            if op.request_body.is_some() {
                codes.extend(["413", "415"]);
            }
            for code in codes {
                op.responses.responses.entry(code.to_owned()).or_insert_with(|| problem(code));
            }
        }
    }
}

/// Assembles the service's router: its own routes plus the operational ones, the OpenAPI
/// document generated from all of them, and the common layers.
pub fn router(api: OpenApiRouter, shell: Shell) -> Router {
    let (router, mut openapi) = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .merge(api)
        .split_for_parts();
    document_problems(&mut openapi);
    openapi.info.title = format!("Cashvio {}", shell.service);
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let openapi = Arc::new(openapi);
    let service = shell.service;

    router
        .route(
            "/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(to_completion))
        .layer(axum::middleware::from_fn_with_state(shell.metrics.clone(), crate::metrics::track))
        .layer(Extension(shell.verifier))
        .layer(Extension(shell.access))
        .layer(Extension(shell.readiness))
        .layer(Extension(shell.metrics))
        .layer(axum::extract::DefaultBodyLimit::max(shell.body_limit))
        .layer(
            TraceLayer::new_for_http()
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(move |req: &Request<_>| {
                    let request_id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", service, request_id, method = %req.method(), uri = %req.uri().path())
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // nginx sets X-Request-Id; direct callers get a fresh one.
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// A request that may change something (any method but GET, HEAD and OPTIONS) runs to its
/// end even when its client hangs up. hyper drops a request's future when the connection
/// closes: a checkout dropped between its reserve and its booking would leave its
/// Idempotency-Key "running" (the till's retry waits, then 409, until the key counts as
/// abandoned) and its stock held until the reservation expires. Run as a task of its own,
/// it books (or fails and compensates) and stores its answer for the retry.
async fn to_completion(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::Method;
    use tracing::Instrument;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    match tokio::spawn(next.run(req).in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            let e = anyhow::anyhow!("request task failed: {e}");
            Problem::internal(&e).into_response()
        }
    }
}

/// A bound listener and the router it will serve.
pub struct Server {
    listener: TcpListener,
    router: Router,
    port: u16,
}

impl Server {
    /// Binds `host:port`; port 0 picks a free port (tests).
    pub async fn bind(host: &str, port: u16, router: Router) -> anyhow::Result<Self> {
        use anyhow::Context;
        let listener = TcpListener::bind((host, port)).await.with_context(|| format!("binding {host}:{port}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, router, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and gives in-flight
    /// requests up to `grace` to finish.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) -> anyhow::Result<()> {
        let drained = shutdown.clone();
        let serve =
            axum::serve(self.listener, self.router).with_graceful_shutdown(async move { drained.cancelled().await });
        let serve = std::pin::pin!(serve.into_future());
        tokio::select! {
            res = serve => res.map_err(Into::into),
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                Ok(())
            }
        }
    }
}
