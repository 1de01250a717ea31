//! Prometheus metrics, one registry per running service (so tests can run several in one
//! process): HTTP request counts and latency per route, plus gauges other parts register
//! (outbox lag, queue depth, actor mailboxes).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~8 s
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// A service's metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix("cashvio");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let sub = registry.sub_registry_with_label(("service".into(), service.to_owned().into()));
        sub.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        sub.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        Self { registry: Arc::new(Mutex::new(registry)), requests, latency }
    }

    /// Registers a gauge (queue depth, outbox lag, ...) and returns it to be set.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, gauge.clone());
        }
        gauge
    }

    /// Registers a family of gauges told apart by one label (`label="value"`), e.g. which
    /// shards an instance owns.
    pub fn gauges_by(&self, name: &str, help: &str) -> Family<Vec<(String, String)>, Gauge> {
        let family = Family::<Vec<(String, String)>, Gauge>::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, family.clone());
        }
        family
    }

    /// Registers a counter (messages handled, ...).
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, counter.clone());
        }
        counter
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
                out.clear();
            }
        }
        out
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { method: method.to_owned(), route: route.to_owned(), status })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method: method.to_owned(), route: route.to_owned() })
            .observe(seconds);
    }
}

/// Middleware recording every request under its route template (`/items/{id}`), so label
/// cardinality stays bounded.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let res = next.run(req).await;
    metrics.observe(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}
