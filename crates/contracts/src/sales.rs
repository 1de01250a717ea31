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
