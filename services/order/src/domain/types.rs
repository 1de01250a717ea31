//! Typed ids and the closed sets of values an order has: statuses and payment methods.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

platform::typed_id!(/// A shop's customer: a registered user's id, or a walk-in's own.
    CustomerId);
platform::typed_id!(/// One sale line.
    OrderLineId);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Cash,
    Card,
    Bank,
    Wallet,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "CASH",
            PaymentMethod::Card => "CARD",
            PaymentMethod::Bank => "BANK",
            PaymentMethod::Wallet => "WALLET",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CASH" => Some(PaymentMethod::Cash),
            "CARD" => Some(PaymentMethod::Card),
            "BANK" | "BANK_TRANSFER" => Some(PaymentMethod::Bank),
            "WALLET" => Some(PaymentMethod::Wallet),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Draft,
    Pending,
    Completed,
    Cancelled,
    Refunded,
    PartiallyRefunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Draft => "DRAFT",
            OrderStatus::Pending => "PENDING",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            OrderStatus::Draft,
            OrderStatus::Pending,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
            OrderStatus::Refunded,
            OrderStatus::PartiallyRefunded,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `ORD-000123`: how an order number is shown (receipts, lists, cashflow descriptions).
pub fn display_number(n: i64) -> String {
    format!("ORD-{n:06}")
}
