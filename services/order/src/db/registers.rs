//! Registers and their shifts (the ledger rows of a shift are assigned by the ledger's
//! trigger; see migration 20261122000016).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub struct Register {
    pub register_id: Uuid,
    pub shop_id: Uuid,
    pub name: String,
}

pub async fn register(pool: &PgPool, register_id: Uuid) -> sqlx::Result<Option<Register>> {
    sqlx::query_as!(
        Register,
        "select register_id, shop_id, name from sales.registers where register_id = $1",
        register_id
    )
    .fetch_optional(pool)
    .await
}

/// The register, created in `shop` on its first shift; `None` when the id is another shop's.
pub async fn ensure_register(
    conn: &mut PgConnection,
    register_id: Uuid,
    shop_id: Uuid,
    name: &str,
) -> sqlx::Result<Option<Register>> {
    sqlx::query!(
        "insert into sales.registers (register_id, shop_id, name) values ($1, $2, $3) on conflict (register_id) do nothing",
        register_id,
        shop_id,
        name
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        Register,
        "select register_id, shop_id, name from sales.registers where register_id = $1 and shop_id = $2",
        register_id,
        shop_id
    )
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct Shift {
    pub shift_id: Uuid,
    pub shop_id: Uuid,
    pub register_id: Uuid,
    pub status: String,
    pub currency: String,
    pub float_minor: i64,
    pub opened_by: Option<Uuid>,
    pub opened_at: DateTime<Utc>,
}

/// Opens a shift; `None` when the register already has one open.
pub async fn open(
    conn: &mut PgConnection,
    r: &Register,
    currency: &str,
    float_minor: i64,
    actor: Uuid,
) -> sqlx::Result<Option<Shift>> {
    sqlx::query_as!(
        Shift,
        "insert into sales.shifts (shift_id, shop_id, register_id, currency, float_minor, opened_by)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (register_id) where status = 'OPEN' do nothing
         returning shift_id, shop_id, register_id, status, currency, float_minor, opened_by, opened_at",
        Uuid::now_v7(),
        r.shop_id,
        r.register_id,
        currency,
        float_minor,
        actor
    )
    .fetch_optional(conn)
    .await
}

/// The register's open shift; locked against bookings (`for update`) for a close.
pub async fn open_shift(conn: &mut PgConnection, register_id: Uuid, lock: bool) -> sqlx::Result<Option<Shift>> {
    if lock {
        return sqlx::query_as!(
            Shift,
            "select shift_id, shop_id, register_id, status, currency, float_minor, opened_by, opened_at
               from sales.shifts where register_id = $1 and status = 'OPEN' for update",
            register_id
        )
        .fetch_optional(conn)
        .await;
    }
    sqlx::query_as!(
        Shift,
        "select shift_id, shop_id, register_id, status, currency, float_minor, opened_by, opened_at
           from sales.shifts where register_id = $1 and status = 'OPEN'",
        register_id
    )
    .fetch_optional(conn)
    .await
}

pub struct Total {
    pub method: String,
    pub source: String,
    pub direction: String,
    pub amount_minor: i64,
    pub entries: i64,
}

/// The shift's ledger per method, source and direction (a handful of rows, whatever its size).
pub async fn totals(conn: &mut PgConnection, shift_id: Uuid) -> sqlx::Result<Vec<Total>> {
    sqlx::query_as!(
        Total,
        "select method, source, direction, amount_minor, entries from sales.shift_totals where shift_id = $1
          order by method, source, direction",
        shift_id
    )
    .fetch_all(conn)
    .await
}

/// The register's next Z number, taken in the closing transaction (gapless: a failed close
/// takes none).
pub async fn take_z_number(conn: &mut PgConnection, register_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"update sales.registers set next_z_number = next_z_number + 1 where register_id = $1
           returning next_z_number - 1 as "z!""#,
        register_id
    )
    .fetch_one(conn)
    .await
}

pub async fn close(
    conn: &mut PgConnection,
    shift_id: Uuid,
    z_number: i64,
    z_report: &serde_json::Value,
    actor: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update sales.shifts set status = 'CLOSED', closed_at = now(), closed_by = $2, z_number = $3, z_report = $4
          where shift_id = $1",
        shift_id,
        actor,
        z_number,
        z_report
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A frozen Z report.
pub async fn z_report(pool: &PgPool, register_id: Uuid, z_number: i64) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar!(
        r#"select z_report as "z!" from sales.shifts where register_id = $1 and z_number = $2"#,
        register_id,
        z_number
    )
    .fetch_optional(pool)
    .await
}
