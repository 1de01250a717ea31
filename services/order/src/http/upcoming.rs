//! Upcoming payments, the bills a shop expects: `POST/GET /upcoming-payments`,
//! `GET/PUT/DELETE /upcoming-payments/{id}`, `PUT /upcoming-payments/{id}/pay` (books the
//! expense; a recurring payment rolls to its next date). Both shapes: the first system's
//! `isRecurring` (monthly) and `paymentType`, and our `frequency` (DAILY … ANNUALLY).
//! The shop owner's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, OptionalJson, Path, Query};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::{Currency, Money, MoneyInput};
use platform::pagination::{PageMeta, PageQuery};
use platform::Problem;

use super::cashflow::{expense_method, expense_view, shop_for, ExpenseView};
use super::AppState;
use crate::db::cashflow::{self as db, NewExpense, Upcoming, UpcomingFields};
use crate::domain::recurring::{self, Frequency};
use crate::error::Error;
use platform::validate::text;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(get_one, update, delete)).routes(routes!(pay))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpcomingView {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub description: String,
    pub category: String,
    pub amount: String,
    pub currency: String,
    pub due_date: NaiveDate,
    /// ONE_TIME or RECURRING (the first system's names).
    pub payment_type: &'static str,
    pub is_recurring: bool,
    /// DAILY, WEEKLY, MONTHLY, QUARTERLY or ANNUALLY; null when one-time.
    pub frequency: Option<String>,
    pub is_priority: bool,
    /// PENDING, PAID (one-time, paid) or CANCELLED.
    pub status: String,
    /// Pending and due before today (the shop's).
    pub is_overdue: bool,
    pub paid_count: i32,
    pub last_paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn view(p: Upcoming, today: NaiveDate) -> UpcomingView {
    let c: Currency = p.currency.parse().unwrap_or(Currency::LKR);
    UpcomingView {
        id: p.payment_id,
        shop_id: p.shop_id,
        amount: Money::from_minor(p.amount_minor, c).to_decimal_string(),
        payment_type: if p.frequency.is_some() { "RECURRING" } else { "ONE_TIME" },
        is_recurring: p.frequency.is_some(),
        is_overdue: p.status == "PENDING" && p.due_date < today,
        description: p.description,
        category: p.category,
        currency: p.currency,
        due_date: p.due_date,
        frequency: p.frequency,
        is_priority: p.is_priority,
        status: p.status,
        paid_count: p.paid_count,
        last_paid_at: p.last_paid_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// Create (every field but `shopId` and `id` optional on edit, where what is left out stays).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpcomingBody {
    shop_id: Option<Uuid>,
    /// The first system's PUT repeats the payment's id: it must be the path's.
    id: Option<Uuid>,
    description: Option<String>,
    category: Option<String>,
    amount: Option<MoneyInput>,
    /// `YYYY-MM-DD`.
    due_date: Option<NaiveDate>,
    /// The first system's: true means monthly.
    is_recurring: Option<bool>,
    /// ONE_TIME or RECURRING (monthly unless `frequency` says otherwise).
    payment_type: Option<String>,
    frequency: Option<String>,
    is_priority: Option<bool>,
}

/// The frequency the body asks for: `frequency` wins; `isRecurring`/`paymentType` say
/// monthly or none; contradictions are refused. `None` in the outer option: not mentioned.
fn frequency(body: &UpcomingBody) -> Result<Option<Option<Frequency>>, Problem> {
    let named = match body.frequency.as_deref() {
        None => None,
        Some(f) => Some(
            Frequency::parse(f)
                .ok_or_else(|| Problem::field("frequency", "DAILY, WEEKLY, MONTHLY, QUARTERLY or ANNUALLY"))?,
        ),
    };
    let recurring = match body.payment_type.as_deref().map(str::trim) {
        None => body.is_recurring,
        Some(t) if t.eq_ignore_ascii_case("RECURRING") => Some(true),
        Some(t) if t.eq_ignore_ascii_case("ONE_TIME") => Some(false),
        Some(_) => return Err(Problem::field("paymentType", "ONE_TIME or RECURRING")),
    };
    if body.is_recurring.is_some() && recurring != body.is_recurring {
        return Err(Problem::field("isRecurring", "contradicts paymentType"));
    }
    match (named, recurring) {
        (Some(_), Some(false)) => Err(Problem::field("frequency", "a one-time payment has no frequency")),
        (Some(f), _) => Ok(Some(Some(f))),
        (None, Some(true)) => Ok(Some(Some(Frequency::Monthly))),
        (None, Some(false)) => Ok(Some(None)),
        (None, None) => Ok(None),
    }
}

fn amount(raw: &MoneyInput, c: Currency) -> Result<i64, Problem> {
    let m = raw.read("amount", c)?;
    if m.minor() <= 0 {
        return Err(Problem::field("amount", "must be positive"));
    }
    Ok(m.minor())
}

fn anchor(due: NaiveDate) -> i16 {
    i16::try_from(due.day()).unwrap_or(1)
}

/// Adds a bill the shop expects to pay.
#[utoipa::path(post, path = "/upcoming-payments", tag = "cashflow", request_body = UpcomingBody, responses(
    (status = 201, body = UpcomingView), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create(
    State(s): State<AppState>,
    user: AuthUser,
    Json(body): Json<UpcomingBody>,
) -> Result<(StatusCode, Json<UpcomingView>), Problem> {
    platform::validate::body_id(body.id, None)?;
    let shop = user.acting_shop(body.shop_id.map(ShopId))?.0;
    let (row, c) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let description = text("description", body.description.as_deref(), 200)?
        .ok_or_else(|| Problem::field("description", "required"))?;
    let category = text("category", body.category.as_deref(), 60)?.unwrap_or_else(|| "Bills".to_owned());
    let minor = amount(body.amount.as_ref().ok_or_else(|| Problem::field("amount", "required"))?, c)?;
    let due =
        platform::validate::date("dueDate", body.due_date)?.ok_or_else(|| Problem::field("dueDate", "required"))?;
    let freq = frequency(&body)?.flatten();
    let fields = UpcomingFields {
        description: &description,
        category: &category,
        amount_minor: minor,
        due_date: due,
        anchor_day: anchor(due),
        frequency: freq.map(Frequency::as_str),
        is_priority: body.is_priority.unwrap_or(false),
    };
    let p = db::insert_upcoming(&s.pool, shop, c.code(), &fields).await.map_err(Error::from)?;
    let today = db::today(&s.pool, &row.time_zone).await.map_err(Error::from)?;
    Ok((StatusCode::CREATED, Json(view(p, today))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UpcomingQuery {
    shop_id: Option<Uuid>,
    /// PENDING, PAID or CANCELLED; all but CANCELLED when left out.
    status: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpcomingList {
    pub data: Vec<UpcomingView>,
    /// All that match (the first system's clients read it).
    pub count: i64,
    pub meta: PageMeta,
}

/// The shop's payments, the earliest due first.
#[utoipa::path(get, path = "/upcoming-payments", tag = "cashflow", params(UpcomingQuery), responses(
    (status = 200, body = UpcomingList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<UpcomingQuery>,
) -> Result<Json<UpcomingList>, Problem> {
    let shop = user.acting_shop(q.shop_id.map(ShopId))?.0;
    let (row, _) = shop_for(&s, &user, shop, ShopRole::ShopOwner).await?;
    let status = match q.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some(st @ ("PENDING" | "PAID" | "CANCELLED")) => Some(st.to_owned()),
        Some(_) => return Err(Problem::field("status", "PENDING, PAID or CANCELLED")),
    };
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let (rows, total) =
        db::list_upcoming(&s.pool, shop, status.as_deref(), page.limit, page.offset()).await.map_err(Error::from)?;
    let today = db::today(&s.pool, &row.time_zone).await.map_err(Error::from)?;
    let list = platform::pagination::Page::new(rows.into_iter().map(|p| view(p, today)).collect(), page, total);
    Ok(Json(UpcomingList { data: list.data, count: total, meta: list.meta }))
}

fn not_found() -> Problem {
    Problem::not_found("PAYMENT_NOT_FOUND", "No such upcoming payment.")
}

/// The payment and its shop's today, if the caller owns the shop (another shop's payment
/// does not exist for them).
async fn owned(s: &AppState, user: &AuthUser, id: Uuid) -> Result<(Upcoming, NaiveDate), Problem> {
    let mut conn = s.pool.acquire().await.map_err(Error::from)?;
    let p = db::upcoming(&mut conn, id, false).await.map_err(Error::from)?.ok_or_else(not_found)?;
    let (row, _) = shop_for(s, user, p.shop_id, ShopRole::ShopOwner).await.map_err(|_| not_found())?;
    let today = db::today(&s.pool, &row.time_zone).await.map_err(Error::from)?;
    Ok((p, today))
}

#[utoipa::path(get, path = "/upcoming-payments/{id}", tag = "cashflow", params(("id" = Uuid, Path)), responses(
    (status = 200, body = UpcomingView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn get_one(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<UpcomingView>, Problem> {
    let (p, today) = owned(&s, &user, id).await?;
    Ok(Json(view(p, today)))
}

/// Edits a pending payment; what is left out stays.
#[utoipa::path(put, path = "/upcoming-payments/{id}", tag = "cashflow", params(("id" = Uuid, Path)), request_body = UpcomingBody,
    responses(
        (status = 200, body = UpcomingView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpcomingBody>,
) -> Result<Json<UpcomingView>, Problem> {
    platform::validate::body_id(body.id, Some(id))?;
    let (current, today) = owned(&s, &user, id).await?;
    platform::validate::unchanged("shopId", body.shop_id, Some(current.shop_id))?;
    if current.status != "PENDING" {
        return Err(Problem::conflict("PAYMENT_NOT_PENDING", format!("This payment is {}.", current.status)));
    }
    let c: Currency = current.currency.parse().unwrap_or(Currency::LKR);
    let description =
        text("description", body.description.as_deref(), 200)?.unwrap_or_else(|| current.description.clone());
    let category = text("category", body.category.as_deref(), 60)?.unwrap_or_else(|| current.category.clone());
    let minor = body.amount.as_ref().map(|a| amount(a, c)).transpose()?.unwrap_or(current.amount_minor);
    let due = platform::validate::date("dueDate", body.due_date)?;
    let freq = match frequency(&body)? {
        Some(f) => f.map(Frequency::as_str),
        None => current.frequency.as_deref().and_then(Frequency::parse).map(Frequency::as_str),
    };
    let fields = UpcomingFields {
        description: &description,
        category: &category,
        amount_minor: minor,
        due_date: due.unwrap_or(current.due_date),
        anchor_day: due.map_or(current.anchor_day, anchor),
        frequency: freq,
        is_priority: body.is_priority.unwrap_or(current.is_priority),
    };
    let mut conn = s.pool.acquire().await.map_err(Error::from)?;
    let p = db::update_upcoming(&mut conn, id, &fields).await.map_err(Error::from)?;
    Ok(Json(view(p, today)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    pub message: String,
}

/// Removes a payment; one paid before is cancelled instead, so its expenses keep naming it.
#[utoipa::path(delete, path = "/upcoming-payments/{id}", tag = "cashflow", params(("id" = Uuid, Path)), responses(
    (status = 200, body = Removed), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn delete(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<Json<Removed>, Problem> {
    owned(&s, &user, id).await?;
    let mut conn = s.pool.acquire().await.map_err(Error::from)?;
    db::delete_upcoming(&mut conn, id).await.map_err(Error::from)?;
    Ok(Json(Removed { message: "Upcoming payment removed.".to_owned() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayBody {
    /// CASH, CARD or BANK (CASH when left out).
    method: Option<String>,
    register_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paid {
    /// The payment after paying: PAID, or PENDING again at its next due date.
    pub payment: UpcomingView,
    pub expense: ExpenseView,
}

/// Pays a pending payment: books the expense (with its ledger row) and either closes a
/// one-time payment or moves a recurring one to its next date, in one transaction. The
/// first system sends no body. A retry with the same Idempotency-Key pays once.
#[utoipa::path(put, path = "/upcoming-payments/{id}/pay", tag = "cashflow", params(("id" = Uuid, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Option<PayBody>, responses(
        (status = 200, body = Paid), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn pay(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    OptionalJson(body): OptionalJson<PayBody>,
) -> Result<Response, Problem> {
    let (current, today) = owned(&s, &user, id).await?;
    let method = expense_method(body.as_ref().and_then(|b| b.method.as_deref()))?;
    let register_id = body.as_ref().and_then(|b| b.register_id);
    let request = (id, method, register_id);
    const ROUTE: &str = "PUT /upcoming-payments/pay";
    // Keyed, the expense's id is the key's: a retry whose first answer was lost after the
    // commit answers that payment instead of paying again.
    let expense_id = idempotency::effect_id(ShopId(current.shop_id), ROUTE, &key).unwrap_or_else(Uuid::now_v7);
    idempotency::once(&s.pool, &key, ShopId(current.shop_id), ROUTE, &request, || async {
        let mut tx = s.pool.begin().await.map_err(Error::from)?;
        // Locked: two clicks on "pay" pay once (the second sees it paid or moved on).
        let p = db::upcoming(&mut tx, id, true).await.map_err(Error::from)?.ok_or_else(not_found)?;
        if let Some(booked) = db::expense(&mut tx, p.shop_id, expense_id).await.map_err(Error::from)? {
            return Ok((StatusCode::OK, Paid { payment: view(p, today), expense: expense_view(booked) }));
        }
        if p.status != "PENDING" || p.due_date != current.due_date {
            return Err(Problem::conflict("PAYMENT_NOT_PENDING", "This payment was paid or changed meanwhile."));
        }
        let next = match p.frequency.as_deref().and_then(Frequency::parse) {
            None => None,
            Some(f) => Some(
                recurring::next_due(p.due_date, f, u32::try_from(p.anchor_day).unwrap_or(1))
                    .ok_or_else(|| Problem::field("dueDate", "out of range"))?,
            ),
        };
        let expense = db::insert_expense(
            &mut tx,
            &NewExpense {
                expense_id,
                shop_id: p.shop_id,
                category: &p.category,
                description: &p.description,
                amount_minor: p.amount_minor,
                currency: &p.currency,
                method,
                payment_id: Some(p.payment_id),
                register_id,
                actor_id: Some(user.user_id.0),
            },
        )
        .await
        .map_err(Error::from)?;
        let after = db::mark_paid(&mut tx, id, next).await.map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok((StatusCode::OK, Paid { payment: view(after, today), expense: expense_view(expense) }))
    })
    .await
}
