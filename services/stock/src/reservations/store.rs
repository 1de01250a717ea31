//! The product actor's storage: its state read from the rows (`load`), and a batch of its
//! applied operations written in one transaction (`Batch::write`). The actor decides what a
//! batch holds (typed rows: reservations, lines, ledger movements, unit changes, settled
//! reservations, events); this module knows how they are stored.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use bus::MessageMeta;
use contracts::common::{Recipient, ShopBrand};
use contracts::stock::{LevelChanged, LevelLow};
use platform::Currency;

use super::actor::{Hold, State, Tracking, Unit};
use super::{HeldLine, Level};

/// One row of the stock ledger (`stock.movements`).
#[derive(Debug, Clone)]
pub struct Movement {
    pub kind: &'static str,
    pub on_hand: i64,
    pub reserved: i64,
    pub item: Option<Uuid>,
    pub reason: Option<String>,
    pub actor: Option<Uuid>,
    /// The reservation, return or idempotency effect it belongs to.
    pub source: Option<Uuid>,
    pub order: Option<Uuid>,
    pub unit_cost: Option<i64>,
    pub supplier: Option<Uuid>,
}

impl Movement {
    pub fn new(kind: &'static str, on_hand: i64, reserved: i64) -> Self {
        Self {
            kind,
            on_hand,
            reserved,
            item: None,
            reason: None,
            actor: None,
            source: None,
            order: None,
            unit_cost: None,
            supplier: None,
        }
    }
}

/// What settling a reservation's lines records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Committed,
    Released,
    Expired,
}

impl Settled {
    fn as_str(self) -> &'static str {
        match self {
            Settled::Committed => "COMMITTED",
            Settled::Released => "RELEASED",
            Settled::Expired => "EXPIRED",
        }
    }
}

/// A low-stock crossing, announced to the shop's owner.
#[derive(Debug, Clone)]
pub struct Low {
    pub product_name: String,
    pub available: i64,
    pub keeping_units: i64,
}

/// Everything one flush of a product writes, in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub product_id: Uuid,
    pub shop_id: Uuid,
    /// New reservation headers: (reservation, expires at).
    pub headers: Vec<(Uuid, DateTime<Utc>)>,
    /// Their lines of this product.
    pub lines: Vec<(Uuid, HeldLine)>,
    pub movements: Vec<Movement>,
    /// Bulk level changes (zero for serialized products).
    pub on_hand_delta: i64,
    pub reserved_delta: i64,
    /// Units held: (unit, reservation).
    pub held_units: Vec<(Uuid, Uuid)>,
    pub freed_units: Vec<Uuid>,
    /// Units sold: (unit, order).
    pub sold_units: Vec<(Uuid, Option<Uuid>)>,
    pub returned_units: Vec<Uuid>,
    pub removed_units: Vec<Uuid>,
    /// Reservations whose lines of this product settle.
    pub settled: Vec<(Uuid, Settled)>,
    /// Orders to link to committed reservations.
    pub orders: Vec<(Uuid, Uuid)>,
    /// `stock.level.changed`, when what is on hand moved.
    pub level_changed: Option<Level>,
    pub low: Option<Low>,
}

impl Batch {
    pub fn new(product_id: Uuid, shop_id: Uuid) -> Self {
        Self { product_id, shop_id, ..Self::default() }
    }

    /// Writes the batch and its events (carrying `meta`) in one transaction.
    pub async fn write(&self, pool: &PgPool, meta: &MessageMeta) -> anyhow::Result<()> {
        let mut tx = pool.begin().await.context("starting the batch")?;
        self.write_rows(&mut tx).await?;
        self.settle(&mut tx).await?;
        self.announce(&mut tx, meta).await?;
        tx.commit().await.context("committing the batch")?;
        Ok(())
    }

    /// Headers, lines, the ledger and the level in one statement (one round trip for the
    /// whole batch on the common path), then the units.
    async fn write_rows(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        let (h_id, h_exp): (Vec<Uuid>, Vec<DateTime<Utc>>) = self.headers.iter().copied().unzip();
        let l_res: Vec<Uuid> = self.lines.iter().map(|(r, _)| *r).collect();
        let l_no: Vec<i32> = self.lines.iter().map(|(_, l)| l.line_no).collect();
        let l_unit: Vec<i32> = self.lines.iter().map(|(_, l)| l.unit_no).collect();
        let l_item: Vec<Option<Uuid>> = self.lines.iter().map(|(_, l)| l.item_id).collect();
        let l_qty: Vec<i32> = self.lines.iter().map(|(_, l)| n(l.quantity)).collect();
        let l_name: Vec<String> = self.lines.iter().map(|(_, l)| l.name.clone()).collect();
        let l_price: Vec<i64> = self.lines.iter().map(|(_, l)| l.unit_price_minor).collect();
        let m = &self.movements;
        let m_kind: Vec<&str> = m.iter().map(|m| m.kind).collect();
        let m_on: Vec<i32> = m.iter().map(|m| n(m.on_hand)).collect();
        let m_res: Vec<i32> = m.iter().map(|m| n(m.reserved)).collect();
        let m_item: Vec<Option<Uuid>> = m.iter().map(|m| m.item).collect();
        let m_reason: Vec<Option<String>> = m.iter().map(|m| m.reason.clone()).collect();
        let m_actor: Vec<Option<Uuid>> = m.iter().map(|m| m.actor).collect();
        let m_source: Vec<Option<Uuid>> = m.iter().map(|m| m.source).collect();
        let m_order: Vec<Option<Uuid>> = m.iter().map(|m| m.order).collect();
        let m_cost: Vec<Option<i64>> = m.iter().map(|m| m.unit_cost).collect();
        let m_supplier: Vec<Option<Uuid>> = m.iter().map(|m| m.supplier).collect();
        // `as _` on the arrays of optional values: the macro infers `uuid[]` as `Vec<Uuid>`,
        // but these arrays carry nulls.
        sqlx::query!(
            "with h as (
                 insert into stock.reservations (reservation_id, shop_id, expires_at)
                 select r, $2, e from unnest($3::uuid[], $4::timestamptz[]) as t(r, e)
                 on conflict (reservation_id) do nothing),
             l as (
                 insert into stock.reservation_lines (reservation_id, line_no, unit_no, product_id, item_id, quantity, name, unit_price_minor)
                 select r, n, u, $1, i, q, nm, pr
                   from unnest($5::uuid[], $6::int[], $7::int[], $8::uuid[], $9::int[], $10::text[], $11::bigint[])
                     as t(r, n, u, i, q, nm, pr)),
             m as (
                 insert into stock.movements (shop_id, product_id, kind, on_hand_delta, reserved_delta, item_id, reason, actor_id,
                                              reservation_id, order_id, unit_cost_minor, supplier_id)
                 select $2, $1, k, o, rd, i, re, a, rv, od, c, su
                   from unnest($12::text[], $13::int[], $14::int[], $15::uuid[], $16::text[], $17::uuid[], $18::uuid[],
                               $19::uuid[], $20::bigint[], $23::uuid[]) as t(k, o, rd, i, re, a, rv, od, c, su)),
             v as (
                 update stock.levels set on_hand = on_hand + $21, reserved = reserved + $22, updated_at = now()
                  where product_id = $1 and ($21 <> 0 or $22 <> 0))
             select 1 as done",
            self.product_id,
            self.shop_id,
            &h_id,
            &h_exp,
            &l_res,
            &l_no,
            &l_unit,
            &l_item as _,
            &l_qty,
            &l_name,
            &l_price,
            &m_kind as _,
            &m_on,
            &m_res,
            &m_item as _,
            &m_reason as _,
            &m_actor as _,
            &m_source as _,
            &m_order as _,
            &m_cost as _,
            i32::try_from(self.on_hand_delta)?,
            i32::try_from(self.reserved_delta)?,
            &m_supplier as _
        )
        .fetch_one(&mut *tx)
        .await
        .context("writing the batch's reservations, lines, movements and level")?;
        if !self.held_units.is_empty() {
            let (items, by): (Vec<Uuid>, Vec<Uuid>) = self.held_units.iter().copied().unzip();
            let n = sqlx::query!(
                "update stock.items i set status = 'RESERVED', reservation_id = t.r
                   from unnest($1::uuid[], $2::uuid[]) as t(item, r)
                  where i.item_id = t.item and i.status = 'AVAILABLE'",
                &items,
                &by
            )
            .execute(&mut *tx)
            .await
            .context("holding units")?
            .rows_affected();
            anyhow::ensure!(n == items.len() as u64, "a unit to hold was not available in the database");
        }
        if !self.freed_units.is_empty() {
            sqlx::query!(
                "update stock.items set status = 'AVAILABLE', reservation_id = null
                  where item_id = any($1) and status = 'RESERVED'",
                &self.freed_units
            )
            .execute(&mut *tx)
            .await
            .context("freeing units")?;
        }
        if !self.sold_units.is_empty() {
            let (items, orders): (Vec<Uuid>, Vec<Option<Uuid>>) = self.sold_units.iter().copied().unzip();
            sqlx::query!(
                "update stock.items i set status = 'SOLD', reservation_id = null, order_id = t.o, sold_at = now()
                   from unnest($1::uuid[], $2::uuid[]) as t(item, o) where i.item_id = t.item",
                &items,
                &orders as _
            )
            .execute(&mut *tx)
            .await
            .context("selling units")?;
        }
        if !self.removed_units.is_empty() {
            let n = sqlx::query!(
                "update stock.items set status = 'REMOVED' where item_id = any($1) and status = 'AVAILABLE'",
                &self.removed_units
            )
            .execute(&mut *tx)
            .await
            .context("removing units")?
            .rows_affected();
            anyhow::ensure!(n == self.removed_units.len() as u64, "a unit to remove was not available in the database");
        }
        if !self.returned_units.is_empty() {
            sqlx::query!(
                "update stock.items set status = 'AVAILABLE', order_id = null, sold_at = null
                  where item_id = any($1) and status = 'SOLD'",
                &self.returned_units
            )
            .execute(&mut *tx)
            .await
            .context("returning units")?;
        }
        Ok(())
    }

    /// Settles this product's lines of the settled reservations; a header follows once no
    /// line of it is held.
    async fn settle(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        for outcome in [Settled::Committed, Settled::Released, Settled::Expired] {
            let ids: Vec<Uuid> = self.settled.iter().filter(|(_, s)| *s == outcome).map(|(r, _)| *r).collect();
            if ids.is_empty() {
                continue;
            }
            let status = outcome.as_str();
            sqlx::query!(
                "update stock.reservation_lines set status = $3
                  where reservation_id = any($1) and product_id = $2 and status = 'HELD'",
                &ids,
                self.product_id,
                status
            )
            .execute(&mut *tx)
            .await
            .context("settling reservation lines")?;
            // Locked in id order, so two products settling one reservation serialise here
            // and the last one sees all its lines settled.
            sqlx::query!(
                "select 1 as locked from stock.reservations where reservation_id = any($1) order by reservation_id for update",
                &ids
            )
            .fetch_all(&mut *tx)
            .await
            .context("locking reservation headers")?;
            sqlx::query!(
                "update stock.reservations r set status = $2, settled_at = now()
                  where r.reservation_id = any($1) and r.status = 'HELD'
                    and not exists (select 1 from stock.reservation_lines l
                                     where l.reservation_id = r.reservation_id and l.status = 'HELD')",
                &ids,
                status
            )
            .execute(&mut *tx)
            .await
            .context("settling reservation headers")?;
        }
        for (r, o) in &self.orders {
            sqlx::query!(
                "update stock.reservations set order_id = coalesce(order_id, $2) where reservation_id = $1",
                r,
                o
            )
            .execute(&mut *tx)
            .await
            .context("linking the order")?;
        }
        Ok(())
    }

    /// The batch's events through the outbox: the new level when what is on hand moved
    /// (holds come and go by the thousand a second on a busy product and do not announce
    /// themselves), and a low-stock notice to the shop's owner.
    async fn announce(&self, tx: &mut PgConnection, meta: &MessageMeta) -> anyhow::Result<()> {
        if let Some(level) = self.level_changed {
            let event = LevelChanged {
                shop_id: self.shop_id,
                product_id: self.product_id,
                on_hand: level.on_hand,
                reserved: level.reserved,
                available: level.available,
                occurred_at: Utc::now(),
            };
            bus::enqueue(&mut *tx, &event, meta).await?;
        }
        let Some(low) = &self.low else { return Ok(()) };
        let shop = sqlx::query!(
            "select name, owner_email, owner_name, logo_url from stock.shops where shop_id = $1",
            self.shop_id
        )
        .fetch_optional(&mut *tx)
        .await
        .context("reading the shop's owner")?;
        match shop {
            Some(s) if s.owner_email.is_some() => {
                let event = LevelLow {
                    shop: ShopBrand {
                        id: self.shop_id,
                        name: s.name,
                        logo_url: s.logo_url,
                        address: None,
                        contact_phone: None,
                    },
                    owner: Recipient { email: s.owner_email.unwrap_or_default(), name: s.owner_name },
                    product_id: self.product_id,
                    product_name: low.product_name.clone(),
                    sku: None,
                    available: low.available,
                    keeping_units: low.keeping_units,
                    occurred_at: Utc::now(),
                };
                bus::enqueue(&mut *tx, &event, meta).await?;
            }
            _ => tracing::warn!(shop_id = %self.shop_id, "low stock, but the shop's owner is not known yet"),
        }
        Ok(())
    }
}

/// Which of `ids` are reservations of another shop (a caller's id collides with theirs).
pub async fn taken_elsewhere(pool: &PgPool, shop_id: Uuid, ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "select reservation_id from stock.reservations where reservation_id = any($1) and shop_id <> $2",
        ids,
        shop_id
    )
    .fetch_all(pool)
    .await
    .context("checking the reservation ids")
}

/// Builds a product's state from the rows: the product, its level or available units, the
/// held reservations and its discounts.
pub async fn load(pool: &PgPool, product_id: Uuid) -> anyhow::Result<State> {
    let row = sqlx::query!(
        r#"select p.shop_id, p.name, p.tracking, p.sell_price_minor, p.warranty_months, p.keeping_units,
                  p.loyalty_points, s.currency as "currency?"
             from stock.products p left join stock.shops s using (shop_id)
            where p.product_id = $1 and p.status <> 'DELETED'"#,
        product_id
    )
    .fetch_optional(pool)
    .await
    .context("reading the product")?
    .ok_or_else(|| anyhow::anyhow!("product {product_id} not found"))?;
    let (shop_id, name, price, warranty, keeping, loyalty) =
        (row.shop_id, row.name, row.sell_price_minor, row.warranty_months, row.keeping_units, row.loyalty_points);
    let tracking = if row.tracking == "SERIALIZED" { Tracking::Serialized } else { Tracking::Bulk };
    // A shop not announced by auth yet has the platform default; a code we cannot read is a bug.
    let currency: Currency = match row.currency {
        None => Currency::LKR,
        Some(code) => code.parse().map_err(|_| anyhow::anyhow!("shop {shop_id} has an unknown currency {code:?}"))?,
    };
    let (on_hand, reserved): (i32, i32) = if tracking == Tracking::Bulk {
        sqlx::query!("select on_hand, reserved from stock.levels where product_id = $1", product_id)
            .fetch_optional(pool)
            .await
            .context("reading the level")?
            .map_or((0, 0), |l| (l.on_hand, l.reserved))
    } else {
        (0, 0)
    };
    let mut units = HashMap::new();
    if tracking == Tracking::Serialized {
        let rows = sqlx::query!(
            "select item_id, barcode, sell_price_minor, warranty_months, reservation_id from stock.items
              where product_id = $1 and status in ('AVAILABLE', 'RESERVED')",
            product_id
        )
        .fetch_all(pool)
        .await
        .context("reading the units")?;
        for r in rows {
            units.insert(
                r.item_id,
                Unit {
                    barcode: r.barcode,
                    price_minor: r.sell_price_minor,
                    warranty_months: r.warranty_months,
                    held_by: r.reservation_id,
                },
            );
        }
    }
    let lines = sqlx::query!(
        "select l.reservation_id, l.line_no, l.unit_no, l.quantity, l.item_id, l.name, l.unit_price_minor, r.expires_at
           from stock.reservation_lines l join stock.reservations r using (reservation_id)
          where l.product_id = $1 and l.status = 'HELD'",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the held lines")?;
    let mut holds: HashMap<Uuid, Hold> = HashMap::new();
    for l in lines {
        let h = holds.entry(l.reservation_id).or_insert(Hold {
            lines: Vec::new(),
            quantity: 0,
            items: Vec::new(),
            expires_at: l.expires_at,
            timer: None,
            persisted: true,
        });
        h.quantity += i64::from(l.quantity);
        if let Some(i) = l.item_id {
            h.items.push(i);
        }
        let barcode = l.item_id.and_then(|i| units.get(&i).map(|u| u.barcode.clone()));
        h.lines.push(HeldLine {
            line_no: l.line_no,
            unit_no: l.unit_no,
            product_id,
            name: l.name,
            quantity: i64::from(l.quantity),
            unit_price_minor: l.unit_price_minor,
            list_price_minor: l.unit_price_minor,
            item_id: l.item_id,
            barcode,
            warranty_until: None,
            loyalty_points: i64::from(loyalty),
            currency,
        });
    }
    let discounts: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query!(
        "select dp.basis_points, d.starts_at, d.ends_at
           from stock.discount_products dp join stock.discounts d using (discount_id)
          where dp.product_id = $1 and d.status = 'ACTIVE' and d.ends_at > now()",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the discounts")?
    .into_iter()
    .map(|d| (i64::from(d.basis_points), d.starts_at, d.ends_at))
    .collect();
    let mut state = State {
        product_id,
        shop_id,
        name,
        tracking,
        currency,
        price_minor: price.unwrap_or(0),
        warranty_months: warranty,
        loyalty_points: i64::from(loyalty),
        keeping_units: i64::from(keeping),
        on_hand: i64::from(on_hand),
        reserved: i64::from(reserved),
        units,
        discounts,
        holds,
        settled: HashMap::new(),
        pending: Vec::new(),
        flush_scheduled: false,
        last_activity: Instant::now(),
        ticker: None,
        available_at_batch_start: 0,
        batch_meta: MessageMeta::default(),
    };
    state.available_at_batch_start = state.available();
    Ok(state)
}
