//! The order service's HTTP API (paths as the service sees them; nginx adds `/order`).

pub mod cashflow;
pub mod history;
pub mod orders;
pub mod receipt;
pub mod registers;
pub mod settings;
pub mod upcoming;
pub mod wallets;

use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;

use bus::MessageMeta;

use crate::checkout::Sales;

pub type AppState = Sales;

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(orders::router())
        .merge(settings::router())
        .merge(wallets::router())
        .merge(history::router())
        .merge(receipt::router())
        .merge(cashflow::router())
        .merge(upcoming::router())
        .merge(registers::router())
        .with_state(state)
}

/// The request's id and trace context, carried into the messages it causes.
pub fn meta(headers: &HeaderMap) -> MessageMeta {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    MessageMeta { request_id: text("x-request-id"), traceparent: text("traceparent") }
}
