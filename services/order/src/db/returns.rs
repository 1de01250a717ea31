//! Returns: the lines of an order locked while a return counts against them, and the rows a
//! return writes.

use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ReturnableLine {
    pub order_line_id: Uuid,
    pub product_id: Uuid,
    pub barcode: Option<String>,
    pub name: String,
    pub quantity: i64,
    pub sold_price_minor: i64,
    pub line_total_minor: i64,
    pub returned_quantity: i64,
    pub warranty_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Points the whole line earned.
    pub loyalty_points: i64,
}

/// The order's lines, locked until the transaction ends: concurrent returns of one order
/// count one after the other.
pub async fn lock_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<ReturnableLine>> {
    sqlx::query_as!(
        ReturnableLine,
        "select order_line_id, product_id, barcode, name, quantity, sold_price_minor, line_total_minor,
                returned_quantity, warranty_until, loyalty_points
           from sales.order_lines where order_id = $1 order by position for update",
        order_id
    )
    .fetch_all(conn)
    .await
}

pub struct NewReturn<'a> {
    pub return_id: Uuid,
    pub order_id: Uuid,
    pub shop_id: Uuid,
    pub value_minor: i64,
    pub refund_minor: i64,
    pub restocked: bool,
    pub reason: Option<&'a str>,
    pub created_by: Uuid,
    pub lines: &'a [(Uuid, i64, i64)],
}

/// The return, its lines, and the lines' returned quantities (the check constraint refuses
/// more than was sold).
pub async fn insert(conn: &mut PgConnection, r: &NewReturn<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into sales.returns (return_id, order_id, shop_id, value_minor, refund_minor, restocked, reason, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        r.return_id,
        r.order_id,
        r.shop_id,
        r.value_minor,
        r.refund_minor,
        r.restocked,
        r.reason,
        r.created_by
    )
    .execute(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = r.lines.iter().map(|l| l.0).collect();
    let quantities: Vec<i64> = r.lines.iter().map(|l| l.1).collect();
    let values: Vec<i64> = r.lines.iter().map(|l| l.2).collect();
    sqlx::query!(
        "insert into sales.return_lines (return_id, order_line_id, quantity, value_minor)
         select $1, id, q, v from unnest($2::uuid[], $3::int8[], $4::int8[]) as t(id, q, v)",
        r.return_id,
        &ids,
        &quantities,
        &values
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update sales.order_lines l set returned_quantity = l.returned_quantity + t.q
           from unnest($1::uuid[], $2::int8[]) as t(id, q) where l.order_line_id = t.id",
        &ids,
        &quantities
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_status(conn: &mut PgConnection, order_id: Uuid, status: &str) -> sqlx::Result<()> {
    sqlx::query!("update sales.orders set status = $2 where order_id = $1", order_id, status).execute(conn).await?;
    Ok(())
}
