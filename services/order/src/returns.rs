//! A return: goods back from a completed sale, money back to the customer (cash, card, bank
//! or their wallet), stock back on the shelf through `sales.return.completed`. One
//! transaction; the order's lines are locked while the return counts against them.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::common::Recipient;
use contracts::sales::{PaymentLine, ReceiptLine, ReturnCompleted};
use platform::error::FieldError;
use platform::money::{Currency, Money, MoneyInput};
use platform::Problem;

use crate::checkout::Sales;
use crate::db::orders::{self, LedgerContext, NewLedger};
use crate::db::returns::{self as db, NewReturn};
use crate::db::shops;
use crate::domain::types::{display_number, OrderStatus, PaymentMethod};
use crate::error::Error;
use crate::wallet::{Cached, Change, Owner};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnItemBody {
    /// The order line (`orderItems[].id`).
    pub order_item_id: Option<Uuid>,
    /// A serialized unit of the order.
    pub barcode: Option<String>,
    /// A bulk product of the order.
    pub product_id: Option<Uuid>,
    /// Default 1.
    pub quantity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// CASH, CARD, BANK or WALLET.
    pub method: String,
    pub amount: MoneyInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnBody {
    pub items: Vec<ReturnItemBody>,
    /// How the money goes back; at most what the goods were sold for. Default: all of it, in cash.
    pub refund: Option<Vec<RefundBody>>,
    /// Whether the goods go back on the shelf (default true; false for damaged goods).
    pub restock: Option<bool>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnLineView {
    pub order_item_id: Uuid,
    pub product_id: Uuid,
    pub barcode: Option<String>,
    pub name: String,
    pub quantity: i64,
    /// What these units were sold for.
    pub value: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub method: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_number: String,
    /// PARTIALLY_REFUNDED or REFUNDED: the order's status after this return.
    pub order_status: String,
    pub items: Vec<ReturnLineView>,
    pub total_value: String,
    pub refunds: Vec<RefundView>,
    pub total_refund: String,
    pub restocked: bool,
    pub reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn refused(status: StatusCode, code: &str, detail: impl Into<String>) -> Error {
    Error::Problem(Problem::new(status, code, detail))
}

impl Sales {
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn return_goods(
        &self,
        actor: Uuid,
        order_id: Uuid,
        return_id: Uuid,
        body: &ReturnBody,
        meta: &MessageMeta,
    ) -> Result<ReturnView, Error> {
        let order = orders::by_id(&self.pool, order_id).await?.ok_or(Error::OrderNotFound)?;
        if order.status != OrderStatus::Completed.as_str() && order.status != OrderStatus::PartiallyRefunded.as_str() {
            return Err(Error::OrderState(order.status));
        }
        let shop = shops::get(&self.pool, order.shop_id).await?.ok_or(Error::ShopNotFound)?;
        let currency: Currency =
            order.currency.parse().map_err(|_| anyhow::anyhow!("order currency {}", order.currency))?;
        if body.items.is_empty() || body.items.len() > crate::domain::checkout::MAX_LINES {
            return Err(Problem::field("items", "1 to 100 items").into());
        }
        let reason = body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(Problem::field("reason", "at most 500 characters").into());
        }
        let mut refunds: Option<Vec<(PaymentMethod, Money)>> = None;
        if let Some(list) = &body.refund {
            let mut errors = Vec::new();
            let mut parsed = Vec::new();
            for (i, r) in list.iter().enumerate().take(10) {
                let method = PaymentMethod::parse(&r.method);
                let amount = r.amount.to_money(currency);
                match (method, amount) {
                    (Some(m), Ok(a)) if a.minor() > 0 => parsed.push((m, a)),
                    (None, _) => errors.push(FieldError {
                        field: format!("refund[{i}].method"),
                        message: "CASH, CARD, BANK or WALLET".into(),
                    }),
                    (_, Ok(_)) => errors
                        .push(FieldError { field: format!("refund[{i}].amount"), message: "must be positive".into() }),
                    (_, Err(e)) => {
                        errors.push(FieldError { field: format!("refund[{i}].amount"), message: e.to_string() })
                    }
                }
            }
            if list.len() > 10 {
                errors.push(FieldError { field: "refund".into(), message: "at most 10 refunds".into() });
            }
            if !errors.is_empty() {
                return Err(Problem::validation(errors).into());
            }
            refunds = Some(parsed);
        }
        let to_wallet = refunds.as_ref().is_some_and(|r| r.iter().any(|(m, _)| *m == PaymentMethod::Wallet));
        // A named customer's wallet may change (a refund to it, loyalty points taken back).
        let turn = match (to_wallet, order.customer_id) {
            (_, Some(customer)) => Some(self.wallets.turn(order.shop_id, customer).await?),
            (true, None) => {
                return Err(refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "CUSTOMER_REQUIRED",
                    "A refund to a wallet needs the order's customer.",
                ))
            }
            _ => None,
        };

        let mut tx = self.pool.begin().await?;
        let lines = db::lock_lines(&mut tx, order_id).await?;
        // What comes back, per line (one line named twice counts twice).
        let mut wanted: Vec<(usize, i64)> = Vec::new();
        for (i, item) in body.items.iter().enumerate() {
            let q = item.quantity.unwrap_or(1);
            if !(1..=crate::domain::checkout::MAX_QUANTITY).contains(&q) {
                return Err(Problem::field(&format!("items[{i}].quantity"), "from 1 to 100000").into());
            }
            let pending = |idx: usize| wanted.iter().filter(|(w, _)| *w == idx).map(|(_, n)| n).sum::<i64>();
            let found = lines.iter().enumerate().position(|(idx, l)| {
                match (item.order_item_id, &item.barcode, item.product_id) {
                    (Some(id), _, _) => l.order_line_id == id,
                    (None, Some(code), _) => l.barcode.as_deref() == Some(code.trim()),
                    (None, None, Some(p)) => {
                        l.product_id == p && l.barcode.is_none() && l.quantity - l.returned_quantity - pending(idx) >= q
                    }
                    (None, None, None) => false,
                }
            });
            let Some(idx) = found else {
                return Err(refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "RETURN_ITEM_NOT_IN_ORDER",
                    format!("items[{i}] names nothing this order sold (or nothing left to return of it)"),
                ));
            };
            wanted.push((idx, q));
        }
        let mut per_line: Vec<(usize, i64)> = Vec::new();
        for (idx, q) in wanted {
            match per_line.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, total)) => *total += q,
                None => per_line.push((idx, q)),
            }
        }
        let mut rows = Vec::new();
        let mut total_value = 0i64;
        let mut points_back = 0i64;
        for (idx, q) in &per_line {
            let l = &lines[*idx];
            let v = crate::domain::returns::value(l.line_total_minor, l.quantity, l.returned_quantity, *q).ok_or_else(
                || {
                    refused(
                        StatusCode::CONFLICT,
                        "RETURN_EXCEEDS_SOLD",
                        format!(
                            "{}: {} sold, {} already returned; {} more cannot come back",
                            l.name, l.quantity, l.returned_quantity, q
                        ),
                    )
                },
            )?;
            total_value = total_value.checked_add(v).ok_or_else(|| anyhow::anyhow!("overflow"))?;
            // The points these units earned go back the same way (cumulative floor).
            let p = crate::domain::returns::value(l.loyalty_points, l.quantity, l.returned_quantity, *q).unwrap_or(0);
            points_back = points_back.saturating_add(p);
            rows.push((l.order_line_id, *q, v));
        }
        let refunds = refunds.unwrap_or_else(|| {
            if total_value > 0 {
                vec![(PaymentMethod::Cash, Money::from_minor(total_value, currency))]
            } else {
                Vec::new()
            }
        });
        let total_refund: i64 = refunds
            .iter()
            .map(|(_, a)| a.minor())
            .try_fold(0i64, i64::checked_add)
            .ok_or_else(|| anyhow::anyhow!("overflow"))?;
        if total_refund > total_value {
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "REFUND_EXCEEDS_VALUE",
                format!(
                    "The returned goods were sold for {}; {} cannot be refunded.",
                    Money::from_minor(total_value, currency).to_decimal_string(),
                    Money::from_minor(total_refund, currency).to_decimal_string()
                ),
            ));
        }
        let restocked = body.restock.unwrap_or(true);
        db::insert(
            &mut tx,
            &NewReturn {
                return_id,
                order_id,
                shop_id: order.shop_id,
                value_minor: total_value,
                refund_minor: total_refund,
                restocked,
                reason,
                created_by: actor,
                lines: &rows,
            },
        )
        .await?;
        let shown = display_number(order.order_number);
        let mut ledger = NewLedger::default();
        let mut changes = Vec::new();
        for (method, amount) in &refunds {
            ledger.id.push(Uuid::now_v7());
            ledger.method.push(method.as_str().to_owned());
            ledger.direction.push("OUT".to_owned());
            ledger.amount.push(amount.minor());
            ledger.source.push("REFUND".to_owned());
            ledger.description.push(format!("Refund, order #{shown}"));
            if *method == PaymentMethod::Wallet {
                changes.push(Change { kind: "REFUND", method: Some("WALLET"), amount: amount.minor(), points: 0 });
            }
        }
        if points_back > 0 {
            changes.push(Change { kind: "LOYALTY_REVERSED", method: None, amount: 0, points: -points_back });
        }
        let context = LedgerContext {
            shop_id: order.shop_id,
            currency: currency.code(),
            order_id: Some(order_id),
            return_id: Some(return_id),
            register_id: order.register_id,
            customer_id: order.customer_id,
            actor_id: Some(actor),
        };
        orders::insert_ledger(&mut tx, &context, &ledger).await?;
        let all_back = lines.iter().all(|l| {
            let now = per_line.iter().find(|(i, _)| lines[*i].order_line_id == l.order_line_id).map_or(0, |(_, q)| *q);
            l.returned_quantity + now == l.quantity
        });
        let status = if all_back { OrderStatus::Refunded } else { OrderStatus::PartiallyRefunded };
        db::set_status(&mut tx, order_id, status.as_str()).await?;
        let wallet_after = match (&turn, order.customer_id) {
            (Some(t), Some(customer)) => Some(
                self.wallets
                    .write(
                        &mut tx,
                        Owner { shop_id: order.shop_id, customer_id: customer },
                        t,
                        &changes,
                        Some(order_id),
                        Some(actor),
                    )
                    .await?,
            ),
            _ => None,
        };
        let items: Vec<ReturnLineView> = per_line
            .iter()
            .zip(&rows)
            .map(|((idx, q), (_, _, v))| {
                let l = &lines[*idx];
                ReturnLineView {
                    order_item_id: l.order_line_id,
                    product_id: l.product_id,
                    barcode: l.barcode.clone(),
                    name: l.name.clone(),
                    quantity: *q,
                    value: Money::from_minor(*v, currency).to_decimal_string(),
                }
            })
            .collect();
        let event = ReturnCompleted {
            return_id,
            order_id,
            order_number: order.order_number,
            shop: shop.brand(),
            currency: currency.code().to_owned(),
            customer_id: order.customer_id,
            customer: order
                .customer_email
                .clone()
                .filter(|_| order.send_receipt)
                .map(|email| Recipient { email, name: order.customer_name.clone() }),
            lines: per_line
                .iter()
                .zip(&rows)
                .map(|((idx, q), (_, _, v))| {
                    let l = &lines[*idx];
                    ReceiptLine {
                        name: l.name.clone(),
                        product_id: Some(l.product_id),
                        barcode: l.barcode.clone(),
                        quantity: *q,
                        unit_price: Money::from_minor(l.sold_price_minor, currency).to_decimal_string(),
                        discount: Money::from_minor(
                            l.sold_price_minor.saturating_mul(*q).saturating_sub(*v).max(0),
                            currency,
                        )
                        .to_decimal_string(),
                        line_total: Money::from_minor(*v, currency).to_decimal_string(),
                        warranty_until: l.warranty_until,
                    }
                })
                .collect(),
            refunds: refunds
                .iter()
                .map(|(m, a)| PaymentLine {
                    method: m.as_str().to_owned(),
                    amount: a.to_decimal_string(),
                    reference: None,
                })
                .collect(),
            total_refund: Money::from_minor(total_refund, currency).to_decimal_string(),
            restocked,
            wallet_balance_after: match &wallet_after {
                Some(Cached::Present(w)) => Some(Money::from_minor(w.balance, currency).to_decimal_string()),
                _ => None,
            },
            completed_at: chrono::Utc::now(),
        };
        bus::enqueue(&mut tx, &event, meta).await?;
        tx.commit().await?;
        if let (Some(t), Some(after)) = (turn, wallet_after) {
            t.finish(after);
        }
        Ok(ReturnView {
            id: return_id,
            order_id,
            order_number: shown,
            order_status: status.as_str().to_owned(),
            items,
            total_value: Money::from_minor(total_value, currency).to_decimal_string(),
            refunds: refunds
                .iter()
                .map(|(m, a)| RefundView { method: m.as_str().to_owned(), amount: a.to_decimal_string() })
                .collect(),
            total_refund: Money::from_minor(total_refund, currency).to_decimal_string(),
            restocked,
            reason: reason.map(str::to_owned),
            created_at: chrono::Utc::now(),
        })
    }
}
