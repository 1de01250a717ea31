//! The order service's HTTP API (paths as the service sees them; nginx adds `/order`).

pub mod cashflow;
pub mod history;
pub mod orders;
pub mod receipt;
pub mod registers;
pub mod settings;
pub mod upcoming;
pub mod wallets;

use utoipa_axum::router::OpenApiRouter;

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
