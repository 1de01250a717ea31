//! Events the order service publishes: completed sales and returns. They carry everything
//! a receipt needs, so the mailer never reads `sales`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{Recipient, ShopBrand};
use crate::Event;

/// Amounts are decimal strings in `currency` ("1250.00").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptLine {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    pub quantity: i64,
    pub unit_price: String,
    /// Discount on this line, as money ("0.00" when none).
    pub discount: String,
    pub line_total: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warranty_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLine {
    /// CASH, CARD, BANK or WALLET.
    pub method: String,
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCompleted {
    pub order_id: Uuid,
    /// The stock reservation the sale commits (stock commits it idempotently on this event
    /// too, in case the order service's own commit call was lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<Uuid>,
    /// Per-shop gapless sequence.
    pub order_number: i64,
    pub shop: ShopBrand,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    /// Receipt goes here when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Recipient>,
    pub lines: Vec<ReceiptLine>,
    pub subtotal: String,
    pub discount_total: String,
    pub total: String,
    pub payments: Vec<PaymentLine>,
    pub change: String,
    /// The customer's wallet balance after this sale (negative: a due).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_balance_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier_name: Option<String>,
    pub completed_at: DateTime<Utc>,
}
impl Event for OrderCompleted {
    const TYPE: &'static str = "sales.order.completed";
    const VERSION: u16 = 1;
    /// A sale with no receipt to send (no customer with an address, or the receipt
    /// declined: most are walk-ins) is kept from the mailer, which binds the type alone.
    fn routing_key(&self) -> &'static str {
        if self.customer.is_some() {
            Self::TYPE
        } else {
            Self::WITHOUT_RECEIPT
        }
    }
}

impl OrderCompleted {
    /// The routing key of a sale with no receipt to send.
    pub const WITHOUT_RECEIPT: &'static str = "sales.order.completed.without_receipt";
    /// The binding for every sale, with a receipt or without.
    pub const ALL: &'static str = "sales.order.completed.#";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnCompleted {
    pub return_id: Uuid,
    pub order_id: Uuid,
    pub order_number: i64,
    pub shop: ShopBrand,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Recipient>,
    pub lines: Vec<ReceiptLine>,
    pub refunds: Vec<PaymentLine>,
    pub total_refund: String,
    pub restocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_balance_after: Option<String>,
    pub completed_at: DateTime<Utc>,
}
impl Event for ReturnCompleted {
    const TYPE: &'static str = "sales.return.completed";
    const VERSION: u16 = 1;
    /// As a sale: kept from the mailer when no receipt is to go out.
    fn routing_key(&self) -> &'static str {
        if self.customer.is_some() {
            Self::TYPE
        } else {
            Self::WITHOUT_RECEIPT
        }
    }
}

impl ReturnCompleted {
    /// The routing key of a return with no receipt to send.
    pub const WITHOUT_RECEIPT: &'static str = "sales.return.completed.without_receipt";
    /// The binding for every return, with a receipt or without.
    pub const ALL: &'static str = "sales.return.completed.#";
}

/// A draft or completed order was cancelled: its reservation is released (if still held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub shop_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<Uuid>,
    pub cancelled_at: DateTime<Utc>,
}
impl Event for OrderCancelled {
    const TYPE: &'static str = "sales.order.cancelled";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails by panicking")]
    use super::{OrderCompleted, ReturnCompleted};
    use crate::Event;

    fn sale(customer: Option<serde_json::Value>) -> OrderCompleted {
        let mut v = serde_json::json!({
            "orderId": "0193a000-0000-7000-8000-000000000001", "orderNumber": 7,
            "shop": {"id": "0193a000-0000-7000-8000-000000000002", "name": "Kandy Mobile"},
            "currency": "LKR", "lines": [], "subtotal": "0.00", "discountTotal": "0.00", "total": "0.00",
            "payments": [], "change": "0.00", "completedAt": "2026-12-05T10:00:00Z"
        });
        if let Some(c) = customer {
            v["customer"] = c;
        }
        serde_json::from_value(v).unwrap()
    }

    fn a_return(customer: Option<serde_json::Value>) -> ReturnCompleted {
        let mut v = serde_json::json!({
            "returnId": "0193a000-0000-7000-8000-000000000003", "orderId": "0193a000-0000-7000-8000-000000000001",
            "orderNumber": 7, "shop": {"id": "0193a000-0000-7000-8000-000000000002", "name": "Kandy Mobile"},
            "currency": "LKR", "lines": [], "refunds": [], "totalRefund": "0.00", "restocked": false,
            "completedAt": "2026-12-05T10:00:00Z"
        });
        if let Some(c) = customer {
            v["customer"] = c;
        }
        serde_json::from_value(v).unwrap()
    }

    /// The mailer is bound to the types alone: a sale or a return reaches it exactly when it
    /// names somebody to send the receipt to; stock and auth, bound to `ALL`, get them all.
    #[test]
    fn a_sale_or_return_is_routed_for_the_mailer_only_with_a_receipt_to_send() {
        let to = serde_json::json!({"email": "nimal@example.com", "name": "Nimal"});
        assert_eq!(sale(None).routing_key(), OrderCompleted::WITHOUT_RECEIPT);
        assert_eq!(sale(Some(to.clone())).routing_key(), OrderCompleted::TYPE);
        assert_eq!(a_return(None).routing_key(), ReturnCompleted::WITHOUT_RECEIPT);
        assert_eq!(a_return(Some(to)).routing_key(), ReturnCompleted::TYPE);
        // Both keys are the type and at most a further word: `ALL` (`TYPE.#`) binds them.
        for (key, all) in [
            (OrderCompleted::WITHOUT_RECEIPT, OrderCompleted::ALL),
            (ReturnCompleted::WITHOUT_RECEIPT, ReturnCompleted::ALL),
        ] {
            let stem = all.strip_suffix(".#").unwrap();
            assert!(key.strip_prefix(stem).is_some_and(|w| w.starts_with('.') && !w[1..].contains('.')), "{key}");
        }
    }
}
