//! The order service's errors, each answered as problem+json with a stable code.

use axum::http::StatusCode;
use platform::Problem;

use crate::domain::payment::SettleError;
use crate::domain::pricing::PricingError;
use crate::stock::StockCallError;
use crate::wallet::WalletError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("problem: {0}")]
    Problem(Problem),
    #[error("the order service does not know this shop yet")]
    ShopNotFound,
    #[error("no such customer in this shop")]
    CustomerNotFound,
    #[error("no such order")]
    OrderNotFound,
    #[error("the order is {0}; this is not possible now")]
    OrderState(String),
    #[error("this shop's settings do not let staff change prices")]
    PriceOverrideForbidden,
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Settle(#[from] SettleError),
    #[error(transparent)]
    Stock(#[from] StockCallError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Problem(p)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // The ledger's register rules (migration 20261122000016) refuse with their own codes.
        if let sqlx::Error::Database(d) = &e {
            match d.code().as_deref() {
                Some("CVR01") => return Error::Problem(Problem::field("registerId", "no such register in this shop")),
                Some("CVR02") => {
                    return Error::Problem(Problem::conflict(
                        "SHIFT_NOT_OPEN",
                        "The register has no open shift (and cash sales need one here): open it first.",
                    ))
                }
                _ => {}
            }
        }
        Error::Internal(anyhow::Error::new(e))
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let unprocessable = |code: &str, detail: String| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail);
        match e {
            Error::Problem(p) => p,
            Error::ShopNotFound => Problem::not_found("SHOP_NOT_FOUND", e.to_string()),
            Error::CustomerNotFound => Problem::not_found("CUSTOMER_NOT_FOUND", e.to_string()),
            Error::OrderNotFound => Problem::not_found("ORDER_NOT_FOUND", e.to_string()),
            Error::OrderState(_) => Problem::conflict("ORDER_STATE", e.to_string()),
            Error::PriceOverrideForbidden => Problem::forbidden("PRICE_OVERRIDE_FORBIDDEN", e.to_string()),
            Error::Pricing(PricingError::Money(_)) => unprocessable("AMOUNT_OUT_OF_RANGE", e.to_string()),
            Error::Pricing(_) => unprocessable("PRICING_INVALID", e.to_string()),
            Error::Settle(s) => {
                let code = match s {
                    SettleError::Short { .. } => "PAYMENT_SHORT",
                    SettleError::WalletInsufficient { .. } => "WALLET_INSUFFICIENT",
                    SettleError::CustomerRequired => "CUSTOMER_REQUIRED",
                    SettleError::CreditLimit { .. } => "CREDIT_LIMIT_EXCEEDED",
                    SettleError::ChangeWithoutCash { .. } => "CHANGE_WITHOUT_CASH",
                    SettleError::WalletOverpaid { .. } => "WALLET_OVERPAID",
                    SettleError::DueMismatch { .. } => "DUE_MISMATCH",
                    SettleError::NotPositive => "AMOUNT_NOT_POSITIVE",
                    SettleError::Money(_) => "AMOUNT_OUT_OF_RANGE",
                };
                unprocessable(code, s.to_string())
            }
            Error::Stock(StockCallError::Refused { code, message }) => {
                let status = match code.as_str() {
                    "PRODUCT_NOT_FOUND" | "ITEM_NOT_FOUND" => StatusCode::NOT_FOUND,
                    "VALIDATION_FAILED" | "MALFORMED_REQUEST" => StatusCode::UNPROCESSABLE_ENTITY,
                    "STOCK_BUSY" | "INTERNAL" => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::CONFLICT,
                };
                let code = if status == StatusCode::SERVICE_UNAVAILABLE { "STOCK_UNAVAILABLE" } else { code.as_str() };
                Problem::new(status, code, message)
            }
            Error::Stock(StockCallError::Unavailable(why)) => {
                tracing::warn!(%why, "stock unavailable");
                Problem::unavailable("STOCK_UNAVAILABLE", "Stock did not answer in time; nothing was sold. Try again.")
            }
            Error::Wallet(w) => match w {
                WalletError::Tampered => Problem::conflict(
                    "WALLET_INTEGRITY_FAILED",
                    "This customer's wallet failed its integrity check, so nothing was booked on it. The shop's \
                     operator has been alerted.",
                ),
                WalletError::Conflict => Problem::conflict("WALLET_CONFLICT", w.to_string()),
                WalletError::Busy => Problem::unavailable("WALLET_BUSY", w.to_string()),
                WalletError::KeysUnavailable => Problem::unavailable("WALLET_UNAVAILABLE", w.to_string()),
                WalletError::Overflow => unprocessable("AMOUNT_OUT_OF_RANGE", w.to_string()),
                WalletError::Internal(err) => Problem::internal(&err),
            },
            Error::Internal(err) => Problem::internal(&err),
        }
    }
}
