//! The auth service's HTTP API (paths as the service sees them; nginx adds `/auth`).

pub mod account;
pub mod employees;
pub mod google;
pub mod shops;
pub mod users;

use std::sync::Arc;

use axum::http::HeaderMap;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{RateLimits, TokenConfig};
use crate::keys::KeyStore;
use crate::ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: KeyStore,
    pub tokens: TokenConfig,
    pub app_url: url::Url,
    pub limits: RateLimits,
    pub limiter: Arc<RateLimiter>,
    pub google: Option<Arc<crate::google::Google>>,
}

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(account::router())
        .merge(google::router())
        .merge(shops::router())
        .merge(users::router())
        .merge(employees::router())
        .with_state(state)
}

/// The client address nginx saw (`X-Real-IP`); services are only reachable through nginx.
pub fn client_ip(headers: &HeaderMap) -> String {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "direct".to_owned())
}
