//! The checkout: validate → reserve every line over `stock.rpc` (all or nothing, priced by
//! stock) → price → settle the payments → one transaction books the order, its lines,
//! payments, ledger rows and the `sales.order.completed` event → commit the reservation.
//!
//! Compensation: any failure after the reservation releases it before answering. A lost
//! commit call is covered by stock's consumer of the completed event (it commits by
//! reservation id, idempotently); a process that dies between reserve and booking leaves a
//! reservation that expires after its hold (`ORDER_STOCK_HOLD_SECS`), and nothing booked.
//!
//! Idempotency: the order id is derived from the Idempotency-Key (when there is one) and
//! the reservation id from the order id, so a retry — even one that outlives the stored
//! answer, or follows a crash — reserves the same reservation and finds the same order.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::common::Recipient;
use contracts::sales::{OrderCompleted, PaymentLine, ReceiptLine};
use contracts::stock::{ReservationView, ReserveLine};
use platform::auth::ShopRole;
use platform::idempotency::Claim;
use platform::money::{Currency, Money};

use crate::db::customers::{self, Customer};
use crate::db::orders::{
    self, LedgerContext, LineRow, NewLedger, NewLines, NewOrder, NewPayments, OrderRow, PaymentRow,
};
use crate::db::shops::{self, Shop};
use crate::domain::checkout::{Amounts, Checkout, CustomerRef};
use crate::domain::payment::{self, CreditPolicy, SettleInput, Settlement, Source};
use crate::domain::pricing::{self, Discount, LineInput, Priced};
use crate::domain::types::{display_number, OrderStatus};
use crate::error::Error;
use crate::stock::{Stock, StockCallError};
use crate::view::{self, OrderView};
use crate::wallet::{self, Cached, Change, Owner, PendingEntries, Seen, WalletError, Wallets};

/// Reservation ids of orders: derived, so a retried reserve is the same reservation.
const RESERVATION_NS: Uuid = Uuid::from_u128(0x8a4e_1f20_93c6_4d7b_b5e2_0c9a_7f31_d6e8);

pub fn reservation_for(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&RESERVATION_NS, order_id.as_bytes())
}

/// The reservation of one attempt to complete a draft (the draft's own, taken only to price
/// it, was released at once; a refused attempt releases its own, so each attempt has one, and
/// a keyed retry of the same attempt finds it again).
pub fn completion_reservation_for(order_id: Uuid, attempt: Uuid) -> Uuid {
    Uuid::new_v5(&RESERVATION_NS, format!("{order_id}:complete:{attempt}").as_bytes())
}

/// What a checkout books.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A new order; `retry_possible` when an Idempotency-Key names it (it may be booked).
    New { retry_possible: bool },
    /// The saved draft with this number, completed now; `attempt` names this try (the
    /// Idempotency-Key's effect id, or a new id).
    Draft { number: i64, attempt: Uuid },
}

/// The ids a booking writes under.
#[derive(Debug, Clone, Copy)]
struct Booking {
    order_id: Uuid,
    reservation_id: Uuid,
    draft_number: Option<i64>,
}

/// Where a keyed request's answer goes: written in the booking's own transaction, so the
/// order and its answer commit together (one commit fewer per checkout).
#[derive(Debug, Clone, Copy)]
pub struct AnswerTo<'a> {
    pub claim: &'a Claim,
    pub status: StatusCode,
}

/// A placed order, and the answer the booking stored under the request's key, if it did.
#[derive(Debug)]
pub struct Placed {
    pub view: OrderView,
    pub stored: Option<serde_json::Value>,
}

/// Who is ringing the sale up.
#[derive(Debug, Clone, Copy)]
pub struct Cashier {
    pub user_id: Uuid,
    pub role: ShopRole,
}

#[derive(Clone)]
pub struct Sales {
    pub pool: PgPool,
    pub stock: Stock,
    pub wallets: Wallets,
    /// Fault injection for tests only (zero otherwise): see `Config::test_pause_after_reserve`.
    pub pause_after_reserve: std::time::Duration,
}

impl Sales {
    /// Places (or, with `status: DRAFT`, saves) an order. `order_id` is the key's effect id,
    /// or a new id when the till sent no key.
    #[tracing::instrument(skip_all, fields(order_id = %order_id, shop_id = %checkout.shop_id))]
    pub async fn place(
        &self,
        cashier: Cashier,
        checkout: Checkout,
        order_id: Uuid,
        target: Target,
        meta: &MessageMeta,
        answer: Option<AnswerTo<'_>>,
    ) -> Result<Placed, Error> {
        let named = match &checkout.customer {
            CustomerRef::Id(id) => Some(*id),
            CustomerRef::None | CustomerRef::WalkIn { .. } => None,
        };
        let found = shops::for_sale(&self.pool, checkout.shop_id, order_id, named).await?.ok_or(Error::ShopNotFound)?;
        if found.booked && matches!(target, Target::New { .. }) {
            // A re-run after a lost answer or a crash: the order was booked by the first run.
            let view = self.view(order_id).await?.ok_or_else(|| anyhow::anyhow!("order {order_id} vanished"))?;
            return Ok(Placed { view, stored: None });
        }
        let shop = found.shop;
        // The wallet row read with the shop is the named customer's; a walk-in's is not read.
        let wallet_seen = match &checkout.customer {
            CustomerRef::Id(_) => found.wallet,
            CustomerRef::None | CustomerRef::WalkIn { .. } => Seen::Nothing,
        };
        let currency: Currency = shop
            .currency
            .parse()
            .map_err(|_| anyhow::anyhow!("shop {} has currency {}", shop.shop_id, shop.currency))?;
        let amounts = checkout.amounts(currency)?;
        let customer = match (&checkout.customer, found.customer) {
            (CustomerRef::None, _) => None,
            (CustomerRef::Id(_), Some(c)) => Some(c),
            (CustomerRef::Id(id), None) => {
                // Not the shop's customer yet: a registered user buying here the first time.
                let mut conn = self.pool.acquire().await?;
                Some(customers::by_id(&mut conn, shop.shop_id, *id).await?.ok_or(Error::CustomerNotFound)?)
            }
            (CustomerRef::WalkIn { name, email, phone }, _) => {
                let mut conn = self.pool.acquire().await?;
                Some(
                    customers::walk_in(&mut conn, shop.shop_id, name.as_deref(), email.as_deref(), phone.as_deref())
                        .await?,
                )
            }
        };

        let (reservation_id, draft_number) = match target {
            Target::New { .. } => (reservation_for(order_id), None),
            Target::Draft { number, attempt } => (completion_reservation_for(order_id, attempt), Some(number)),
        };
        let mut booking = Booking { order_id, reservation_id, draft_number };
        let reserved = if checkout.lines.is_empty() {
            None
        } else {
            let lines: Vec<ReserveLine> = checkout
                .lines
                .iter()
                .map(|l| ReserveLine { product_id: l.product_id, barcode: l.barcode.clone(), quantity: l.quantity })
                .collect();
            let mut attempt = self.stock.reserve(reservation_id, shop.shop_id, lines.clone(), meta).await;
            if matches!(&attempt, Err(StockCallError::Refused { code, .. }) if code == "RESERVATION_EXPIRED")
                && matches!(target, Target::New { retry_possible: true })
            {
                // A retry after the first run died: its reservation expired (or was released)
                // before it booked anything. The idempotency row lets one run at a time, so a
                // fresh reservation cannot hold stock twice.
                booking.reservation_id =
                    Uuid::new_v5(&RESERVATION_NS, format!("{order_id}:{}", Uuid::now_v7()).as_bytes());
                attempt = self.stock.reserve(booking.reservation_id, shop.shop_id, lines, meta).await;
            }
            match attempt {
                Ok(v) => Some(v),
                Err(e) => {
                    if matches!(e, StockCallError::Unavailable(_)) {
                        // It may have been reserved after all: let it go now, not at its TTL.
                        self.stock.release(booking.reservation_id, shop.shop_id, meta).await;
                    }
                    return Err(e.into());
                }
            }
        };
        let reservation_id = booking.reservation_id;
        if !self.pause_after_reserve.is_zero() && reserved.is_some() {
            tokio::time::sleep(self.pause_after_reserve).await;
        }
        // From here on, a failure releases what was reserved. A booking that lost its
        // wallet's compare-and-set to another instance books again with the wallet read
        // anew (its transaction rolled back whole: no number, no row).
        let (shop_ref, checkout_ref, amounts_ref) = (&shop, &checkout, &amounts);
        let (customer_ref, reserved_ref) = (customer.as_ref(), reserved.as_ref());
        let outcome = wallet::until_its_turn(
            |e: &Error| matches!(e, Error::Wallet(WalletError::Conflict)),
            |first| {
                let seen = if first { wallet_seen.clone() } else { Seen::Nothing };
                self.book(
                    shop_ref,
                    currency,
                    cashier,
                    checkout_ref,
                    amounts_ref,
                    customer_ref,
                    seen,
                    booking,
                    reserved_ref,
                    meta,
                    answer,
                )
            },
        )
        .await;
        match outcome {
            Ok(placed) => {
                if reserved.is_some() && !checkout.draft {
                    if let Err(e) = self.stock.commit(reservation_id, shop.shop_id, order_id, meta).await {
                        // The completed event carries the reservation: stock commits it from there.
                        tracing::warn!(error = %e, "commit call failed; stock commits from the order event");
                    }
                }
                if checkout.draft && reserved.is_some() {
                    // A draft holds nothing: it was reserved only to be priced.
                    self.stock.release(reservation_id, shop.shop_id, meta).await;
                }
                Ok(placed)
            }
            Err(e) => {
                if reserved.is_some() {
                    self.stock.release(reservation_id, shop.shop_id, meta).await;
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one step of one flow; a struct would only rename them")]
    async fn book(
        &self,
        shop: &Shop,
        currency: Currency,
        cashier: Cashier,
        checkout: &Checkout,
        amounts: &Amounts,
        customer: Option<&Customer>,
        wallet_seen: Seen,
        booking: Booking,
        reserved: Option<&ReservationView>,
        meta: &MessageMeta,
        answer: Option<AnswerTo<'_>>,
    ) -> Result<Placed, Error> {
        let order_id = booking.order_id;
        let reserved_lines = reserved.map(|r| r.lines.as_slice()).unwrap_or_default();
        if reserved_lines.len() != checkout.lines.len() {
            return Err(anyhow::anyhow!(
                "stock answered {} lines for {} asked",
                reserved_lines.len(),
                checkout.lines.len()
            )
            .into());
        }
        if let Some(r) = reserved {
            if r.currency != shop.currency {
                return Err(
                    anyhow::anyhow!("stock prices in {} but the shop is in {}", r.currency, shop.currency).into()
                );
            }
        }
        let mut inputs = Vec::with_capacity(reserved_lines.len());
        for (line, custom) in reserved_lines.iter().zip(&amounts.custom_prices) {
            let parse = |s: &str| Money::parse(s, currency).map_err(|e| anyhow::anyhow!("stock sent price {s}: {e}"));
            inputs.push(LineInput {
                quantity: line.quantity,
                list_price: parse(&line.list_price)?,
                unit_price: parse(&line.unit_price)?,
                custom_price: *custom,
            });
        }
        let priced = pricing::price(currency, &inputs, amounts.discount)?;
        if priced.lines.iter().any(|l| l.overridden) && cashier.role < ShopRole::ShopOwner && !shop.staff_price_override
        {
            return Err(Error::PriceOverrideForbidden);
        }

        let status = if checkout.draft { OrderStatus::Draft } else { OrderStatus::Completed };
        // A named customer's wallet is this sale's to change until it is booked: its turn
        // is taken before the balance is read and handed back after the commit.
        let turn = match (customer, checkout.draft) {
            (Some(c), false) => Some(self.wallets.turn_seen(shop.shop_id, c.customer_id, wallet_seen).await?),
            _ => None,
        };
        let wallet_before = turn.as_ref().map(|t| match &t.state {
            Cached::Present(w) => Money::from_minor(w.balance, currency),
            Cached::Absent | Cached::Unknown => Money::zero(currency),
        });
        let settlement = if checkout.draft {
            None
        } else {
            let input = SettleInput {
                total: priced.total,
                to_wallet: amounts.to_wallet,
                declared_due: amounts.declared_due,
                change_to_wallet: checkout.change_to_wallet,
                wallet_balance: wallet_before,
                credit: CreditPolicy {
                    allowed: shop.allow_credit,
                    limit: Money::from_minor(shop.credit_limit_minor, currency),
                },
            };
            Some(payment::settle(currency, &input, &amounts.tenders)?)
        };
        let points: i64 = reserved_lines.iter().map(|l| l.loyalty_points.saturating_mul(l.quantity).max(0)).sum();
        let changes = match (&settlement, wallet_before) {
            (Some(s), Some(before)) => wallet_changes(s, amounts.to_wallet, before, points),
            _ => Vec::new(),
        };

        let mut tx = self.pool.begin().await?;
        let record = NewOrder {
            order_id,
            shop_id: shop.shop_id,
            status: status.as_str(),
            customer_id: customer.map(|c| c.customer_id),
            register_id: checkout.register_id,
            currency: currency.code(),
            subtotal_minor: priced.subtotal.minor(),
            discount_minor: priced.discount.minor(),
            total_minor: priced.total.minor(),
            paid_minor: settlement.map_or(0, |s| s.tendered.minor()),
            change_minor: settlement.map_or(0, |s| s.change.minor()),
            due_minor: settlement.map_or(0, |s| s.due.minor()),
            discount_type: amounts.discount.map(|d| match d {
                Discount::Percentage(_) => "PERCENTAGE",
                Discount::Fixed(_) => "FIXED",
            }),
            discount_value: amounts.discount.map(|d| match d {
                Discount::Percentage(bp) => Money::from_minor(bp, Currency::USD).to_decimal_string(),
                Discount::Fixed(m) => m.to_decimal_string(),
            }),
            reservation_id: booking.reservation_id,
            send_receipt: checkout.send_receipt,
            note: checkout.note.as_deref(),
            created_by: cashier.user_id,
            completed: !checkout.draft,
        };
        let lines = new_lines(reserved_lines, &priced, cashier.user_id);
        let mut payments = NewPayments::default();
        if settlement.is_some() {
            for (t, reference) in amounts.tenders.iter().zip(&amounts.references) {
                payments.id.push(Uuid::now_v7());
                payments.method.push(t.method.as_str().to_owned());
                payments.amount.push(t.amount.minor());
                payments.reference.push(reference.clone());
            }
        }
        // The wallet first: the shop row's lock (the order number) is held until commit, so
        // it is taken as late as the rows that name the order allow.
        // A new order's number is taken in the statement that swaps the wallet's state.
        let wallet = match (&turn, customer) {
            (Some(t), Some(c)) => Some(
                self.wallets
                    .stage_state(&mut tx, Owner { shop_id: shop.shop_id, customer_id: c.customer_id }, t, &changes)
                    .await?,
            ),
            _ => None,
        };
        let swap = wallet.as_ref().and_then(|w| w.swap.as_ref());
        let (number, created_at) = match booking.draft_number {
            None => {
                let (number, created_at) = orders::insert_numbered(&mut tx, &record, swap).await?.ok_or_else(|| {
                    if swap.is_some() {
                        Error::Wallet(WalletError::Conflict)
                    } else {
                        anyhow::anyhow!("shop {} has no row to number its order", shop.shop_id).into()
                    }
                })?;
                (number, Some(created_at))
            }
            Some(number) => {
                if let Some(swap) = swap {
                    swap.run(&mut tx).await?;
                }
                // Re-priced now: the draft's lines give way to what stock reserved.
                if !orders::complete_draft(&mut tx, &record).await? {
                    return Err(Error::OrderState("no longer a draft".into()));
                }
                orders::delete_lines(&mut tx, order_id).await?;
                (number, None)
            }
        };
        let context = LedgerContext {
            shop_id: shop.shop_id,
            currency: currency.code(),
            order_id: Some(order_id),
            return_id: None,
            register_id: checkout.register_id,
            customer_id: customer.map(|c| c.customer_id),
            actor_id: Some(cashier.user_id),
        };
        let ledger = match &settlement {
            Some(s) => new_ledger(&amounts.tenders, s, wallet_before, number)?,
            None => NewLedger::default(),
        };
        let (wallet_after, entries) = match wallet {
            Some(staged) => (Some(staged.after), staged.entries),
            None => (None, PendingEntries::default()),
        };
        let event = match &settlement {
            Some(s) => {
                let event = completed_event(
                    shop,
                    currency,
                    booking,
                    number,
                    checkout,
                    customer,
                    reserved_lines,
                    &priced,
                    s,
                    amounts,
                );
                Some(bus::OutboxRow::new(&event, meta)?)
            }
            None => None,
        };
        // A new order is answered from what is written: the same rows a read would return.
        // Its answer is stored under the key with the details, in this transaction.
        let written = match created_at {
            Some(created_at) => {
                let row = booked_row(&record, number, created_at, customer);
                let (lines, payments) = booked_details(order_id, &lines, &payments, created_at);
                Some(view::orders(vec![row], lines, payments).pop().ok_or_else(|| anyhow::anyhow!("no view"))?)
            }
            None => None,
        };
        let stored = match (&written, answer) {
            (Some(view), Some(answer)) => Some((answer, serde_json::to_value(view).map_err(anyhow::Error::new)?)),
            _ => None,
        };
        orders::insert_details(
            &mut tx,
            order_id,
            &lines,
            &payments,
            &context,
            &ledger,
            &entries.columns(),
            event.as_ref(),
            stored.as_ref().map(|(a, body)| a.claim.answer(a.status, body)),
        )
        .await?;
        let stored = stored.map(|(_, body)| body);
        tx.commit().await?;
        if let (Some(t), Some(after)) = (turn, wallet_after) {
            t.finish(after);
        }
        let view = match written {
            Some(view) => view,
            None => {
                self.view(order_id).await?.ok_or_else(|| anyhow::anyhow!("order {order_id} vanished after booking"))?
            }
        };
        Ok(Placed { view, stored })
    }

    /// Completes a saved draft: its lines are reserved and priced again now, then paid and
    /// booked as any sale, under the draft's number.
    pub async fn complete(
        &self,
        cashier: Cashier,
        order_id: Uuid,
        payment: crate::domain::checkout::CompletionBody,
        attempt: Uuid,
        meta: &MessageMeta,
    ) -> Result<OrderView, Error> {
        let order = orders::by_id(&self.pool, order_id).await?.ok_or(Error::OrderNotFound)?;
        if order.status != OrderStatus::Draft.as_str() {
            return Err(Error::OrderState(order.status));
        }
        let (lines, _) = orders::details(&self.pool, &[order_id]).await?;
        let currency: Currency =
            order.currency.parse().map_err(|_| anyhow::anyhow!("order currency {}", order.currency))?;
        let saved = lines
            .iter()
            .map(|l| crate::domain::checkout::LineRequest {
                product_id: Some(l.product_id),
                barcode: l.barcode.clone(),
                quantity: l.quantity,
                custom_price: l.override_by.map(|_| {
                    platform::money::MoneyInput::new(
                        Money::from_minor(l.sold_price_minor, currency).to_decimal_string(),
                    )
                }),
            })
            .collect();
        let checkout = Checkout::completing(
            order.shop_id,
            order.customer_id,
            saved,
            order.discount_type.as_deref(),
            order.discount_value.as_deref(),
            order.note.clone(),
            payment,
        )?;
        let target = Target::Draft { number: order.order_number, attempt };
        Ok(self.place(cashier, checkout, order_id, target, meta, None).await?.view)
    }

    /// Cancels a DRAFT or PENDING order: it holds nothing afterwards (a draft's pricing
    /// reservation was released when it was saved; the event lets stock release whatever is
    /// left, idempotently). A completed sale is undone by a return, not a cancel.
    pub async fn cancel(&self, order_id: Uuid, meta: &MessageMeta) -> Result<OrderView, Error> {
        let mut tx = self.pool.begin().await?;
        let Some((shop_id, reservation_id)) = orders::cancel(&mut tx, order_id).await? else {
            let current = orders::by_id(&self.pool, order_id).await?.ok_or(Error::OrderNotFound)?;
            return Err(Error::OrderState(current.status));
        };
        let event = contracts::sales::OrderCancelled {
            order_id,
            shop_id,
            reservation_id: Some(reservation_id),
            cancelled_at: chrono::Utc::now(),
        };
        bus::enqueue(&mut tx, &event, meta).await?;
        tx.commit().await?;
        self.stock.release(reservation_id, shop_id, meta).await;
        self.view(order_id).await?.ok_or(Error::OrderNotFound)
    }

    pub async fn view(&self, order_id: Uuid) -> Result<Option<OrderView>, Error> {
        let Some(row) = orders::by_id(&self.pool, order_id).await? else { return Ok(None) };
        let (lines, payments) = orders::details(&self.pool, &[order_id]).await?;
        Ok(view::orders(vec![row], lines, payments).pop())
    }
}

/// The order row a new booking wrote (`now()` of its transaction is `created_at`).
fn booked_row(o: &NewOrder<'_>, number: i64, created_at: DateTime<Utc>, customer: Option<&Customer>) -> OrderRow {
    OrderRow {
        order_id: o.order_id,
        shop_id: o.shop_id,
        order_number: number,
        status: o.status.to_owned(),
        customer_id: o.customer_id,
        register_id: o.register_id,
        currency: o.currency.to_owned(),
        subtotal_minor: o.subtotal_minor,
        discount_minor: o.discount_minor,
        total_minor: o.total_minor,
        paid_minor: o.paid_minor,
        change_minor: o.change_minor,
        due_minor: o.due_minor,
        discount_type: o.discount_type.map(str::to_owned),
        discount_value: o.discount_value.clone(),
        reservation_id: o.reservation_id,
        send_receipt: o.send_receipt,
        note: o.note.map(str::to_owned),
        created_by: o.created_by,
        created_at,
        updated_at: created_at,
        completed_at: o.completed.then_some(created_at),
        customer_name: customer.and_then(|c| c.name.clone()),
        customer_email: customer.and_then(|c| c.email.clone()),
        customer_phone: customer.and_then(|c| c.phone.clone()),
    }
}

/// The line and payment rows a new booking wrote.
fn booked_details(
    order_id: Uuid,
    l: &NewLines,
    p: &NewPayments,
    created_at: DateTime<Utc>,
) -> (Vec<LineRow>, Vec<PaymentRow>) {
    let lines = (0..l.id.len())
        .map(|i| LineRow {
            order_line_id: l.id[i],
            order_id,
            product_id: l.product_id[i],
            item_id: l.item_id[i],
            barcode: l.barcode[i].clone(),
            name: l.name[i].clone(),
            quantity: l.quantity[i],
            list_price_minor: l.list_price[i],
            unit_price_minor: l.unit_price[i],
            sold_price_minor: l.sold_price[i],
            override_by: l.override_by[i],
            discount_minor: l.discount[i],
            line_total_minor: l.line_total[i],
            warranty_until: l.warranty_until[i],
            loyalty_points: l.loyalty_points[i],
        })
        .collect();
    let payments = (0..p.id.len())
        .map(|i| PaymentRow {
            payment_id: p.id[i],
            order_id,
            method: p.method[i].clone(),
            amount_minor: p.amount[i],
            reference: p.reference[i].clone(),
            created_at,
        })
        .collect();
    (lines, payments)
}

/// The wallet entries of a settled sale: its wallet payment, money paid in (a due payment
/// up to what was owed, a top-up beyond), change kept, a new due, and the loyalty points the
/// goods earn.
fn wallet_changes(s: &Settlement, paid_in: Money, before: Money, points: i64) -> Vec<Change> {
    let mut changes = Vec::new();
    if s.wallet_debit.minor() > 0 {
        changes.push(Change {
            kind: "SALE_PAYMENT",
            method: Some("WALLET"),
            amount: -s.wallet_debit.minor(),
            points: 0,
        });
    }
    let owed = before.minor().min(0).saturating_neg();
    let paid_in = paid_in.minor().min(s.to_wallet.minor());
    let paying_due = paid_in.min(owed);
    if paying_due > 0 {
        changes.push(Change { kind: "DUE_PAYMENT", method: None, amount: paying_due, points: 0 });
    }
    if paid_in - paying_due > 0 {
        changes.push(Change { kind: "TOP_UP", method: None, amount: paid_in - paying_due, points: 0 });
    }
    let kept = s.to_wallet.minor() - paid_in;
    if kept > 0 {
        changes.push(Change { kind: "CHANGE", method: Some("CASH"), amount: kept, points: 0 });
    }
    if s.due.minor() > 0 {
        changes.push(Change { kind: "DUE", method: None, amount: -s.due.minor(), points: 0 });
    }
    if points > 0 {
        changes.push(Change { kind: "LOYALTY_EARNED", method: None, amount: 0, points });
    }
    changes
}

fn new_lines(reserved: &[contracts::stock::ReservedLine], priced: &Priced, cashier: Uuid) -> NewLines {
    let mut l = NewLines::default();
    for (i, (r, p)) in reserved.iter().zip(&priced.lines).enumerate() {
        l.id.push(Uuid::now_v7());
        l.position.push(i32::try_from(i).unwrap_or(i32::MAX));
        l.product_id.push(r.product_id);
        l.item_id.push(r.item_id);
        l.barcode.push(r.barcode.clone());
        l.name.push(r.name.clone());
        l.quantity.push(r.quantity);
        l.list_price.push(Money::parse(&r.list_price, p.sold_price.currency()).map_or(0, |m| m.minor()));
        l.unit_price.push(Money::parse(&r.unit_price, p.sold_price.currency()).map_or(0, |m| m.minor()));
        l.sold_price.push(p.sold_price.minor());
        l.override_by.push(p.overridden.then_some(cashier));
        l.discount.push(p.discount.minor());
        l.line_total.push(p.total.minor());
        l.warranty_until.push(r.warranty_until);
        l.loyalty_points.push(r.loyalty_points.saturating_mul(r.quantity).max(0));
    }
    l
}

fn new_ledger(
    tenders: &[payment::Tender],
    s: &Settlement,
    balance_before: Option<Money>,
    number: i64,
) -> Result<NewLedger, Error> {
    let mut l = NewLedger::default();
    let shown = display_number(number);
    for mv in payment::ledger_moves(tenders, s, balance_before).map_err(|e| Error::Internal(e.into()))? {
        l.id.push(Uuid::now_v7());
        l.method.push(mv.method.as_str().to_owned());
        l.direction.push(if mv.outgoing { "OUT" } else { "IN" }.to_owned());
        l.amount.push(mv.amount.minor());
        l.source.push(mv.source.as_str().to_owned());
        l.description.push(match mv.source {
            Source::Sale => format!("Order #{shown}"),
            Source::Change => format!("Change, order #{shown}"),
            Source::DuePayment => format!("Due payment, order #{shown}"),
            Source::WalletTopUp => format!("Wallet top-up, order #{shown}"),
        });
    }
    Ok(l)
}

#[allow(clippy::too_many_arguments, reason = "assembles one event from the booking's parts")]
fn completed_event(
    shop: &Shop,
    currency: Currency,
    booking: Booking,
    number: i64,
    checkout: &Checkout,
    customer: Option<&Customer>,
    reserved: &[contracts::stock::ReservedLine],
    priced: &Priced,
    s: &Settlement,
    amounts: &Amounts,
) -> OrderCompleted {
    let recipient = customer
        .filter(|_| checkout.send_receipt)
        .and_then(|c| c.email.as_ref().map(|email| Recipient { email: email.clone(), name: c.name.clone() }));
    OrderCompleted {
        order_id: booking.order_id,
        reservation_id: (!reserved.is_empty()).then_some(booking.reservation_id),
        order_number: number,
        shop: shop.brand(),
        currency: currency.code().to_owned(),
        customer_id: customer.map(|c| c.customer_id),
        customer: recipient,
        lines: reserved
            .iter()
            .zip(&priced.lines)
            .map(|(r, p)| ReceiptLine {
                name: r.name.clone(),
                product_id: Some(r.product_id),
                barcode: r.barcode.clone(),
                quantity: r.quantity,
                unit_price: p.sold_price.to_decimal_string(),
                discount: p.discount.to_decimal_string(),
                line_total: p.total.to_decimal_string(),
                warranty_until: r.warranty_until,
            })
            .collect(),
        subtotal: priced.subtotal.to_decimal_string(),
        discount_total: priced.discount.to_decimal_string(),
        total: priced.total.to_decimal_string(),
        payments: amounts
            .tenders
            .iter()
            .zip(&amounts.references)
            .map(|(t, r)| PaymentLine {
                method: t.method.as_str().to_owned(),
                amount: t.amount.to_decimal_string(),
                reference: r.clone(),
            })
            .collect(),
        change: s.change.to_decimal_string(),
        wallet_balance_after: s.wallet_after.map(|m| m.to_decimal_string()),
        cashier_name: None,
        completed_at: chrono::Utc::now(),
    }
}
