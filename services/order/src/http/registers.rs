//! Register shifts: `POST /registers/{id}/open {float}`, `POST /registers/{id}/cash-in|cash-out
//! {amount, reason}`, `GET /registers/{id}/current` (the X report, live), `POST
//! /registers/{id}/close {counted, countedByMethod?, note}` (variance and the frozen Z report,
//! numbered per register), `GET /registers/{id}/z/{number}`.
//!
//! Every ledger row naming a register lands in its open shift (the ledger's trigger), and a
//! shift's totals are kept beside it in the same transaction, so the X report and the close
//! read a handful of rows whether the shift has 10 sales or 10,000, and always equal the
//! ledger. Shop staff run the registers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::{Currency, Money, MoneyInput};
use platform::Problem;

use super::cashflow::shop_for;
use super::AppState;
use crate::db::orders::{self as db_orders, LedgerContext, NewLedger};
use crate::db::registers::{self as db, Register, Shift};
use crate::domain::cashflow::{self as flow, PerMethod};
use crate::error::Error;
use platform::validate::text;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open))
        .routes(routes!(cash_in))
        .routes(routes!(cash_out))
        .routes(routes!(current))
        .routes(routes!(close))
        .routes(routes!(z_report))
}

fn no_register() -> Problem {
    Problem::not_found("REGISTER_NOT_FOUND", "No such register.")
}

fn not_open() -> Problem {
    Problem::conflict("SHIFT_NOT_OPEN", "The register has no open shift: open it first.")
}

/// The register, if the caller works in its shop, with the shop's currency.
async fn register(s: &AppState, user: &AuthUser, id: Uuid) -> Result<(Register, Currency), Problem> {
    let r = db::register(&s.pool, id).await.map_err(Error::from)?.ok_or_else(no_register)?;
    let (_, c) = shop_for(s, user, r.shop_id, ShopRole::ShopStaff).await.map_err(|_| no_register())?;
    Ok((r, c))
}

fn money(minor: i64, c: Currency) -> String {
    Money::from_minor(minor, c).to_decimal_string()
}

fn positive(raw: &MoneyInput, field: &str, c: Currency, zero_ok: bool) -> Result<i64, Problem> {
    let m = raw.read(field, c)?.minor();
    if m < 0 || (m == 0 && !zero_ok) {
        return Err(Problem::field(field, if zero_ok { "must not be negative" } else { "must be positive" }));
    }
    Ok(m)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Amounts {
    pub cash: String,
    pub card: String,
    pub bank: String,
    pub wallet: String,
}

fn amounts(p: PerMethod, c: Currency) -> Amounts {
    Amounts { cash: money(p.cash, c), card: money(p.card, c), bank: money(p.bank, c), wallet: money(p.wallet, c) }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub method: String,
    /// SALE, CHANGE, REFUND, DUE_PAYMENT, WALLET_TOP_UP, EXPENSE, CASH_IN, CASH_OUT, OPENING_FLOAT, CLOSING_VARIANCE.
    pub source: String,
    pub direction: String,
    pub amount: String,
    pub count: i64,
}

/// The X report: a shift as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShiftReport {
    pub shift_id: Uuid,
    pub register_id: Uuid,
    pub register_name: String,
    pub shop_id: Uuid,
    pub currency: String,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub opened_by: Option<Uuid>,
    pub float: String,
    /// Float + cash sales − change − cash refunds + cash in − cash out (and any other cash
    /// the register took or paid), and per method what the terminal and books should show.
    pub expected_cash: String,
    pub expected: Amounts,
    /// The shift's ledger per method, source and direction.
    pub lines: Vec<Line>,
    /// Sales rung up in the shift (ledger rows of sales).
    pub sales: i64,
}

async fn report(
    conn: &mut sqlx::PgConnection,
    r: &Register,
    shift: &Shift,
    c: Currency,
) -> Result<(ShiftReport, PerMethod), Problem> {
    let totals = db::totals(conn, shift.shift_id).await.map_err(Error::from)?;
    let expected = flow::expected(totals.iter().map(|t| (t.method.as_str(), t.direction.as_str(), t.amount_minor)))
        .map_err(|_| {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "AMOUNT_OUT_OF_RANGE", "The shift's totals overflow.")
        })?;
    let sales = totals.iter().filter(|t| t.source == "SALE").map(|t| t.entries).sum();
    Ok((
        ShiftReport {
            shift_id: shift.shift_id,
            register_id: r.register_id,
            register_name: r.name.clone(),
            shop_id: r.shop_id,
            currency: c.code().to_owned(),
            status: shift.status.clone(),
            opened_at: shift.opened_at,
            opened_by: shift.opened_by,
            float: money(shift.float_minor, c),
            expected_cash: money(expected.cash, c),
            expected: amounts(expected, c),
            lines: totals
                .into_iter()
                .map(|t| Line {
                    amount: money(t.amount_minor, c),
                    method: t.method,
                    source: t.source,
                    direction: t.direction,
                    count: t.entries,
                })
                .collect(),
            sales,
        },
        expected,
    ))
}

fn one_row(id: Uuid, method: &str, direction: &str, amount: i64, source: &str, description: String) -> NewLedger {
    NewLedger {
        id: vec![id],
        method: vec![method.to_owned()],
        direction: vec![direction.to_owned()],
        amount: vec![amount],
        source: vec![source.to_owned()],
        description: vec![description],
    }
}

fn context<'a>(r: &Register, c: &'a Currency, user: &AuthUser) -> LedgerContext<'a> {
    LedgerContext {
        shop_id: r.shop_id,
        currency: c.code(),
        order_id: None,
        return_id: None,
        register_id: Some(r.register_id),
        customer_id: None,
        actor_id: Some(user.user_id.0),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenBody {
    /// The cash in the drawer at the start.
    float: MoneyInput,
    /// Needed on a register's first shift when the caller belongs to several shops.
    shop_id: Option<Uuid>,
    /// The register's name, on its first shift ("Till 1" when left out).
    name: Option<String>,
}

/// Opens a shift on the register (creating the register on its first shift) with the float
/// in the drawer. One open shift per register.
#[utoipa::path(post, path = "/registers/{id}/open", tag = "registers", params(("id" = Uuid, Path)), request_body = OpenBody,
    responses(
        (status = 201, body = ShiftReport), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn open(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<OpenBody>,
) -> Result<(StatusCode, Json<ShiftReport>), Problem> {
    let shop = match db::register(&s.pool, id).await.map_err(Error::from)? {
        Some(r) => r.shop_id,
        None => user.acting_shop(body.shop_id.map(ShopId))?.0,
    };
    let (_, c) = shop_for(&s, &user, shop, ShopRole::ShopStaff).await.map_err(|e| {
        if body.shop_id.is_some() {
            e
        } else {
            no_register()
        }
    })?;
    let float = positive(&body.float, "float", c, true)?;
    let name = text("name", body.name.as_deref(), 60)?.unwrap_or_else(|| "Till 1".to_owned());
    let mut tx = s.pool.begin().await.map_err(Error::from)?;
    let r = db::ensure_register(&mut tx, id, shop, &name).await.map_err(Error::from)?.ok_or_else(no_register)?;
    let shift =
        db::open(&mut tx, &r, c.code(), float, user.user_id.0).await.map_err(Error::from)?.ok_or_else(|| {
            Problem::conflict("SHIFT_ALREADY_OPEN", "The register already has an open shift: close it first.")
        })?;
    if float > 0 {
        let row = one_row(Uuid::now_v7(), "CASH", "IN", float, "OPENING_FLOAT", format!("Opening float, {}", r.name));
        db_orders::insert_ledger(&mut tx, &context(&r, &c, &user), &row).await.map_err(Error::from)?;
    }
    let (x, _) = report(&mut tx, &r, &shift, c).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok((StatusCode::CREATED, Json(x)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CashBody {
    amount: MoneyInput,
    reason: String,
}

async fn move_cash(
    s: &AppState,
    user: &AuthUser,
    key: &IdempotencyKey,
    id: Uuid,
    body: CashBody,
    into: bool,
) -> Result<Response, Problem> {
    let (r, c) = register(s, user, id).await?;
    let amount = positive(&body.amount, "amount", c, false)?;
    let reason = text("reason", Some(&body.reason), 200)?.ok_or_else(|| Problem::field("reason", "required"))?;
    let (source, direction, route) = if into {
        ("CASH_IN", "IN", "POST /registers/cash-in")
    } else {
        ("CASH_OUT", "OUT", "POST /registers/cash-out")
    };
    let request = (id, amount, &reason);
    // Keyed, the ledger row's id is the key's: a retry whose first answer was lost after the
    // commit moves no more cash.
    let entry = idempotency::effect_id(ShopId(r.shop_id), route, key).unwrap_or_else(Uuid::now_v7);
    idempotency::once(&s.pool, key, ShopId(r.shop_id), route, &request, || async {
        let mut tx = s.pool.begin().await.map_err(Error::from)?;
        let shift = db::open_shift(&mut tx, id, false).await.map_err(Error::from)?.ok_or_else(not_open)?;
        if !crate::db::cashflow::ledger_has(&mut tx, entry).await.map_err(Error::from)? {
            let row = one_row(entry, "CASH", direction, amount, source, reason.clone());
            db_orders::insert_ledger(&mut tx, &context(&r, &c, user), &row).await.map_err(Error::from)?;
        }
        let (x, _) = report(&mut tx, &r, &shift, c).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok((StatusCode::CREATED, x))
    })
    .await
}

/// Cash put into the drawer (change from the bank), with its reason.
#[utoipa::path(post, path = "/registers/{id}/cash-in", tag = "registers",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CashBody, responses(
        (status = 201, body = ShiftReport), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn cash_in(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(body): Json<CashBody>,
) -> Result<Response, Problem> {
    move_cash(&s, &user, &key, id, body, true).await
}

/// Cash taken out of the drawer (to the bank, the safe), with its reason.
#[utoipa::path(post, path = "/registers/{id}/cash-out", tag = "registers",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CashBody, responses(
        (status = 201, body = ShiftReport), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn cash_out(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(body): Json<CashBody>,
) -> Result<Response, Problem> {
    move_cash(&s, &user, &key, id, body, false).await
}

/// The X report of the register's open shift, live.
#[utoipa::path(get, path = "/registers/{id}/current", tag = "registers", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ShiftReport), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn current(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ShiftReport>, Problem> {
    let (r, c) = register(&s, &user, id).await?;
    let mut conn = s.pool.acquire().await.map_err(Error::from)?;
    let shift = db::open_shift(&mut conn, id, false).await.map_err(Error::from)?.ok_or_else(not_open)?;
    Ok(Json(report(&mut conn, &r, &shift, c).await?.0))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseBody {
    /// The cash counted in the drawer.
    counted: MoneyInput,
    /// What the card terminal and the bank show, when counted too.
    counted_by_method: Option<CountedByMethod>,
    note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE", deny_unknown_fields)]
pub struct CountedByMethod {
    card: Option<MoneyInput>,
    bank: Option<MoneyInput>,
}

/// The Z report: the shift as it closed, frozen.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZReport {
    /// Gapless per register, from 1.
    pub z_number: i64,
    pub closed_at: DateTime<Utc>,
    pub closed_by: Uuid,
    #[serde(flatten)]
    pub shift: ShiftReport,
    pub counted_cash: String,
    /// Counted − expected cash (negative: short).
    pub variance: String,
    pub counted_card: Option<String>,
    pub card_variance: Option<String>,
    pub counted_bank: Option<String>,
    pub bank_variance: Option<String>,
    pub note: Option<String>,
}

/// Closes the shift: the cash variance becomes a ledger row (money found or lost), the Z
/// report is frozen with the register's next number, and nothing more lands in the shift.
#[utoipa::path(post, path = "/registers/{id}/close", tag = "registers", params(("id" = Uuid, Path)), request_body = CloseBody,
    responses(
        (status = 200, body = ZReport), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn close(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<CloseBody>,
) -> Result<Json<ZReport>, Problem> {
    let (r, c) = register(&s, &user, id).await?;
    let counted = positive(&body.counted, "counted", c, true)?;
    let by = body.counted_by_method.as_ref();
    let card = by.and_then(|b| b.card.as_ref()).map(|m| positive(m, "countedByMethod.CARD", c, true)).transpose()?;
    let bank = by.and_then(|b| b.bank.as_ref()).map(|m| positive(m, "countedByMethod.BANK", c, true)).transpose()?;
    let note = text("note", body.note.as_deref(), 500)?;
    let mut tx = s.pool.begin().await.map_err(Error::from)?;
    // Locked: bookings on the register wait, then find it closed.
    let shift = db::open_shift(&mut tx, id, true).await.map_err(Error::from)?.ok_or_else(not_open)?;
    let (before, expected) = report(&mut tx, &r, &shift, c).await?;
    let variance = counted.checked_sub(expected.cash).ok_or_else(|| Problem::field("counted", "out of range"))?;
    if variance != 0 {
        let (direction, what) = if variance > 0 { ("IN", "over") } else { ("OUT", "short") };
        let row = one_row(
            Uuid::now_v7(),
            "CASH",
            direction,
            variance.saturating_abs(),
            "CLOSING_VARIANCE",
            format!("Cash {what} at close, {}", r.name),
        );
        db_orders::insert_ledger(&mut tx, &context(&r, &c, &user), &row).await.map_err(Error::from)?;
    }
    // The Z report shows what was expected before the variance, and every line with it.
    let (after, _) = report(&mut tx, &r, &shift, c).await?;
    let z_number = db::take_z_number(&mut tx, id).await.map_err(Error::from)?;
    let closed_at: DateTime<Utc> =
        sqlx::query_scalar!(r#"select now() as "now!""#).fetch_one(&mut *tx).await.map_err(Error::from)?;
    let diff = |counted: Option<i64>, expected: i64| counted.map(|n| money(n.saturating_sub(expected), c));
    let z = ZReport {
        z_number,
        closed_at,
        closed_by: user.user_id.0,
        shift: ShiftReport { status: "CLOSED".to_owned(), lines: after.lines, ..before },
        counted_cash: money(counted, c),
        variance: money(variance, c),
        counted_card: card.map(|n| money(n, c)),
        card_variance: diff(card, expected.card),
        counted_bank: bank.map(|n| money(n, c)),
        bank_variance: diff(bank, expected.bank),
        note,
    };
    let frozen = serde_json::to_value(&z).map_err(|e| Error::Internal(e.into()))?;
    db::close(&mut tx, shift.shift_id, z_number, &frozen, user.user_id.0).await.map_err(Error::from)?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(z))
}

/// A closed shift's Z report, as frozen at its close.
#[utoipa::path(get, path = "/registers/{id}/z/{number}", tag = "registers", params(("id" = Uuid, Path), ("number" = i64, Path)),
    responses((status = 200, body = ZReport), (status = 401, body = Problem), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn z_report(
    State(s): State<AppState>,
    user: AuthUser,
    Path((id, number)): Path<(Uuid, i64)>,
) -> Result<Json<serde_json::Value>, Problem> {
    register(&s, &user, id).await?;
    let z = db::z_report(&s.pool, id, number)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Problem::not_found("Z_REPORT_NOT_FOUND", "No such Z report."))?;
    Ok(Json(z))
}
