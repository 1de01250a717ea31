//! The reservation core. One ractor actor per stocked product is the only writer of that
//! product's availability (bulk level or serialized units). It applies each request to its
//! in-memory state at once, collects what is waiting in its mailbox, persists the batch in
//! one transaction (group commit), and only then replies. A per-request coordinator reserves
//! multi-line requests all-or-nothing without any actor waiting on another.

pub mod actor;
pub mod coordinator;
pub mod registry;
mod store;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use coordinator::Coordinator;
pub use registry::Registry;

/// Why a stock operation was refused. Business outcomes travel in replies; an actor only
/// fails (and is restarted) on bugs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("not enough stock of {product_id}: {requested} requested, {available} available")]
    Insufficient { product_id: Uuid, requested: i64, available: i64 },
    #[error("unit {barcode} is not available")]
    UnitUnavailable { barcode: String },
    #[error("no such product {0}")]
    ProductNotFound(Uuid),
    #[error("no such unit {0}")]
    UnitNotFound(String),
    #[error("no such reservation")]
    ReservationNotFound,
    #[error("the reservation expired or was released")]
    ReservationExpired,
    #[error("the reservation is already committed")]
    ReservationCommitted,
    #[error("this reservation id is already in use; use a new one")]
    ReservationIdTaken,
    #[error("invalid: {0}")]
    Invalid(String),
    /// Genuine overload: the batch could not be written (and was rolled back); retry.
    #[error("stock is busy; try again")]
    Busy,
    /// A failure of ours (logged where it happened); nothing was changed.
    #[error("internal error")]
    Internal,
}

impl StockError {
    pub fn code(&self) -> &'static str {
        match self {
            StockError::Insufficient { .. } => "STOCK_INSUFFICIENT",
            StockError::UnitUnavailable { .. } => "STOCK_UNIT_UNAVAILABLE",
            StockError::ProductNotFound(_) => "PRODUCT_NOT_FOUND",
            StockError::UnitNotFound(_) => "ITEM_NOT_FOUND",
            StockError::ReservationNotFound => "RESERVATION_NOT_FOUND",
            StockError::ReservationExpired => "RESERVATION_EXPIRED",
            StockError::ReservationCommitted => "RESERVATION_COMMITTED",
            StockError::ReservationIdTaken => "RESERVATION_ID_TAKEN",
            StockError::Invalid(_) => "VALIDATION_FAILED",
            StockError::Busy => "STOCK_BUSY",
            StockError::Internal => "INTERNAL",
        }
    }

    /// Refusals a caller can act on rank before transient ones when several lines fail.
    fn rank(&self) -> u8 {
        match self {
            StockError::Busy | StockError::Internal => 0,
            _ => 1,
        }
    }
}

impl From<StockError> for platform::Problem {
    fn from(e: StockError) -> Self {
        use axum::http::StatusCode;
        let status = match &e {
            StockError::Insufficient { .. } | StockError::UnitUnavailable { .. } => StatusCode::CONFLICT,
            StockError::ReservationExpired | StockError::ReservationCommitted | StockError::ReservationIdTaken => {
                StatusCode::CONFLICT
            }
            StockError::ProductNotFound(_) | StockError::UnitNotFound(_) | StockError::ReservationNotFound => {
                StatusCode::NOT_FOUND
            }
            StockError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StockError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            StockError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        platform::Problem::new(status, e.code(), e.to_string())
    }
}

/// An internal failure, logged once here with its cause chain and what we were doing; the
/// caller gets an opaque 500 (`INTERNAL`), never a retryable `STOCK_BUSY`.
pub(crate) fn internal(doing: &str, e: impl Into<anyhow::Error>) -> StockError {
    let e = e.into();
    tracing::error!(error = %format!("{e:#}"), "stock: {doing} failed");
    StockError::Internal
}

/// One line an actor holds for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine {
    pub line_no: i32,
    pub unit_no: i32,
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub list_price_minor: i64,
    pub item_id: Option<Uuid>,
    pub barcode: Option<String>,
    pub warranty_until: Option<DateTime<Utc>>,
    /// Loyalty points per unit.
    pub loyalty_points: i64,
    /// The shop's currency (the actor knows it; saves the coordinator a query).
    pub currency: platform::Currency,
}

/// A line as a product's actor is asked for it.
#[derive(Debug, Clone)]
pub struct Want {
    pub line_no: i32,
    pub quantity: i64,
    /// A specific serialized unit (reserved by barcode).
    pub item_id: Option<Uuid>,
}

/// A bulk product's level after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}
