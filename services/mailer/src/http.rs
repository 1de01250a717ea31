//! The mailer's HTTP API: uploads to S3 and the e-mail admin endpoints.

pub mod emails;
pub mod upload;

use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;

use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub storage: Storage,
}

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new().merge(upload::router()).merge(emails::router()).with_state(state)
}
