//! Events the stock service publishes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{Recipient, ShopBrand};
use crate::Event;

/// A product's available quantity fell to or below its keepingUnits. Carries the shop
/// owner's address (stock keeps it from auth's shop events) so the mailer needs no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
