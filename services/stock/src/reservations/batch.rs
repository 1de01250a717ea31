//! What a product actor's flush writes, as typed rows (`Batch`: reservations, lines, ledger
//! movements, unit changes, settled reservations, events), and how batches of several
//! products are written in one transaction (`write`). The actor decides what a batch holds;
//! this module knows how it is stored. The writer (`super::writer`) calls `write` with
//! whatever batches are ready, so many products share one commit.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use bus::MessageMeta;
use contracts::common::{Recipient, ShopBrand};
use contracts::stock::{LevelChanged, LevelLow};

mod columns;

use columns::Columns;

use super::{HeldLine, Level};
use crate::domain::{MovementKind, ReservationStatus};

/// One row of the stock ledger (`stock.movements`).
#[derive(Debug, Clone)]
pub struct Movement {
    pub kind: MovementKind,
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
    pub fn new(kind: MovementKind, on_hand: i64, reserved: i64) -> Self {
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

/// A low-stock crossing, announced to the shop's owner.
#[derive(Debug, Clone)]
pub struct Low {
    pub product_name: String,
    pub available: i64,
    pub keeping_units: i64,
}

/// Everything one flush of one product writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub product_id: Uuid,
    pub shop_id: Uuid,
    /// The request context of the batch's latest change: its events carry it.
    pub meta: MessageMeta,
    /// New reservation headers: (reservation, expires at).
    pub headers: Vec<(Uuid, DateTime<Utc>)>,
    /// Their lines of this product.
    pub lines: Vec<(Uuid, HeldLine)>,
    /// Written reservations that live on to a later expiry: (reservation, expires at).
    pub extended: Vec<(Uuid, DateTime<Utc>)>,
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
    pub settled: Vec<(Uuid, ReservationStatus)>,
    /// Orders to link to committed reservations.
    pub orders: Vec<(Uuid, Uuid)>,
    /// `stock.level.changed`, when what is on hand moved.
    pub level_changed: Option<Level>,
    pub low: Option<Low>,
}

impl Batch {
    pub fn new(product_id: Uuid, shop_id: Uuid, meta: MessageMeta) -> Self {
        Self { product_id, shop_id, meta, ..Self::default() }
    }

    /// Whether all it writes is headers, lines, movements and levels (`write_rows`): no
    /// unit, expiry, settlement or event.
    fn rows_only(&self) -> bool {
        // Spelled out field by field: a new kind of write must say here whether it is a row.
        let Self {
            product_id: _,
            shop_id: _,
            meta: _,
            headers: _,
            lines: _,
            movements: _,
            on_hand_delta: _,
            reserved_delta: _,
            extended,
            held_units,
            freed_units,
            sold_units,
            returned_units,
            removed_units,
            settled,
            orders,
            level_changed,
            low,
        } = self;
        extended.is_empty()
            && held_units.is_empty()
            && freed_units.is_empty()
            && sold_units.is_empty()
            && returned_units.is_empty()
            && removed_units.is_empty()
            && settled.is_empty()
            && orders.is_empty()
            && level_changed.is_none()
            && low.is_none()
    }
}

/// Writes the batches (each of a different product) and their events in one transaction.
/// When a new reservation id already names another shop's reservation, or one of this shop's
/// that has settled (a retry that reached an actor which no longer remembers it), nothing is
/// written and those ids are the answer (empty: written).
pub async fn write(pool: &PgPool, batches: &[&Batch]) -> anyhow::Result<Vec<Uuid>> {
    if batches.iter().all(|b| b.rows_only()) {
        // New holds alone (the common reserve): one statement is the whole transaction, and
        // it writes nothing when an id is taken. No BEGIN and COMMIT of their own.
        let mut conn = pool.acquire().await.context("a connection for the batch")?;
        return write_rows(&mut conn, batches).await;
    }
    let mut tx = pool.begin().await.context("starting the batch")?;
    let taken = write_rows(&mut tx, batches).await?;
    if !taken.is_empty() {
        tx.rollback().await.context("rolling back a batch with taken ids")?;
        return Ok(taken);
    }
    write_units(&mut tx, batches).await?;
    extend(&mut tx, batches).await?;
    let mut events = bus::OutboxBatch::default();
    for b in batches {
        announce(&mut tx, b, &mut events).await?;
    }
    // A settlement's statement writes the events too; without one they have their own.
    if let Some(events) = settle(&mut tx, batches, events).await? {
        events.write(&mut tx).await?;
    }
    tx.commit().await.context("committing the batch")?;
    Ok(Vec::new())
}

/// Headers, lines, the ledger and the levels of every batch in one statement: one round
/// trip for the whole transaction on the common path. The same statement finds new
/// reservation ids another shop already took (a caller's id colliding with theirs, or one of
/// this shop's that settled): then it writes nothing at all and answers those ids, so it is
/// all-or-nothing on its own (and a caller inside a transaction rolls back).
async fn write_rows(tx: &mut PgConnection, batches: &[&Batch]) -> anyhow::Result<Vec<Uuid>> {
    let c = Columns::of(batches)?;
    // `as _` on the arrays of optional values: the macro infers `uuid[]` as `Vec<Uuid>`, but
    // these arrays carry nulls.
    sqlx::query!(
        r#"with taken as (
             select r.reservation_id from stock.reservations r
               join unnest($1::uuid[], $2::uuid[]) as t(i, s) on r.reservation_id = t.i
              where r.reservation_id = any($1) and (r.shop_id <> t.s or r.status <> 'HELD')),
         h as (
             insert into stock.reservations (reservation_id, shop_id, expires_at)
             select r, s, e from unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) as t(r, s, e)
              where not exists (select 1 from taken)
             on conflict (reservation_id) do nothing),
         l as (
             insert into stock.reservation_lines (reservation_id, line_no, unit_no, product_id, item_id, quantity, name, unit_price_minor)
             select t.* from unnest($4::uuid[], $5::int[], $6::int[], $7::uuid[], $8::uuid[], $9::int[], $10::text[], $11::bigint[])
                 as t(r, n, u, p, i, q, nm, pr)
              where not exists (select 1 from taken)),
         m as (
             insert into stock.movements (shop_id, product_id, kind, on_hand_delta, reserved_delta, item_id, reason, actor_id,
                                          reservation_id, order_id, unit_cost_minor, supplier_id)
             select * from unnest($12::uuid[], $13::uuid[], $14::text[], $15::int[], $16::int[], $17::uuid[], $18::text[],
                                  $19::uuid[], $20::uuid[], $21::uuid[], $22::bigint[], $23::uuid[])
              where not exists (select 1 from taken)),
         v as (
             update stock.levels l set on_hand = l.on_hand + t.o, reserved = l.reserved + t.r, updated_at = now()
               from unnest($24::uuid[], $25::int[], $26::int[]) as t(p, o, r)
              where l.product_id = any($24) and l.product_id = t.p and not exists (select 1 from taken))
         select array(select reservation_id from taken) as "taken!""#,
        &c.h_id,
        &c.h_shop,
        &c.h_exp,
        &c.l_res,
        &c.l_no,
        &c.l_unit,
        &c.l_product,
        &c.l_item as _,
        &c.l_qty,
        &c.l_name,
        &c.l_price,
        &c.m_shop,
        &c.m_product,
        &c.m_kind as _,
        &c.m_on,
        &c.m_res,
        &c.m_item as _,
        &c.m_reason as _,
        &c.m_actor as _,
        &c.m_source as _,
        &c.m_order as _,
        &c.m_cost as _,
        &c.m_supplier as _,
        &c.v_product,
        &c.v_on,
        &c.v_res
    )
    .fetch_one(&mut *tx)
    .await
    .context("writing the reservations, lines, movements and levels")
    .map(|r| r.taken)
}

/// Serialized units that were held, freed, sold, removed or returned.
async fn write_units(tx: &mut PgConnection, batches: &[&Batch]) -> anyhow::Result<()> {
    let all =
        |f: fn(&Batch) -> &Vec<Uuid>| -> Vec<Uuid> { batches.iter().flat_map(|b| f(b).iter().copied()).collect() };
    let (held, by): (Vec<Uuid>, Vec<Uuid>) = batches.iter().flat_map(|b| b.held_units.iter().copied()).unzip();
    if !held.is_empty() {
        let n = sqlx::query!(
            "update stock.items i set status = 'RESERVED', reservation_id = t.r
               from unnest($1::uuid[], $2::uuid[]) as t(item, r)
              where i.item_id = any($1) and i.item_id = t.item and i.status = 'AVAILABLE'",
            &held,
            &by
        )
        .execute(&mut *tx)
        .await
        .context("holding units")?
        .rows_affected();
        anyhow::ensure!(n == held.len() as u64, "a unit to hold was not available in the database");
    }
    let freed = all(|b| &b.freed_units);
    if !freed.is_empty() {
        sqlx::query!(
            "update stock.items set status = 'AVAILABLE', reservation_id = null
              where item_id = any($1) and status = 'RESERVED'",
            &freed
        )
        .execute(&mut *tx)
        .await
        .context("freeing units")?;
    }
    let (sold, orders): (Vec<Uuid>, Vec<Option<Uuid>>) =
        batches.iter().flat_map(|b| b.sold_units.iter().copied()).unzip();
    if !sold.is_empty() {
        sqlx::query!(
            "update stock.items i set status = 'SOLD', reservation_id = null, order_id = t.o, sold_at = now()
               from unnest($1::uuid[], $2::uuid[]) as t(item, o) where i.item_id = any($1) and i.item_id = t.item",
            &sold,
            &orders as _
        )
        .execute(&mut *tx)
        .await
        .context("selling units")?;
    }
    let removed = all(|b| &b.removed_units);
    if !removed.is_empty() {
        let n = sqlx::query!(
            "update stock.items set status = 'REMOVED' where item_id = any($1) and status = 'AVAILABLE'",
            &removed
        )
        .execute(&mut *tx)
        .await
        .context("removing units")?
        .rows_affected();
        anyhow::ensure!(n == removed.len() as u64, "a unit to remove was not available in the database");
    }
    let returned = all(|b| &b.returned_units);
    if !returned.is_empty() {
        sqlx::query!(
            "update stock.items set status = 'AVAILABLE', order_id = null, sold_at = null
              where item_id = any($1) and status = 'SOLD'",
            &returned
        )
        .execute(&mut *tx)
        .await
        .context("returning units")?;
    }
    Ok(())
}

/// Settles the batches' lines of settled reservations; a header follows once no line of it
/// is held. The headers' statement writes `events` too: when there is no header to settle
/// or link, they are handed back to be written.
async fn settle(
    tx: &mut PgConnection,
    batches: &[&Batch],
    events: bus::OutboxBatch,
) -> anyhow::Result<Option<bus::OutboxBatch>> {
    let (mut ids, mut products, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
    // Per reservation: the status its settled lines take, and the order it was sold in.
    let mut headers: std::collections::BTreeMap<Uuid, (Option<ReservationStatus>, Option<Uuid>)> =
        std::collections::BTreeMap::new();
    for b in batches {
        for (r, s) in &b.settled {
            ids.push(*r);
            products.push(b.product_id);
            statuses.push(*s);
            headers.entry(*r).or_default().0.get_or_insert(*s);
        }
        for (r, o) in &b.orders {
            headers.entry(*r).or_default().1 = Some(*o);
        }
    }
    if headers.is_empty() {
        return Ok(Some(events));
    }
    let header_ids: Vec<Uuid> = headers.keys().copied().collect();
    let header_statuses: Vec<Option<ReservationStatus>> = headers.values().map(|(s, _)| *s).collect();
    let header_orders: Vec<Option<Uuid>> = headers.values().map(|(_, o)| *o).collect();
    // One statement locks the headers and settles the lines:
    // - The headers are locked in id order, so two products settling one reservation (in two
    //   transactions) serialise here, and the last one sees all its lines settled: the
    //   headers' update below is a statement of its own, after the lock, so it sees what the
    //   other transaction committed. The lock is taken first (the select list's first
    //   subquery); the lines of one product of one reservation are only ever written by that
    //   product's actor, so no other transaction waits on them in the other order.
    // - The levels of this transaction already moved by what the actor settles; if another
    //   instance settled one of these lines (its owner until a moment ago, still finishing
    //   what it had in hand), it is no longer held here: the whole transaction is refused and
    //   the actor reloads from the rows, so a settlement lowers a level once.
    // - "Still held" is spelled "none of the other statuses" (the check constraint allows
    //   four): `status = 'HELD'` let the planner scan the whole partial index of held lines
    //   per statement instead of the reservations' own lines by key.
    let settled = sqlx::query!(
        r#"with settled as (
               update stock.reservation_lines l set status = t.s
                 from unnest($1::uuid[], $2::uuid[], $3::text[]) as t(r, p, s)
                where l.reservation_id = any($1) and l.reservation_id = t.r and l.product_id = t.p
                  and l.status not in ('COMMITTED', 'RELEASED', 'EXPIRED')
            returning l.reservation_id, l.product_id)
           select (select count(*) from (select 1 from stock.reservations where reservation_id = any($4)
                                          order by reservation_id for update) h) as "locked!",
                  array(select reservation_id from settled) as "reservations!",
                  array(select product_id from settled) as "products!""#,
        &ids,
        &products,
        &statuses as _,
        &header_ids
    )
    .fetch_one(&mut *tx)
    .await
    .context("locking reservation headers and settling their lines")?;
    let done: std::collections::HashSet<(Uuid, Uuid)> =
        settled.reservations.into_iter().zip(settled.products).collect();
    if let Some((r, p)) = ids.iter().zip(&products).find(|&(r, p)| !done.contains(&(*r, *p))) {
        anyhow::bail!("reservation {r} of product {p} was no longer held: settled elsewhere");
    }
    // A header settles when none of its lines is held any more; a committed one names its
    // order (linked once). "No line held" is read from the reservation's own lines (by the
    // primary key) on purpose: written as `not exists (... and l.status = 'HELD')`, the
    // planner scanned the whole partial index of held lines (`reservation_lines_product_idx`)
    // for every header, which took 1.3-9.5 s per statement once tens of thousands of holds
    // were in flight and froze every product's writes behind it (the reservation cell's
    // stall, session 11).
    let e = events.into_columns();
    // `as _` on the arrays with nulls; the events as `OutboxBatch::write` inserts them.
    sqlx::query!(
        "with outbox as (
             insert into stock.outbox (message_id, message_type, routing_key, version, payload, request_id, traceparent)
             select m, t, k, v, p, r, tp
               from unnest($4::uuid[], $5::text[], $6::text[], $7::int2[], $8::jsonb[], $9::text[], $10::text[])
                    with ordinality as e(m, t, k, v, p, r, tp, n)
              order by n
         )
         update stock.reservations r
            set status = case when d.done and r.status = 'HELD' then t.s else r.status end,
                settled_at = case when d.done and r.status = 'HELD' then now() else r.settled_at end,
                order_id = coalesce(r.order_id, t.o)
           from unnest($1::uuid[], $2::text[], $3::uuid[]) as t(r, s, o)
           cross join lateral (
               select t.s is not null and coalesce(bool_and(l.status <> 'HELD'), true) as done
                 from stock.reservation_lines l where l.reservation_id = t.r
           ) d
          where r.reservation_id = any($1) and r.reservation_id = t.r
            and ((d.done and r.status = 'HELD') or (t.o is not null and r.order_id is null))",
        &header_ids,
        &header_statuses as _,
        &header_orders as _,
        &e.ids,
        &e.types,
        &e.routing_keys as _,
        &e.versions,
        &e.payloads,
        &e.request_ids as _,
        &e.traceparents as _
    )
    .execute(&mut *tx)
    .await
    .context("settling reservation headers")?;
    e.written();
    Ok(None)
}

/// Moves the expiry of extended reservations (never earlier: several products may extend one).
async fn extend(tx: &mut PgConnection, batches: &[&Batch]) -> anyhow::Result<()> {
    let (ids, until): (Vec<Uuid>, Vec<DateTime<Utc>>) = batches.iter().flat_map(|b| b.extended.iter().copied()).unzip();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "update stock.reservations r set expires_at = greatest(r.expires_at, t.e)
           from unnest($1::uuid[], $2::timestamptz[]) as t(r, e)
          where r.reservation_id = any($1) and r.reservation_id = t.r and r.status = 'HELD'",
        &ids,
        &until
    )
    .execute(&mut *tx)
    .await
    .context("extending reservations")?;
    Ok(())
}

/// A batch's events through the outbox: the new level when what is on hand moved (holds come
/// and go by the thousand a second on a busy product and do not announce themselves), and a
/// low-stock notice to the shop's owner. Collected into `events`, written once per transaction.
async fn announce(tx: &mut PgConnection, b: &Batch, events: &mut bus::OutboxBatch) -> anyhow::Result<()> {
    if let Some(level) = b.level_changed {
        let event = LevelChanged {
            shop_id: b.shop_id,
            product_id: b.product_id,
            on_hand: level.on_hand,
            reserved: level.reserved,
            available: level.available,
            occurred_at: Utc::now(),
        };
        events.push(&event, &b.meta)?;
    }
    let Some(low) = &b.low else { return Ok(()) };
    let shop =
        sqlx::query!("select name, owner_email, owner_name, logo_url from stock.shops where shop_id = $1", b.shop_id)
            .fetch_optional(&mut *tx)
            .await
            .context("reading the shop's owner")?;
    let Some((s, email)) = shop.and_then(|s| s.owner_email.clone().map(|e| (s, e))) else {
        tracing::warn!(shop_id = %b.shop_id, "low stock, but the shop's owner is not known yet");
        return Ok(());
    };
    let event = LevelLow {
        shop: ShopBrand { id: b.shop_id, name: s.name, logo_url: s.logo_url, address: None, contact_phone: None },
        owner: Recipient { email, name: s.owner_name },
        product_id: b.product_id,
        product_name: low.product_name.clone(),
        sku: None,
        available: low.available,
        keeping_units: low.keeping_units,
        occurred_at: Utc::now(),
    };
    events.push(&event, &b.meta)?;
    Ok(())
}
