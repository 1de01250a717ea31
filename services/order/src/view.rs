//! What the order endpoints answer: our fields and, beside them, the ones the first
//! Cashvio's screens read (`orderItems[].product.name`, `customer.contactNumber`,
//! `paymentDue`, `orders` in lists).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use platform::money::{Currency, Money};

use crate::db::orders::{LineRow, OrderRow, PaymentRow};
use crate::domain::types::display_number;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The phone, as the first system named it.
    pub contact_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductRef {
    pub id: Uuid,
    pub name: String,
    /// The name as sold (the first system's screens read it).
    pub display_name: String,
    /// Months of warranty the unit was sold with (0: none).
    pub warranty_months: i64,
}

/// Whole calendar months from `from` to `until` (0 when none).
pub fn months_between(from: DateTime<Utc>, until: DateTime<Utc>) -> i64 {
    use chrono::Datelike;
    let m = |d: DateTime<Utc>| i64::from(d.year()) * 12 + i64::from(d.month0());
    (m(until) - m(from)).max(0)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub id: Uuid,
    pub product_id: Uuid,
    pub product: ProductRef,
    pub item_id: Option<Uuid>,
    pub barcode: Option<String>,
    pub name: String,
    pub quantity: i64,
    /// Stock's undiscounted price.
    pub list_price: String,
    /// Stock's price after the shop's discounts.
    pub unit_price: String,
    /// Charged per unit.
    pub selling_price: String,
    /// Who charged a price other than stock's, if anyone.
    pub price_overridden_by: Option<Uuid>,
    /// This line's share of the order discount.
    pub discount: String,
    pub line_total: String,
    pub warranty_until: Option<DateTime<Utc>>,
    pub loyalty_points: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub id: Uuid,
    /// CASH, CARD, BANK or WALLET.
    pub method: String,
    pub amount: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: Uuid,
    /// `ORD-000123`.
    pub order_number: String,
    /// The bare per-shop number.
    pub sequence: i64,
    pub shop_id: Uuid,
    /// DRAFT, PENDING, COMPLETED, CANCELLED, REFUNDED or PARTIALLY_REFUNDED.
    pub status: String,
    pub currency: String,
    pub customer_id: Option<Uuid>,
    pub customer: Option<CustomerView>,
    pub register_id: Option<Uuid>,
    pub subtotal: String,
    pub discount: String,
    pub discount_type: Option<String>,
    pub discount_value: Option<String>,
    pub total: String,
    /// Tendered, wallet payments included.
    pub paid: String,
    pub change: String,
    /// What the customer still owes for this order (it went onto their wallet as a due).
    pub payment_due: String,
    pub note: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub order_items: Vec<LineView>,
    pub payments: Vec<PaymentView>,
}

/// Builds views of `orders` from their lines and payments (each list in order).
pub fn orders(rows: Vec<OrderRow>, lines: Vec<LineRow>, payments: Vec<PaymentRow>) -> Vec<OrderView> {
    rows.into_iter()
        .map(|o| {
            let currency: Currency = o.currency.parse().unwrap_or(Currency::LKR);
            let money = |minor: i64| Money::from_minor(minor, currency).to_decimal_string();
            let order_items = lines
                .iter()
                .filter(|l| l.order_id == o.order_id)
                .map(|l| LineView {
                    id: l.order_line_id,
                    product_id: l.product_id,
                    product: ProductRef {
                        id: l.product_id,
                        name: l.name.clone(),
                        display_name: l.name.clone(),
                        warranty_months: l
                            .warranty_until
                            .map_or(0, |until| months_between(o.completed_at.unwrap_or(o.created_at), until)),
                    },
                    item_id: l.item_id,
                    barcode: l.barcode.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    list_price: money(l.list_price_minor),
                    unit_price: money(l.unit_price_minor),
                    selling_price: money(l.sold_price_minor),
                    price_overridden_by: l.override_by,
                    discount: money(l.discount_minor),
                    line_total: money(l.line_total_minor),
                    warranty_until: l.warranty_until,
                    loyalty_points: l.loyalty_points,
                })
                .collect();
            let payments = payments
                .iter()
                .filter(|p| p.order_id == o.order_id)
                .map(|p| PaymentView {
                    id: p.payment_id,
                    method: p.method.clone(),
                    amount: money(p.amount_minor),
                    reference: p.reference.clone(),
                    created_at: p.created_at,
                })
                .collect();
            let customer = o.customer_id.map(|id| CustomerView {
                id,
                name: o.customer_name.clone(),
                email: o.customer_email.clone(),
                phone: o.customer_phone.clone(),
                contact_number: o.customer_phone.clone(),
            });
            OrderView {
                id: o.order_id,
                order_number: display_number(o.order_number),
                sequence: o.order_number,
                shop_id: o.shop_id,
                status: o.status,
                currency: o.currency.clone(),
                customer_id: o.customer_id,
                customer,
                register_id: o.register_id,
                subtotal: money(o.subtotal_minor),
                discount: money(o.discount_minor),
                discount_type: o.discount_type,
                discount_value: o.discount_value,
                total: money(o.total_minor),
                paid: money(o.paid_minor),
                change: money(o.change_minor),
                payment_due: money(o.due_minor),
                note: o.note,
                created_by: o.created_by,
                created_at: o.created_at,
                updated_at: o.updated_at,
                completed_at: o.completed_at,
                order_items,
                payments,
            }
        })
        .collect()
}
