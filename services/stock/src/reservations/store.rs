//! What the product actor reads: its state from the rows (`load`, on start and after a
//! failed batch), and the lookups a request may need (a reservation settled before this
//! actor's life, a source already applied, ids another shop took). Writing is `batch`.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use platform::Currency;

use super::state::{Hold, ProductStock, Unit};
use super::HeldLine;
use crate::domain::{ItemId, MovementKind, ReservationStatus, Tracking};
use platform::ids::{ProductId, ReservationId, ShopId};

/// Builds a product's state from the rows: the product, its level or available units, the
/// held reservations and its discounts.
pub async fn load(pool: &PgPool, product_id: Uuid) -> anyhow::Result<ProductStock> {
    let row = sqlx::query!(
        r#"select p.shop_id, p.name, p.tracking as "tracking: Tracking", p.sell_price_minor, p.warranty_months, p.keeping_units,
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
    let tracking = row.tracking;
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
    let units = if tracking == Tracking::Serialized { units(pool, product_id).await? } else { HashMap::new() };
    let holds = holds(pool, product_id, &units, i64::from(loyalty)).await?;
    let discounts = discounts(pool, product_id).await?;
    let mut state = ProductStock {
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
        available_at_batch_start: 0,
    };
    state.available_at_batch_start = state.available();
    Ok(state)
}

/// A serialized product's units in stock (available or held).
async fn units(pool: &PgPool, product_id: Uuid) -> anyhow::Result<HashMap<Uuid, Unit>> {
    let rows = sqlx::query!(
        "select item_id, barcode, sell_price_minor, warranty_months, reservation_id from stock.items
          where product_id = $1 and status in ('AVAILABLE', 'RESERVED')",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the units")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let unit = Unit {
                barcode: r.barcode,
                price_minor: r.sell_price_minor,
                warranty_months: r.warranty_months,
                held_by: r.reservation_id,
            };
            (r.item_id, unit)
        })
        .collect())
}

/// The product's held reservation lines, as written holds.
async fn holds(
    pool: &PgPool,
    product_id: Uuid,
    units: &HashMap<Uuid, Unit>,
    loyalty_points: i64,
) -> anyhow::Result<HashMap<Uuid, Hold>> {
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
            persisted: true,
        });
        h.quantity += i64::from(l.quantity);
        if let Some(i) = l.item_id {
            h.items.push(i);
        }
        h.lines.push(HeldLine {
            line_no: l.line_no,
            unit_no: l.unit_no,
            product_id,
            name: l.name,
            quantity: i64::from(l.quantity),
            unit_price_minor: l.unit_price_minor,
            list_price_minor: l.unit_price_minor,
            item_id: l.item_id,
            barcode: l.item_id.and_then(|i| units.get(&i).map(|u| u.barcode.clone())),
            warranty_until: None,
            loyalty_points,
        });
    }
    Ok(holds)
}

/// The product's active and future discounts: (basis points, from, until).
async fn discounts(pool: &PgPool, product_id: Uuid) -> anyhow::Result<Vec<(i64, DateTime<Utc>, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        "select dp.basis_points, d.starts_at, d.ends_at
           from stock.discount_products dp join stock.discounts d using (discount_id)
          where dp.product_id = $1 and d.status = 'ACTIVE' and d.ends_at > now()",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the discounts")?;
    Ok(rows.into_iter().map(|d| (i64::from(d.basis_points), d.starts_at, d.ends_at)).collect())
}

/// Whether a change with this source (a return of a bulk quantity or of one unit, an
/// idempotent receipt or adjustment) is in the ledger already. The source travels in the
/// ledger's reservation_id column.
pub async fn applied(
    pool: &PgPool,
    product_id: Uuid,
    kind: MovementKind,
    source: Uuid,
    item: Option<Uuid>,
) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from stock.movements
                          where product_id = $1 and kind = $4 and reservation_id = $2
                            and item_id is not distinct from $3) as "seen!""#,
        product_id,
        source,
        item as Option<Uuid>,
        kind as _
    )
    .fetch_one(pool)
    .await
    .context("checking whether a change was applied")
}

/// The status of a product's lines of a reservation, if it has any.
pub async fn line_status(
    pool: &PgPool,
    product_id: Uuid,
    reservation_id: Uuid,
) -> anyhow::Result<Option<ReservationStatus>> {
    sqlx::query_scalar!(
        r#"select status as "status: ReservationStatus" from stock.reservation_lines
            where reservation_id = $1 and product_id = $2 limit 1"#,
        reservation_id,
        product_id
    )
    .fetch_optional(pool)
    .await
    .context("reading a settled reservation")
}

/// The shop's units by barcode: barcode → (unit, product).
pub async fn units_by_barcode(
    pool: &PgPool,
    shop_id: ShopId,
    barcodes: &[String],
) -> anyhow::Result<BTreeMap<String, (ItemId, ProductId)>> {
    let rows = sqlx::query!(
        "select barcode, item_id, product_id from stock.items where shop_id = $1 and barcode = any($2)",
        shop_id.0,
        barcodes
    )
    .fetch_all(pool)
    .await
    .context("resolving barcodes")?;
    Ok(rows.into_iter().map(|r| (r.barcode, (ItemId(r.item_id), ProductId(r.product_id)))).collect())
}

/// The shop and products of a reservation, if there is one.
pub async fn parts(pool: &PgPool, reservation_id: ReservationId) -> anyhow::Result<Option<(ShopId, Vec<ProductId>)>> {
    let rows = sqlx::query!(
        "select distinct r.shop_id, l.product_id
           from stock.reservations r join stock.reservation_lines l using (reservation_id)
          where r.reservation_id = $1",
        reservation_id.0
    )
    .fetch_all(pool)
    .await
    .context("reading a reservation's products")?;
    let Some(shop) = rows.first().map(|r| ShopId(r.shop_id)) else { return Ok(None) };
    Ok(Some((shop, rows.into_iter().map(|r| ProductId(r.product_id)).collect())))
}

/// A reservation as written.
pub struct Stored {
    pub shop_id: ShopId,
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
    pub lines: Vec<HeldLine>,
}

/// A reservation and its lines, in line order.
pub async fn reservation(pool: &PgPool, reservation_id: ReservationId) -> anyhow::Result<Option<Stored>> {
    let reservation_id = reservation_id.0;
    let head = sqlx::query!(
        r#"select shop_id, status as "status: ReservationStatus", expires_at from stock.reservations
            where reservation_id = $1"#,
        reservation_id
    )
    .fetch_optional(pool)
    .await
    .context("reading a reservation")?;
    let Some(head) = head else { return Ok(None) };
    let rows = sqlx::query!(
        r#"select l.line_no, l.unit_no, l.product_id, l.name, l.quantity, l.unit_price_minor, l.item_id,
                  i.barcode as "barcode?", coalesce(p.loyalty_points, 0)::int8 as "loyalty_points!"
             from stock.reservation_lines l left join stock.items i using (item_id)
             left join stock.products p on p.product_id = l.product_id
            where l.reservation_id = $1 order by l.line_no, l.unit_no"#,
        reservation_id
    )
    .fetch_all(pool)
    .await
    .context("reading a reservation's lines")?;
    let lines = rows
        .into_iter()
        .map(|l| HeldLine {
            line_no: l.line_no,
            unit_no: l.unit_no,
            product_id: l.product_id,
            name: l.name,
            quantity: i64::from(l.quantity),
            unit_price_minor: l.unit_price_minor,
            list_price_minor: l.unit_price_minor,
            item_id: l.item_id,
            barcode: l.barcode,
            warranty_until: None,
            loyalty_points: l.loyalty_points,
        })
        .collect();
    Ok(Some(Stored { shop_id: ShopId(head.shop_id), status: head.status, expires_at: head.expires_at, lines }))
}
