//! `POST /orders` (the checkout), `GET /orders`, `GET /orders/{id}`, `PATCH /orders/{id}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bus::MessageMeta;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::idempotency::{self, IdempotencyKey, Reply};
use platform::ids::ShopId;
use platform::pagination::{PageMeta, PageQuery};
use platform::Problem;

use super::AppState;
use crate::checkout::{AnswerTo, Cashier, Target};
use crate::db::orders::{self, ListFilter};
use crate::domain::checkout::{Checkout, CompletionBody, OrderBody, MAX_NOTE};
use crate::domain::types::OrderStatus;
use crate::error::Error;
use crate::view::{self, OrderView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order, update_order))
        .routes(routes!(complete_order))
        .routes(routes!(cancel_order))
        .routes(routes!(return_goods))
}

const ROUTE: &str = "POST /orders";
const COMPLETE_ROUTE: &str = "POST /orders/{id}/complete";

/// Rings a sale up: reserves stock, prices it, takes the payments, books it and commits the
/// stock. With `Idempotency-Key`, a retry answers the first result and sells nothing twice.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = OrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, body = OrderView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn place_order(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    headers: HeaderMap,
    Json(body): Json<OrderBody>,
) -> Result<Response, Problem> {
    let shop = ShopId(body.shop_id);
    let role = user.require_shop_role(shop, ShopRole::ShopStaff)?;
    let checkout = Checkout::parse(body)?;
    let meta = MessageMeta::from_headers(&headers);
    let order_id = idempotency::effect_id(shop, ROUTE, &key).unwrap_or_else(Uuid::now_v7);
    let retry_possible = key.0.is_some();
    let cashier = Cashier { user_id: user.user_id.0, role };
    let (s, request, meta) = (&s, &checkout, &meta);
    idempotency::once_storing(&s.pool, &key, shop, ROUTE, request, |claim| async move {
        let target = Target::New { retry_possible };
        let answer = claim.as_ref().map(|claim| AnswerTo { claim, status: StatusCode::CREATED });
        let placed = s.place(cashier, request.clone(), order_id, target, meta, answer).await.map_err(Problem::from)?;
        Ok(match placed.stored {
            Some(body) => Reply::Stored(StatusCode::CREATED, body),
            None => Reply::Answer(StatusCode::CREATED, placed.view),
        })
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    shop_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// DRAFT, PENDING, COMPLETED, CANCELLED, REFUNDED or PARTIALLY_REFUNDED.
    status: Option<String>,
    /// From this day (YYYY-MM-DD, UTC) or moment (RFC 3339), inclusive.
    start_date: Option<String>,
    /// Until this day (YYYY-MM-DD, UTC, inclusive) or moment (RFC 3339, exclusive).
    end_date: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderList {
    pub data: Vec<OrderView>,
    /// The same rows, for the first system's screens.
    pub orders: Vec<OrderView>,
    pub meta: PageMeta,
}

/// A day or a moment; a day's end is the start of the next day.
fn bound(field: &str, raw: Option<&str>, end: bool) -> Result<Option<DateTime<Utc>>, Problem> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = platform::validate::date(field, Some(day))?.unwrap_or(day);
        let day = if end { day.succ_opt().unwrap_or(day) } else { day };
        return Ok(day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    let moment = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| Problem::field(field, "a date (YYYY-MM-DD) or an RFC 3339 time"))?
        .with_timezone(&Utc);
    platform::validate::moment(field, Some(moment))
}

/// Orders of the caller's shops (or one shop), newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", params(OrderQuery), responses(
    (status = 200, body = OrderList), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_orders(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<OrderQuery>,
) -> Result<Json<OrderList>, Problem> {
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    if let Some(shop) = q.shop_id {
        user.require_shop_role(ShopId(shop), ShopRole::ShopStaff)?;
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(raw) => Some(
            OrderStatus::parse(raw)
                .ok_or_else(|| {
                    Problem::field("status", "DRAFT, PENDING, COMPLETED, CANCELLED, REFUNDED or PARTIALLY_REFUNDED")
                })?
                .as_str()
                .to_owned(),
        ),
    };
    let filter = ListFilter {
        shop_id: q.shop_id,
        shops: user.shops.keys().map(|s| s.0).collect(),
        customer_id: q.customer_id,
        status,
        from: bound("startDate", q.start_date.as_deref(), false)?,
        until: bound("endDate", q.end_date.as_deref(), true)?,
    };
    let (rows, total) = orders::list(&s.pool, &filter, page.limit, page.offset()).await.map_err(Error::from)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let (lines, payments) = orders::details(&s.pool, &ids).await.map_err(Error::from)?;
    let data = view::orders(rows, lines, payments);
    let meta = platform::pagination::Page::new(Vec::<()>::new(), page, total).meta;
    Ok(Json(OrderList { orders: data.clone(), data, meta }))
}

/// An order the caller's shop made.
pub(crate) async fn visible(s: &AppState, user: &AuthUser, id: Uuid) -> Result<OrderView, Problem> {
    let order = s.view(id).await?.ok_or(Error::OrderNotFound)?;
    // Another shop's order is "not found", not "forbidden": ids are not confirmed to outsiders.
    if user.require_shop_role(ShopId(order.shop_id), ShopRole::ShopStaff).is_err() {
        return Err(Error::OrderNotFound.into());
    }
    Ok(order)
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = OrderView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn get_order(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<OrderView>, Problem> {
    Ok(Json(visible(&s, &user, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderPatch {
    /// The note; null or empty clears it.
    note: Option<String>,
}

/// Changes an order's note (nothing else about a booked sale changes).
#[utoipa::path(patch, path = "/orders/{id}", tag = "orders", params(("id" = Uuid, Path)), request_body = OrderPatch,
    responses(
        (status = 200, body = OrderView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_order(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(patch): Json<OrderPatch>,
) -> Result<Json<OrderView>, Problem> {
    visible(&s, &user, id).await?;
    let note = patch.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(Problem::field("note", "at most 2000 characters"));
    }
    orders::set_note(&s.pool, id, note.as_deref()).await.map_err(Error::from)?;
    Ok(Json(visible(&s, &user, id).await?))
}

/// Completes a saved DRAFT: its lines are reserved and priced now, then paid and booked like
/// any sale, under the draft's number.
#[utoipa::path(post, path = "/orders/{id}/complete", tag = "orders", request_body = CompletionBody,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, body = OrderView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn complete_order(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<CompletionBody>,
) -> Result<Response, Problem> {
    let order = visible(&s, &user, id).await?;
    let shop = ShopId(order.shop_id);
    let role = user.require_shop_role(shop, ShopRole::ShopStaff)?;
    let cashier = Cashier { user_id: user.user_id.0, role };
    let meta = MessageMeta::from_headers(&headers);
    let request = format!("{id} {body:?}");
    let attempt = idempotency::effect_id(shop, COMPLETE_ROUTE, &key).unwrap_or_else(Uuid::now_v7);
    idempotency::once(&s.pool, &key, shop, COMPLETE_ROUTE, &request, || async {
        let view = s.complete(cashier, id, body, attempt, &meta).await.map_err(Problem::from)?;
        Ok((StatusCode::OK, view))
    })
    .await
}

/// Cancels a DRAFT or PENDING order (a completed sale is undone by a return).
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, body = OrderView), (status = 401, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn cancel_order(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<OrderView>, Problem> {
    visible(&s, &user, id).await?;
    Ok(Json(s.cancel(id, &MessageMeta::from_headers(&headers)).await?))
}

const RETURN_ROUTE: &str = "POST /orders/{id}/returns";

/// Takes goods back from a completed sale and refunds them (cash, card, bank or the
/// customer's wallet); a unit or quantity comes back at most once across all returns.
#[utoipa::path(post, path = "/orders/{id}/returns", tag = "returns", request_body = crate::returns::ReturnBody,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, body = crate::returns::ReturnView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn return_goods(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<crate::returns::ReturnBody>,
) -> Result<Response, Problem> {
    let order = visible(&s, &user, id).await?;
    let shop = ShopId(order.shop_id);
    let meta = MessageMeta::from_headers(&headers);
    let return_id = idempotency::effect_id(shop, RETURN_ROUTE, &key).unwrap_or_else(Uuid::now_v7);
    let request = format!("{id} {body:?}");
    idempotency::once(&s.pool, &key, shop, RETURN_ROUTE, &request, || async {
        // A refund to a wallet another instance changed meanwhile: the return again, whole
        // (its transaction rolled back), with the wallet read anew.
        let (checkouts, body, meta, actor) = (&s, &body, &meta, user.user_id.0);
        let view = crate::wallet::until_its_turn(
            |e: &Error| matches!(e, Error::Wallet(crate::wallet::WalletError::Conflict)),
            |_| checkouts.return_goods(actor, id, return_id, body, meta),
        )
        .await
        .map_err(Problem::from)?;
        Ok((StatusCode::CREATED, view))
    })
    .await
}
