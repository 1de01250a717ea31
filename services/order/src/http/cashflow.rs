//! The shop owner's view of money, computed from the ledger: `GET /shop-balance/{shopId}`,
//! `GET /cash-flow/comprehensive/{shopId}` (the first system's dashboard shape, computed
//! honestly), `GET /cash-flow/customer-dues/{shopId}`, expenses (`POST/GET
//! /cash-flow/expenses`) and `GET /cash-flow/export` (the ledger as CSV).
//! Reading is the owner's; staff may book an expense paid from the till.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::{Currency, Money, MoneyInput, MoneyNumber};
use platform::pagination::{Page, PageQuery};
use platform::validate::text;
use platform::Problem;

use super::upcoming::{self, UpcomingView};
use super::AppState;
use crate::db::cashflow::{self as db, LedgerRow, NewExpense};
use crate::db::shops::{self, Shop};
use crate::domain::cashflow::{self as flow, DayTotal};
use crate::error::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(shop_balance))
        .routes(routes!(comprehensive))
        .routes(routes!(customer_dues))
        .routes(routes!(add_expense, list_expenses))
        .routes(routes!(export))
}

/// The shop, if the caller has `role` in it, with its currency.
pub async fn shop_for(s: &AppState, user: &AuthUser, shop: Uuid, role: ShopRole) -> Result<(Shop, Currency), Problem> {
    user.require_shop_role(ShopId(shop), role)?;
    let row = shops::get(&s.pool, shop).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?;
    let currency: Currency = row.currency.parse().map_err(|_| Problem::internal(&anyhow::anyhow!("shop currency")))?;
    Ok((row, currency))
}

fn money(minor: i64, c: Currency) -> String {
    Money::from_minor(minor, c).to_decimal_string()
}

fn number(minor: i64, c: Currency) -> MoneyNumber {
    MoneyNumber(Money::from_minor(minor, c))
}

fn overflow(_: platform::money::MoneyError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "AMOUNT_OUT_OF_RANGE",
        "The shop's totals are beyond what can be shown.",
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopBalance {
    pub shop_id: Uuid,
    pub currency: String,
    pub cash_balance: String,
    pub card_balance: String,
    pub bank_balance: String,
    pub total_balance: String,
}

/// Money the shop holds per method: every sale, payment, refund and expense of the ledger.
#[utoipa::path(get, path = "/shop-balance/{shopId}", tag = "cashflow", params(("shopId" = Uuid, Path)), responses(
    (status = 200, body = ShopBalance), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn shop_balance(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop): Path<Uuid>,
) -> Result<Json<ShopBalance>, Problem> {
    let (_, c) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let days = db::days(&s.pool, shop).await.map_err(Error::from)?;
    let b = flow::balances(&days).map_err(overflow)?;
    Ok(Json(ShopBalance {
        shop_id: shop,
        currency: c.code().to_owned(),
        cash_balance: money(b.cash, c),
        card_balance: money(b.card, c),
        bank_balance: money(b.bank, c),
        total_balance: money(b.total, c),
    }))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Due {
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    /// E-mail, else phone.
    pub contact_info: Option<String>,
    #[schema(value_type = f64)]
    pub balance: MoneyNumber,
    #[schema(value_type = f64)]
    pub due_amount: MoneyNumber,
    pub is_due: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dues {
    #[schema(value_type = f64)]
    pub total_dues: MoneyNumber,
    /// The customers who owe the shop, the largest due first.
    pub dues_list: Vec<Due>,
    pub count: usize,
}

async fn dues(s: &AppState, shop: Uuid, c: Currency) -> Result<Dues, Problem> {
    let mut owing: Vec<(Uuid, i64)> = s
        .wallets
        .balances(shop)
        .await
        .map_err(Error::from)?
        .into_iter()
        .filter(|(_, balance, _)| *balance < 0)
        .map(|(customer, balance, _)| (customer, balance))
        .collect();
    owing.sort_by_key(|(id, balance)| (*balance, *id));
    let ids: Vec<Uuid> = owing.iter().map(|(id, _)| *id).collect();
    let people: BTreeMap<Uuid, db::Debtor> = db::customers(&s.pool, shop, &ids)
        .await
        .map_err(Error::from)?
        .into_iter()
        .map(|d| (d.customer_id, d))
        .collect();
    let total = owing
        .iter()
        .try_fold(0i64, |sum, (_, b)| sum.checked_sub(*b))
        .ok_or_else(|| overflow(platform::money::MoneyError::Overflow))?;
    let dues_list: Vec<Due> = owing
        .into_iter()
        .map(|(customer_id, balance)| {
            let who = people.get(&customer_id);
            Due {
                customer_id,
                customer_name: who.and_then(|p| p.name.clone()),
                contact_info: who.and_then(|p| p.email.clone().or_else(|| p.phone.clone())),
                balance: number(balance, c),
                due_amount: number(balance.saturating_neg(), c),
                is_due: true,
            }
        })
        .collect();
    Ok(Dues { total_dues: number(total, c), count: dues_list.len(), dues_list })
}

/// What the shop's customers owe it (negative wallet balances).
#[utoipa::path(get, path = "/cash-flow/customer-dues/{shopId}", tag = "cashflow", params(("shopId" = Uuid, Path)), responses(
    (status = 200, body = Dues), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn customer_dues(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop): Path<Uuid>,
) -> Result<Json<Dues>, Problem> {
    let (_, c) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    Ok(Json(dues(&s, shop, c).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: Uuid,
    pub description: String,
    /// Always positive; `direction` says which way.
    pub amount: String,
    pub date: DateTime<Utc>,
    pub shop_id: Uuid,
    /// ORDER_PAYMENT, DUE_PAYMENT or EXPENSE (the first system's types).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// SALE, CHANGE, REFUND, DUE_PAYMENT, WALLET_TOP_UP, EXPENSE, CASH_IN, CASH_OUT, ….
    pub source: String,
    pub category: String,
    pub direction: String,
    pub method: String,
    pub is_recurring: bool,
    pub order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn transaction(r: LedgerRow, shop: Uuid, c: Currency) -> Transaction {
    Transaction {
        id: r.entry_id,
        kind: flow::client_type(&r.source),
        category: r.source.clone(),
        amount: money(r.amount_minor, c),
        date: r.created_at,
        shop_id: shop,
        description: r.description,
        source: r.source,
        direction: r.direction,
        method: r.method,
        is_recurring: false,
        order_id: r.order_id,
        created_at: r.created_at,
        updated_at: r.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeTotal {
    pub count: i64,
    #[schema(value_type = f64)]
    pub total: MoneyNumber,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthTrend {
    /// `YYYY-MM`.
    pub month: String,
    #[schema(value_type = f64)]
    pub income: MoneyNumber,
    #[schema(value_type = f64)]
    pub expense: MoneyNumber,
    #[schema(value_type = f64)]
    pub net: MoneyNumber,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transactions {
    /// The newest 10 ledger rows.
    pub recent: Vec<Transaction>,
    /// This month's rows by type.
    pub summary: BTreeMap<&'static str, TypeTotal>,
    /// The last 6 months, the oldest first.
    pub monthly_trends: Vec<MonthTrend>,
    /// Ledger rows this month.
    pub count: i64,
}

/// The first system's cashflow page, every figure from the ledger and the upcoming payments.
/// Months and days are the shop's (its time zone).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comprehensive {
    pub shop_id: Uuid,
    pub currency: String,
    pub today: NaiveDate,
    /// Cash, card and bank held now.
    #[schema(value_type = f64)]
    pub current_balance: MoneyNumber,
    pub cash_balance: String,
    pub card_balance: String,
    pub bank_balance: String,
    /// This month so far.
    #[schema(value_type = f64)]
    pub total_income: MoneyNumber,
    #[schema(value_type = f64)]
    pub total_expenses: MoneyNumber,
    /// Balance − payments due within 30 days + the last 30 days' net.
    #[schema(value_type = f64)]
    pub projected_balance: MoneyNumber,
    pub customer_dues: Dues,
    /// Pending payments due within 30 days (overdue ones included).
    #[schema(value_type = f64)]
    pub total_upcoming: MoneyNumber,
    pub upcoming_payments: Vec<UpcomingView>,
    pub transactions: Transactions,
    /// Takings per day that pay the next 30 days' bills.
    #[schema(value_type = f64)]
    pub daily_target: MoneyNumber,
    /// Today's income.
    #[schema(value_type = f64)]
    pub daily_progress: MoneyNumber,
    /// Days to the earliest pending payment (0 when one is overdue); null when none.
    pub days_until_next_payment: Option<i64>,
    /// This month against last month, percent.
    pub income_growth: f64,
    pub expense_growth: f64,
    /// Balance less the payments due within 30 days.
    #[schema(value_type = f64)]
    pub adjusted_balance: MoneyNumber,
    /// HEALTHY, WARNING or CRITICAL (from the projection).
    pub health_status: &'static str,
}

#[utoipa::path(get, path = "/cash-flow/comprehensive/{shopId}", tag = "cashflow", params(("shopId" = Uuid, Path)), responses(
    (status = 200, body = Comprehensive), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn comprehensive(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop): Path<Uuid>,
) -> Result<Json<Comprehensive>, Problem> {
    let (row, c) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let today = db::today(&s.pool, &row.time_zone).await.map_err(Error::from)?;
    let horizon = today.checked_add_days(Days::new(30)).unwrap_or(today);
    let (days, recent, due_soon, dues) = tokio::try_join!(
        async { db::days(&s.pool, shop).await.map_err(|e| Problem::from(Error::from(e))) },
        async { db::recent(&s.pool, shop, 10).await.map_err(|e| Problem::from(Error::from(e))) },
        async { db::pending(&s.pool, shop, Some(horizon)).await.map_err(|e| Problem::from(Error::from(e))) },
        dues(&s, shop, c),
    )?;
    let report = Report::new(&days, today).map_err(overflow)?;
    let due_30 = due_soon
        .iter()
        .try_fold(0i64, |sum, p| sum.checked_add(p.amount_minor))
        .ok_or_else(|| overflow(platform::money::MoneyError::Overflow))?;
    let projected = flow::projection(report.balances.total, due_30, report.last_30.net()).map_err(overflow)?;
    let days_until_next_payment = due_soon.first().map(|p| (p.due_date - today).num_days().max(0));
    let month_rows: i64 = days.iter().filter(|d| d.day >= report.month).map(|d| d.entries).sum();
    Ok(Json(Comprehensive {
        shop_id: shop,
        currency: c.code().to_owned(),
        today,
        current_balance: number(report.balances.total, c),
        cash_balance: money(report.balances.cash, c),
        card_balance: money(report.balances.card, c),
        bank_balance: money(report.balances.bank, c),
        total_income: number(report.this_month.income, c),
        total_expenses: number(report.this_month.expense, c),
        projected_balance: number(projected, c),
        customer_dues: dues,
        total_upcoming: number(due_30, c),
        upcoming_payments: due_soon.into_iter().map(|p| upcoming::view(p, today)).collect(),
        transactions: Transactions {
            recent: recent.into_iter().map(|r| transaction(r, shop, c)).collect(),
            summary: report.by_type(&days, c),
            monthly_trends: report
                .months
                .iter()
                .map(|(m, f)| MonthTrend {
                    month: m.format("%Y-%m").to_string(),
                    income: number(f.income, c),
                    expense: number(f.expense, c),
                    net: number(f.net(), c),
                })
                .collect(),
            count: month_rows,
        },
        daily_target: number(due_30 / 30, c),
        daily_progress: number(report.today.income, c),
        days_until_next_payment,
        income_growth: flow::growth(report.this_month.income, report.last_month.income),
        expense_growth: flow::growth(report.this_month.expense, report.last_month.expense),
        adjusted_balance: number(report.balances.total.saturating_sub(due_30), c),
        health_status: flow::health(projected, due_30),
    }))
}

/// The figures of one report, from the daily totals.
struct Report {
    month: NaiveDate,
    balances: flow::Balances,
    this_month: flow::Flow,
    last_month: flow::Flow,
    last_30: flow::Flow,
    today: flow::Flow,
    months: Vec<(NaiveDate, flow::Flow)>,
}

impl Report {
    fn new(days: &[DayTotal], today: NaiveDate) -> Result<Self, platform::money::MoneyError> {
        let month = flow::month_start(today, 0);
        let tomorrow = today.succ_opt().unwrap_or(today);
        Ok(Report {
            month,
            balances: flow::balances(days)?,
            this_month: flow::flow(days, month, tomorrow)?,
            last_month: flow::flow(days, flow::month_start(today, 1), month)?,
            last_30: flow::flow(days, today.checked_sub_days(Days::new(29)).unwrap_or(today), tomorrow)?,
            today: flow::flow(days, today, tomorrow)?,
            months: flow::monthly(days, today, 6)?,
        })
    }

    fn by_type(&self, days: &[DayTotal], c: Currency) -> BTreeMap<&'static str, TypeTotal> {
        let mut out: BTreeMap<&'static str, (i64, i128)> =
            ["ORDER_PAYMENT", "DUE_PAYMENT", "EXPENSE"].into_iter().map(|t| (t, (0, 0))).collect();
        for d in days.iter().filter(|d| d.day >= self.month) {
            let e = out.entry(flow::client_type(&d.source)).or_default();
            e.0 += d.entries;
            e.1 += i128::from(d.amount);
        }
        out.into_iter()
            .map(|(t, (count, total))| {
                (t, TypeTotal { count, total: number(i64::try_from(total).unwrap_or(i64::MAX), c) })
            })
            .collect()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpenseBody {
    shop_id: Option<Uuid>,
    amount: MoneyInput,
    /// CASH, CARD or BANK (CASH when left out).
    method: Option<String>,
    /// Rent, Utilities, Salaries, Supplies, … (free text, at most 60 characters).
    category: String,
    description: Option<String>,
    /// The register the cash came out of.
    register_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseView {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub category: String,
    pub description: String,
    pub amount: String,
    pub currency: String,
    pub method: String,
    /// The upcoming payment it paid, if any.
    pub upcoming_payment_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

pub fn expense_view(e: db::Expense) -> ExpenseView {
    let c: Currency = e.currency.parse().unwrap_or(Currency::LKR);
    ExpenseView {
        id: e.expense_id,
        shop_id: e.shop_id,
        amount: money(e.amount_minor, c),
        category: e.category,
        description: e.description,
        currency: e.currency,
        method: e.method,
        upcoming_payment_id: e.payment_id,
        created_by: e.actor_id,
        created_at: e.created_at,
    }
}

pub fn expense_method(raw: Option<&str>) -> Result<&'static str, Problem> {
    match raw.map(|m| m.trim().to_ascii_uppercase()).as_deref() {
        None | Some("CASH") => Ok("CASH"),
        Some("CARD") => Ok("CARD"),
        Some("BANK") => Ok("BANK"),
        Some(_) => Err(Problem::field("method", "CASH, CARD or BANK")),
    }
}

/// Money paid out of the shop (rent, a delivery, tea for the staff), booked with its ledger
/// row. Shop staff may book one; a retry with the same Idempotency-Key books it once.
#[utoipa::path(post, path = "/cash-flow/expenses", tag = "cashflow",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ExpenseBody, responses(
        (status = 201, body = ExpenseView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn add_expense(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Json(body): Json<ExpenseBody>,
) -> Result<Response, Problem> {
    let shop = user.acting_shop(body.shop_id.map(ShopId))?.0;
    let (_, c) = shop_for(&s, &user, shop, ShopRole::ShopStaff).await?;
    let amount = body.amount.read("amount", c)?;
    if amount.minor() <= 0 {
        return Err(Problem::field("amount", "must be positive"));
    }
    let method = expense_method(body.method.as_deref())?;
    let category = text("category", Some(&body.category), 60)?.ok_or_else(|| Problem::field("category", "required"))?;
    let description = text("description", body.description.as_deref(), 500)?.unwrap_or_else(|| category.clone());
    let request = (shop, amount.minor(), method, &category, &description, body.register_id);
    const ROUTE: &str = "POST /cash-flow/expenses";
    // Keyed, the expense's id is the key's: a retry whose first answer was lost after the
    // commit finds that expense instead of booking a second.
    let expense_id = idempotency::effect_id(ShopId(shop), ROUTE, &key).unwrap_or_else(Uuid::now_v7);
    idempotency::once(&s.pool, &key, ShopId(shop), ROUTE, &request, || async {
        let mut conn = s.pool.acquire().await.map_err(Error::from)?;
        if let Some(booked) = db::expense(&mut conn, shop, expense_id).await.map_err(Error::from)? {
            return Ok((StatusCode::CREATED, expense_view(booked)));
        }
        let e = db::insert_expense(
            &mut conn,
            &NewExpense {
                expense_id,
                shop_id: shop,
                category: &category,
                description: &description,
                amount_minor: amount.minor(),
                currency: c.code(),
                method,
                payment_id: None,
                register_id: body.register_id,
                actor_id: Some(user.user_id.0),
            },
        )
        .await
        .map_err(Error::from)?;
        Ok((StatusCode::CREATED, expense_view(e)))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpenseQuery {
    shop_id: Option<Uuid>,
    category: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// The shop's expenses, the newest first.
#[utoipa::path(get, path = "/cash-flow/expenses", tag = "cashflow", params(ExpenseQuery), responses(
    (status = 200, body = Page<ExpenseView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_expenses(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<ExpenseQuery>,
) -> Result<Json<Page<ExpenseView>>, Problem> {
    let shop = user.acting_shop(q.shop_id.map(ShopId))?.0;
    shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let category = text("category", q.category.as_deref(), 60)?;
    let (rows, total) =
        db::expenses(&s.pool, shop, category.as_deref(), page.limit, page.offset()).await.map_err(Error::from)?;
    Ok(Json(Page::new(rows.into_iter().map(expense_view).collect(), page, total)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    shop_id: Option<Uuid>,
    /// The first day (the shop's calendar), `YYYY-MM-DD`; the month's first day when left out.
    from: Option<NaiveDate>,
    /// The last day, included; today when left out.
    to: Option<NaiveDate>,
}

/// A spreadsheet cell: quoted, quotes doubled, and text that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@` first) kept as text.
fn cell(out: &mut String, v: &str) {
    out.push('"');
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&v.replace('"', "\"\""));
    out.push('"');
}

fn csv_line(r: &LedgerRow, c: Currency) -> String {
    let mut line = String::with_capacity(200);
    let opt = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    let signed = if r.direction == "OUT" { format!("-{}", money(r.amount_minor, c)) } else { money(r.amount_minor, c) };
    line.push_str(&format!(
        "{},{},{},{},{},{},",
        r.created_at.to_rfc3339(),
        r.entry_id,
        r.source,
        r.direction,
        r.method,
        signed
    ));
    cell(&mut line, &r.description);
    line.push_str(&format!(
        ",{},{},{},{},{},{}\r\n",
        opt(r.order_id),
        opt(r.return_id),
        opt(r.expense_id),
        opt(r.register_id),
        opt(r.customer_id),
        opt(r.actor_id)
    ));
    line
}

/// The ledger between two days of the shop's calendar as CSV (RFC 4180), streamed.
#[utoipa::path(get, path = "/cash-flow/export", tag = "cashflow", params(ExportQuery), responses(
    (status = 200, content_type = "text/csv", body = String), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn export(State(s): State<AppState>, user: AuthUser, Query(q): Query<ExportQuery>) -> Result<Response, Problem> {
    let shop = user.acting_shop(q.shop_id.map(ShopId))?.0;
    let (row, c) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let today = db::today(&s.pool, &row.time_zone).await.map_err(Error::from)?;
    let from = platform::validate::date("from", q.from)?.unwrap_or_else(|| flow::month_start(today, 0));
    let to = platform::validate::date("to", q.to)?.unwrap_or(today);
    if to < from {
        return Err(Problem::field("to", "must not be before `from`"));
    }
    let pool = s.pool.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let header = "at,entryId,source,direction,method,amount,description,orderId,returnId,expenseId,registerId,customerId,actorId\r\n";
        let mut chunk = String::from(header);
        let mut rows = db::export(&pool, shop, &row.time_zone, from, to);
        while let Some(next) = rows.next().await {
            match next {
                Ok(r) => chunk.push_str(&csv_line(&r, c)),
                Err(e) => {
                    tracing::error!(error = %e, "cashflow export stopped");
                    let _ = tx.send(Err(std::io::Error::other("the export stopped"))).await;
                    return;
                }
            }
            if chunk.len() >= 64 * 1024 && tx.send(Ok(Bytes::from(std::mem::take(&mut chunk)))).await.is_err() {
                return; // the client went away
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(Bytes::from(chunk))).await;
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let name = format!("attachment; filename=\"cashflow-{from}-{to}.csv\"");
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)], body)
        .into_response())
}
