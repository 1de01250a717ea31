//! The cashflow's storage: the ledger's daily totals, recent rows and CSV export, expenses
//! (each with its ledger row, in one statement) and upcoming payments.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::cashflow::DayTotal;

/// The shop's daily ledger totals (every day: the balance is all-time), and its today.
pub async fn days(pool: &PgPool, shop_id: Uuid) -> sqlx::Result<Vec<DayTotal>> {
    sqlx::query_as!(
        DayTotal,
        r#"select day, method, source, direction, amount_minor as amount, entries
             from sales.ledger_days where shop_id = $1"#,
        shop_id
    )
    .fetch_all(pool)
    .await
}

/// Today in the shop's time zone.
pub async fn today(pool: &PgPool, time_zone: &str) -> sqlx::Result<NaiveDate> {
    sqlx::query_scalar!(r#"select (now() at time zone $1)::date as "today!""#, time_zone).fetch_one(pool).await
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub entry_id: Uuid,
    pub method: String,
    pub direction: String,
    pub amount_minor: i64,
    pub source: String,
    pub description: String,
    pub order_id: Option<Uuid>,
    pub return_id: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The newest ledger rows of the shop.
pub async fn recent(pool: &PgPool, shop_id: Uuid, limit: i64) -> sqlx::Result<Vec<LedgerRow>> {
    sqlx::query_as!(
        LedgerRow,
        "select entry_id, method, direction, amount_minor, source, description, order_id, return_id, expense_id,
                register_id, customer_id, actor_id, created_at
           from sales.ledger where shop_id = $1 order by created_at desc, entry_id desc limit $2",
        shop_id,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Ledger rows between two days of the shop's calendar (`to` included), oldest first, as a
/// stream: an export of a year does not sit in memory.
pub fn export<'a>(
    pool: &'a PgPool,
    shop_id: Uuid,
    time_zone: &'a str,
    from: NaiveDate,
    to: NaiveDate,
) -> impl futures::Stream<Item = sqlx::Result<LedgerRow>> + 'a {
    sqlx::query_as!(
        LedgerRow,
        "select entry_id, method, direction, amount_minor, source, description, order_id, return_id, expense_id,
                register_id, customer_id, actor_id, created_at
           from sales.ledger
          where shop_id = $1 and created_at >= ($3::date::timestamp at time zone $2)
            and created_at < (($4::date + 1)::timestamp at time zone $2)
          order by created_at, entry_id",
        shop_id,
        time_zone,
        from,
        to
    )
    .fetch(pool)
}

pub struct NewExpense<'a> {
    pub expense_id: Uuid,
    pub shop_id: Uuid,
    pub category: &'a str,
    pub description: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub method: &'a str,
    pub payment_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct Expense {
    pub expense_id: Uuid,
    pub shop_id: Uuid,
    pub category: String,
    pub description: String,
    pub amount_minor: i64,
    pub currency: String,
    pub method: String,
    pub payment_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The expense and its ledger row (money out), in one statement.
pub async fn insert_expense(conn: &mut PgConnection, e: &NewExpense<'_>) -> sqlx::Result<Expense> {
    sqlx::query_as!(
        Expense,
        "with e as (
             insert into sales.expenses (expense_id, shop_id, category, description, amount_minor, currency, method,
                                         payment_id, actor_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             returning expense_id, shop_id, category, description, amount_minor, currency, method, payment_id, actor_id,
                       created_at),
         l as (
             insert into sales.ledger (entry_id, shop_id, method, direction, amount_minor, currency, source, expense_id,
                                       register_id, description, actor_id, created_at)
             select $10, shop_id, method, 'OUT', amount_minor, currency, 'EXPENSE', expense_id, $11,
                    category || ': ' || description, actor_id, created_at
               from e)
         select expense_id, shop_id, category, description, amount_minor, currency, method, payment_id, actor_id,
                created_at
           from e",
        e.expense_id,
        e.shop_id,
        e.category,
        e.description,
        e.amount_minor,
        e.currency,
        e.method,
        e.payment_id,
        e.actor_id,
        Uuid::now_v7(),
        e.register_id
    )
    .fetch_one(conn)
    .await
}

pub async fn expenses(
    pool: &PgPool,
    shop_id: Uuid,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Expense>, i64)> {
    let rows = sqlx::query_as!(
        Expense,
        "select expense_id, shop_id, category, description, amount_minor, currency, method, payment_id, actor_id,
                created_at
           from sales.expenses where shop_id = $1 and ($2::text is null or lower(category) = lower($2))
          order by created_at desc, expense_id desc limit $3 offset $4",
        shop_id,
        category,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar!(
        r#"select count(*) as "n!" from sales.expenses where shop_id = $1 and ($2::text is null or lower(category) = lower($2))"#,
        shop_id,
        category
    )
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

#[derive(Debug, Clone)]
pub struct Upcoming {
    pub payment_id: Uuid,
    pub shop_id: Uuid,
    pub description: String,
    pub category: String,
    pub amount_minor: i64,
    pub currency: String,
    pub due_date: NaiveDate,
    pub anchor_day: i16,
    pub frequency: Option<String>,
    pub is_priority: bool,
    pub status: String,
    pub paid_count: i32,
    pub last_paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct UpcomingFields<'a> {
    pub description: &'a str,
    pub category: &'a str,
    pub amount_minor: i64,
    pub due_date: NaiveDate,
    pub anchor_day: i16,
    pub frequency: Option<&'a str>,
    pub is_priority: bool,
}

pub async fn insert_upcoming(
    pool: &PgPool,
    shop_id: Uuid,
    currency: &str,
    f: &UpcomingFields<'_>,
) -> sqlx::Result<Upcoming> {
    sqlx::query_as!(
        Upcoming,
        "insert into sales.upcoming_payments (payment_id, shop_id, description, category, amount_minor, currency, due_date,
                                              anchor_day, frequency, is_priority)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         returning payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                   is_priority, status, paid_count, last_paid_at, created_at, updated_at",
        Uuid::now_v7(),
        shop_id,
        f.description,
        f.category,
        f.amount_minor,
        currency,
        f.due_date,
        f.anchor_day,
        f.frequency,
        f.is_priority
    )
    .fetch_one(pool)
    .await
}

/// One upcoming payment; `for update` in a transaction that pays it.
pub async fn upcoming(conn: &mut PgConnection, payment_id: Uuid, lock: bool) -> sqlx::Result<Option<Upcoming>> {
    if lock {
        return sqlx::query_as!(
            Upcoming,
            "select payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                    is_priority, status, paid_count, last_paid_at, created_at, updated_at
               from sales.upcoming_payments where payment_id = $1 for update",
            payment_id
        )
        .fetch_optional(conn)
        .await;
    }
    sqlx::query_as!(
        Upcoming,
        "select payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                is_priority, status, paid_count, last_paid_at, created_at, updated_at
           from sales.upcoming_payments where payment_id = $1",
        payment_id
    )
    .fetch_optional(conn)
    .await
}

/// The shop's pending payments (due up to `until` when given), the earliest first.
pub async fn pending(pool: &PgPool, shop_id: Uuid, until: Option<NaiveDate>) -> sqlx::Result<Vec<Upcoming>> {
    sqlx::query_as!(
        Upcoming,
        "select payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                is_priority, status, paid_count, last_paid_at, created_at, updated_at
           from sales.upcoming_payments
          where shop_id = $1 and status = 'PENDING' and ($2::date is null or due_date <= $2)
          order by due_date, is_priority desc, payment_id",
        shop_id,
        until
    )
    .fetch_all(pool)
    .await
}

pub async fn update_upcoming(
    conn: &mut PgConnection,
    payment_id: Uuid,
    f: &UpcomingFields<'_>,
) -> sqlx::Result<Upcoming> {
    sqlx::query_as!(
        Upcoming,
        "update sales.upcoming_payments
            set description = $2, category = $3, amount_minor = $4, due_date = $5, anchor_day = $6, frequency = $7,
                is_priority = $8
          where payment_id = $1
          returning payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                    is_priority, status, paid_count, last_paid_at, created_at, updated_at",
        payment_id,
        f.description,
        f.category,
        f.amount_minor,
        f.due_date,
        f.anchor_day,
        f.frequency,
        f.is_priority
    )
    .fetch_one(conn)
    .await
}

/// After a payment: a one-time one is PAID; a recurring one moves to `next_due`.
pub async fn mark_paid(
    conn: &mut PgConnection,
    payment_id: Uuid,
    next_due: Option<NaiveDate>,
) -> sqlx::Result<Upcoming> {
    sqlx::query_as!(
        Upcoming,
        "update sales.upcoming_payments
            set status = case when $2::date is null then 'PAID' else 'PENDING' end,
                due_date = coalesce($2, due_date), paid_count = paid_count + 1, last_paid_at = now()
          where payment_id = $1
          returning payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                    is_priority, status, paid_count, last_paid_at, created_at, updated_at",
        payment_id,
        next_due
    )
    .fetch_one(conn)
    .await
}

/// Removes a payment that was never paid; one with payments keeps its history and is only
/// CANCELLED, so its expenses still name it.
pub async fn delete_upcoming(conn: &mut PgConnection, payment_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "with gone as (delete from sales.upcoming_payments where payment_id = $1 and paid_count = 0 returning 1)
         update sales.upcoming_payments set status = 'CANCELLED' where payment_id = $1 and not exists (select 1 from gone)",
        payment_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct Debtor {
    pub customer_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Names and contacts of the shop's customers `ids`.
pub async fn customers(pool: &PgPool, shop_id: Uuid, ids: &[Uuid]) -> sqlx::Result<Vec<Debtor>> {
    sqlx::query_as!(
        Debtor,
        "select customer_id, name, email, phone from sales.customers where shop_id = $1 and customer_id = any($2)",
        shop_id,
        ids
    )
    .fetch_all(pool)
    .await
}

/// The daily totals rebuilt from the ledger (after the shop's time zone changed).
pub async fn rebuild_days(conn: &mut PgConnection, shop_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("select sales.rebuild_ledger_days($1)", shop_id).execute(conn).await?;
    Ok(())
}

/// The shop's payments with `status` (all but CANCELLED when `None`), the earliest due first.
pub async fn list_upcoming(
    pool: &PgPool,
    shop_id: Uuid,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Upcoming>, i64)> {
    let rows = sqlx::query_as!(
        Upcoming,
        "select payment_id, shop_id, description, category, amount_minor, currency, due_date, anchor_day, frequency,
                is_priority, status, paid_count, last_paid_at, created_at, updated_at
           from sales.upcoming_payments
          where shop_id = $1 and (status = $2 or ($2::text is null and status <> 'CANCELLED'))
          order by due_date, is_priority desc, payment_id limit $3 offset $4",
        shop_id,
        status,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar!(
        r#"select count(*) as "n!" from sales.upcoming_payments
            where shop_id = $1 and (status = $2 or ($2::text is null and status <> 'CANCELLED'))"#,
        shop_id,
        status
    )
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// An expense of the shop by id (a keyed retry finds the one its first run booked).
pub async fn expense(conn: &mut PgConnection, shop_id: Uuid, expense_id: Uuid) -> sqlx::Result<Option<Expense>> {
    sqlx::query_as!(
        Expense,
        "select expense_id, shop_id, category, description, amount_minor, currency, method, payment_id, actor_id,
                created_at
           from sales.expenses where shop_id = $1 and expense_id = $2",
        shop_id,
        expense_id
    )
    .fetch_optional(conn)
    .await
}

/// Whether the ledger holds this row (a keyed retry of a cash movement finds its first run's).
pub async fn ledger_has(conn: &mut PgConnection, entry_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"select exists(select 1 from sales.ledger where entry_id = $1) as "has!""#, entry_id)
        .fetch_one(conn)
        .await
}
