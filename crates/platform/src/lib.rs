//! What every Cashvio service stands on: configuration, telemetry, problem+json errors,
//! pagination, money and typed ids, the database pool, JWT verification and the HTTP
//! shell (`/health`, `/ready`, `/metrics`, `/openapi.json`, graceful shutdown).
//!
//! Business rules do not live here.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod metrics;
pub mod money;
pub mod pagination;
pub mod pdf;
pub mod shutdown;
pub mod telemetry;
pub mod text_enum;
pub mod validate;

pub use error::Problem;
pub use money::{Currency, Money};

#[doc(hidden)]
pub use sqlx as __sqlx;
