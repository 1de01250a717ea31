//! Events the stock service publishes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{Recipient, ShopBrand};
use crate::Event;

/// A product's available quantity fell to or below its keepingUnits. Carries the shop
/// owner's address (stock keeps it from auth's shop events) so the mailer needs no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelLow {
    pub shop: ShopBrand,
    pub owner: Recipient,
    pub product_id: Uuid,
    pub product_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub available: i64,
    pub keeping_units: i64,
    pub occurred_at: DateTime<Utc>,
}
impl Event for LevelLow {
    const TYPE: &'static str = "stock.level.low";
    const VERSION: u16 = 1;
}

/// A product's availability changed (reserve, release, sale, receipt, adjustment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelChanged {
    pub shop_id: Uuid,
    pub product_id: Uuid,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub occurred_at: DateTime<Utc>,
}
impl Event for LevelChanged {
    const TYPE: &'static str = "stock.level.changed";
    const VERSION: u16 = 1;
}

/// One line to reserve: a product and a quantity, or one serialized unit by barcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReserveLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

/// Reserve all lines or none (`stock.rpc`, and `POST /stock/reservations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveRequest {
    /// Chosen by the caller, so a retry is the same reservation.
    pub reservation_id: Uuid,
    pub shop_id: Uuid,
    pub lines: Vec<ReserveLine>,
    pub ttl_seconds: u32,
}

/// A reserved line, priced: what the order service needs without reading stock's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    /// After the shop's active discounts, in the shop's currency ("1250.00").
    pub unit_price: String,
    /// The undiscounted price.
    pub list_price: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warranty_until: Option<DateTime<Utc>>,
    /// Loyalty points a customer earns per unit (the product's `loyaltyPoints`).
    #[serde(default)]
    pub loyalty_points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub reservation_id: Uuid,
    pub shop_id: Uuid,
    /// HELD, COMMITTED, RELEASED or EXPIRED
    pub status: String,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    pub lines: Vec<ReservedLine>,
}

impl crate::Rpc for ReserveRequest {
    const QUEUE: &'static str = crate::routing::STOCK_RPC_QUEUE;
    const TYPE: &'static str = "stock.reservation.reserve";
    type Reply = ReservationView;
}

/// Stock leaves for good (the sale is booked). Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitRequest {
    pub reservation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The reservation's shop: which stock shard the caller sent this to (see
    /// `routing::shard_of`). Informational for the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<Uuid>,
}
impl crate::Rpc for CommitRequest {
    const QUEUE: &'static str = crate::routing::STOCK_RPC_QUEUE;
    const TYPE: &'static str = "stock.reservation.commit";
    type Reply = ReservationView;
}

/// Stock returns to availability. Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequest {
    pub reservation_id: Uuid,
    /// As in [`CommitRequest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<Uuid>,
}
impl crate::Rpc for ReleaseRequest {
    const QUEUE: &'static str = crate::routing::STOCK_RPC_QUEUE;
    const TYPE: &'static str = "stock.reservation.release";
    type Reply = ReservationView;
}
