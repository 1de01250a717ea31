//! Orders, their lines and payments, and the ledger rows a sale writes: one booking is a
//! handful of statements (arrays through `unnest`, not a statement per line).

use platform::idempotency::StoredAnswer;

use crate::wallet::{EntryColumns, Swap};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An order as stored.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub shop_id: Uuid,
    pub order_number: i64,
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub change_minor: i64,
    pub due_minor: i64,
    pub discount_type: Option<String>,
    pub discount_value: Option<String>,
    pub reservation_id: Uuid,
    pub send_receipt: bool,
    pub note: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LineRow {
    pub order_line_id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub item_id: Option<Uuid>,
    pub barcode: Option<String>,
    pub name: String,
    pub quantity: i64,
    pub list_price_minor: i64,
    pub unit_price_minor: i64,
    pub sold_price_minor: i64,
    pub override_by: Option<Uuid>,
    pub discount_minor: i64,
    pub line_total_minor: i64,
    pub warranty_until: Option<DateTime<Utc>>,
    pub loyalty_points: i64,
}

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub method: String,
    pub amount_minor: i64,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The new order's own row (the number is taken in the same transaction).
pub struct NewOrder<'a> {
    pub order_id: Uuid,
    pub shop_id: Uuid,
    pub status: &'a str,
    pub customer_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub currency: &'a str,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub change_minor: i64,
    pub due_minor: i64,
    pub discount_type: Option<&'a str>,
    pub discount_value: Option<String>,
    pub reservation_id: Uuid,
    pub send_receipt: bool,
    pub note: Option<&'a str>,
    pub created_by: Uuid,
    pub completed: bool,
}

/// Inserts the new order under the shop's next number, taken in the same statement: the
/// shop row stays locked until the booking commits (the numbers are gapless), so this is the
/// booking's last statement but its details and event. Answers the number and the time.
///
/// The customer's wallet change (`swap`, its compare-and-set) runs first in the same
/// statement: the number is taken only when it matched, and the answer is None when it did
/// not (the wallet moved on another instance; the caller rolls back and books again). The
/// wallet row is locked before the shop row, as when they were two statements.
pub async fn insert_numbered(
    conn: &mut PgConnection,
    o: &NewOrder<'_>,
    swap: Option<&Swap>,
) -> sqlx::Result<Option<(i64, DateTime<Utc>)>> {
    let row = sqlx::query!(
        "with w as (
             update sales.wallets set sealed = $24, version = $23
              where wallet_id = $20 and version = $21 and sealed = $22
             returning 1
         ),
         n as (
             update sales.shops set next_order_number = next_order_number + 1
              where shop_id = $2 and ($20::uuid is null or exists (select 1 from w))
             returning next_order_number - 1 as number
         )
         insert into sales.orders (order_id, shop_id, order_number, status, customer_id, register_id, currency,
             subtotal_minor, discount_minor, total_minor, paid_minor, change_minor, due_minor, discount_type,
             discount_value, reservation_id, send_receipt, note, created_by, completed_at)
         select $1, $2, n.number, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                case when $19 then now() end
           from n
         returning order_number, created_at",
        o.order_id,
        o.shop_id,
        o.status,
        o.customer_id,
        o.register_id,
        o.currency,
        o.subtotal_minor,
        o.discount_minor,
        o.total_minor,
        o.paid_minor,
        o.change_minor,
        o.due_minor,
        o.discount_type,
        o.discount_value,
        o.reservation_id,
        o.send_receipt,
        o.note,
        o.created_by,
        o.completed,
        swap.map(|s| s.wallet_id),
        swap.map(|s| s.old_version),
        swap.map(|s| s.old_sealed.as_slice()),
        swap.map(|s| s.new_version),
        swap.map(|s| s.new_sealed.as_slice())
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.order_number, r.created_at)))
}

/// Lines as columns, for one `unnest` insert.
#[derive(Default)]
pub struct NewLines {
    pub id: Vec<Uuid>,
    pub position: Vec<i32>,
    pub product_id: Vec<Uuid>,
    pub item_id: Vec<Option<Uuid>>,
    pub barcode: Vec<Option<String>>,
    pub name: Vec<String>,
    pub quantity: Vec<i64>,
    pub list_price: Vec<i64>,
    pub unit_price: Vec<i64>,
    pub sold_price: Vec<i64>,
    pub override_by: Vec<Option<Uuid>>,
    pub discount: Vec<i64>,
    pub line_total: Vec<i64>,
    pub warranty_until: Vec<Option<DateTime<Utc>>>,
    pub loyalty_points: Vec<i64>,
}

#[derive(Default)]
pub struct NewPayments {
    pub id: Vec<Uuid>,
    pub method: Vec<String>,
    pub amount: Vec<i64>,
    pub reference: Vec<Option<String>>,
}

/// Ledger rows as columns, for one `unnest` insert.
#[derive(Default)]
pub struct NewLedger {
    pub id: Vec<Uuid>,
    pub method: Vec<String>,
    pub direction: Vec<String>,
    pub amount: Vec<i64>,
    pub source: Vec<String>,
    pub description: Vec<String>,
}

pub struct LedgerContext<'a> {
    pub shop_id: Uuid,
    pub currency: &'a str,
    pub order_id: Option<Uuid>,
    pub return_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
}

pub async fn insert_ledger(conn: &mut PgConnection, c: &LedgerContext<'_>, l: &NewLedger) -> sqlx::Result<()> {
    if l.id.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into sales.ledger (entry_id, shop_id, method, direction, amount_minor, currency, source, order_id,
             return_id, register_id, customer_id, description, actor_id)
         select id, $1, method, direction, amount, $2, source, $3, $4, $5, $6, description, $7
           from unnest($8::uuid[], $9::text[], $10::text[], $11::int8[], $12::text[], $13::text[])
             as t(id, method, direction, amount, source, description)",
        c.shop_id,
        c.currency,
        c.order_id,
        c.return_id,
        c.register_id,
        c.customer_id,
        c.actor_id,
        &l.id,
        &l.method,
        &l.direction,
        &l.amount,
        &l.source,
        &l.description
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An order's lines, payments and ledger rows in one statement.
#[allow(clippy::too_many_arguments, reason = "the columns of one statement, each a different table's")]
pub async fn insert_details(
    conn: &mut PgConnection,
    order_id: Uuid,
    l: &NewLines,
    p: &NewPayments,
    c: &LedgerContext<'_>,
    g: &NewLedger,
    w: &EntryColumns<'_>,
    event: Option<&bus::OutboxRow>,
    answer: Option<StoredAnswer<'_>>,
) -> sqlx::Result<()> {
    // The wallet's entries too (sealed by `wallet`; its state was compare-and-set with the
    // order row's number), with `c.actor_id` as their actor, the sale's event into the
    // outbox, and the answer under the request's Idempotency-Key (what `Claim::store_in`
    // writes): one statement for everything that names the order.
    sqlx::query!(
        "with answer as (
             update sales.idempotency_keys set status_code = $48, response = $49, completed_at = now()
              where shop_id = $45 and route = $46 and key = $47 and completed_at is null
         ), outbox as (
             insert into sales.outbox (message_id, message_type, routing_key, version, payload, request_id,
                 traceparent)
             select $38::uuid, $39::text, $44::text, $40::int2, $41::jsonb, $42::text, $43::text
              where $38::uuid is not null
         ), entries as (
             insert into sales.wallet_entries (entry_id, wallet_id, shop_id, version, kind, method, order_id, sealed,
                 actor_id)
             select id, $32, $2, version, kind, method, $1, sealed, $25
               from unnest($33::uuid[], $34::int8[], $35::text[], $36::text[], $37::bytea[])
                 as t(id, version, kind, method, sealed)
         ), lines as (
             insert into sales.order_lines (order_line_id, order_id, shop_id, position, product_id, item_id, barcode,
                 name, quantity, list_price_minor, unit_price_minor, sold_price_minor, override_by, discount_minor,
                 line_total_minor, warranty_until, loyalty_points)
             select id, $1, $2, pos, product, item, code, name, qty, list, unit, sold, overrider, disc, total, warranty,
                    points
               from unnest($3::uuid[], $4::int4[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::int8[],
                           $10::int8[], $11::int8[], $12::int8[], $13::uuid[], $14::int8[], $15::int8[],
                           $16::timestamptz[], $17::int8[])
                 as t(id, pos, product, item, code, name, qty, list, unit, sold, overrider, disc, total, warranty, points)
         ), payments as (
             insert into sales.payments (payment_id, order_id, shop_id, method, amount_minor, reference)
             select id, $1, $2, method, amount, reference
               from unnest($18::uuid[], $19::text[], $20::int8[], $21::text[]) as t(id, method, amount, reference)
         )
         insert into sales.ledger (entry_id, shop_id, method, direction, amount_minor, currency, source, order_id,
             return_id, register_id, customer_id, description, actor_id)
         select id, $2, method, direction, amount, $22, source, $1, null, $23, $24, description, $25
           from unnest($26::uuid[], $27::text[], $28::text[], $29::int8[], $30::text[], $31::text[])
             as t(id, method, direction, amount, source, description)",
        order_id,
        c.shop_id,
        &l.id,
        &l.position,
        &l.product_id,
        &l.item_id as &[Option<Uuid>],
        &l.barcode as &[Option<String>],
        &l.name,
        &l.quantity,
        &l.list_price,
        &l.unit_price,
        &l.sold_price,
        &l.override_by as &[Option<Uuid>],
        &l.discount,
        &l.line_total,
        &l.warranty_until as &[Option<DateTime<Utc>>],
        &l.loyalty_points,
        &p.id,
        &p.method,
        &p.amount,
        &p.reference as &[Option<String>],
        c.currency,
        c.register_id,
        c.customer_id,
        c.actor_id,
        &g.id,
        &g.method,
        &g.direction,
        &g.amount,
        &g.source,
        &g.description,
        w.wallet_id,
        w.ids,
        w.versions,
        w.kinds,
        w.methods as &[Option<String>],
        w.sealed,
        event.map(|e| e.message_id),
        event.map(|e| e.message_type),
        event.map(|e| e.version),
        event.map(|e| &e.payload),
        event.and_then(|e| e.request_id.as_deref()),
        event.and_then(|e| e.traceparent.as_deref()),
        event.and_then(|e| e.routing_key),
        answer.map(|a| a.shop_id),
        answer.map(|a| a.route),
        answer.map(|a| a.key),
        answer.map(|a| a.status_code),
        answer.map(|a| a.body)
    )
    .execute(conn)
    .await?;
    if let Some(e) = event {
        e.written();
    }
    Ok(())
}

/// Filters of the order list, all optional but the shop.
pub struct ListFilter {
    pub shop_id: Option<Uuid>,
    /// Only these shops (the caller's), when no shop is named.
    pub shops: Vec<Uuid>,
    pub customer_id: Option<Uuid>,
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

pub async fn list(pool: &PgPool, f: &ListFilter, limit: i64, offset: i64) -> sqlx::Result<(Vec<OrderRow>, i64)> {
    let total = sqlx::query_scalar!(
        r#"select count(*) as "n!" from sales.orders o
            where o.shop_id = any($1) and ($2::uuid is null or o.shop_id = $2) and ($3::uuid is null or o.customer_id = $3)
              and ($4::text is null or o.status = $4) and ($5::timestamptz is null or o.created_at >= $5)
              and ($6::timestamptz is null or o.created_at < $6)"#,
        &f.shops,
        f.shop_id,
        f.customer_id,
        f.status,
        f.from,
        f.until
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as!(
        OrderRow,
        r#"select o.order_id, o.shop_id, o.order_number, o.status, o.customer_id, o.register_id, o.currency,
                  o.subtotal_minor, o.discount_minor, o.total_minor, o.paid_minor, o.change_minor, o.due_minor,
                  o.discount_type, o.discount_value, o.reservation_id, o.send_receipt, o.note, o.created_by,
                  o.created_at, o.updated_at, o.completed_at,
                  c.name as "customer_name?", c.email as "customer_email?", c.phone as "customer_phone?"
             from sales.orders o
             left join sales.customers c on c.shop_id = o.shop_id and c.customer_id = o.customer_id
            where o.shop_id = any($1) and ($2::uuid is null or o.shop_id = $2) and ($3::uuid is null or o.customer_id = $3)
              and ($4::text is null or o.status = $4) and ($5::timestamptz is null or o.created_at >= $5)
              and ($6::timestamptz is null or o.created_at < $6)
            order by o.created_at desc, o.order_id desc
            limit $7 offset $8"#,
        &f.shops,
        f.shop_id,
        f.customer_id,
        f.status,
        f.from,
        f.until,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

pub async fn by_id(pool: &PgPool, order_id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as!(
        OrderRow,
        r#"select o.order_id, o.shop_id, o.order_number, o.status, o.customer_id, o.register_id, o.currency,
                  o.subtotal_minor, o.discount_minor, o.total_minor, o.paid_minor, o.change_minor, o.due_minor,
                  o.discount_type, o.discount_value, o.reservation_id, o.send_receipt, o.note, o.created_by,
                  o.created_at, o.updated_at, o.completed_at,
                  c.name as "customer_name?", c.email as "customer_email?", c.phone as "customer_phone?"
             from sales.orders o
             left join sales.customers c on c.shop_id = o.shop_id and c.customer_id = o.customer_id
            where o.order_id = $1"#,
        order_id
    )
    .fetch_optional(pool)
    .await
}

/// The lines and payments of `orders`, in order.
pub async fn details(pool: &PgPool, orders: &[Uuid]) -> sqlx::Result<(Vec<LineRow>, Vec<PaymentRow>)> {
    let lines = sqlx::query_as!(
        LineRow,
        "select order_line_id, order_id, product_id, item_id, barcode, name, quantity, list_price_minor,
                unit_price_minor, sold_price_minor, override_by, discount_minor, line_total_minor, warranty_until,
                loyalty_points
           from sales.order_lines where order_id = any($1) order by order_id, position",
        orders
    )
    .fetch_all(pool)
    .await?;
    let payments = sqlx::query_as!(
        PaymentRow,
        "select payment_id, order_id, method, amount_minor, reference, created_at
           from sales.payments where order_id = any($1) order by order_id, created_at, payment_id",
        orders
    )
    .fetch_all(pool)
    .await?;
    Ok((lines, payments))
}

pub async fn set_note(pool: &PgPool, order_id: Uuid, note: Option<&str>) -> sqlx::Result<bool> {
    let n = sqlx::query!("update sales.orders set note = $2 where order_id = $1", order_id, note)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Turns a draft into the completed sale `o` describes (same number). False when the order
/// is no longer a draft (completed or cancelled meanwhile).
pub async fn complete_draft(conn: &mut PgConnection, o: &NewOrder<'_>) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "update sales.orders set status = $2, customer_id = $3, register_id = $4, subtotal_minor = $5,
                discount_minor = $6, total_minor = $7, paid_minor = $8, change_minor = $9, due_minor = $10,
                reservation_id = $11, send_receipt = $12, completed_at = now(), created_by = created_by
          where order_id = $1 and status = 'DRAFT'",
        o.order_id,
        o.status,
        o.customer_id,
        o.register_id,
        o.subtotal_minor,
        o.discount_minor,
        o.total_minor,
        o.paid_minor,
        o.change_minor,
        o.due_minor,
        o.reservation_id,
        o.send_receipt
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn delete_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("delete from sales.order_lines where order_id = $1", order_id).execute(conn).await?;
    Ok(())
}

/// Cancels a DRAFT or PENDING order; answers its shop and reservation, or None when it is
/// in another state (or does not exist).
pub async fn cancel(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let row = sqlx::query!(
        "update sales.orders set status = 'CANCELLED', cancelled_at = now()
          where order_id = $1 and status in ('DRAFT', 'PENDING')
         returning shop_id, reservation_id",
        order_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.shop_id, r.reservation_id)))
}
