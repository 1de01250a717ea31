//! Stock levels by hand: receive from a supplier, adjust with a reason, the movement ledger
//! and the shop's levels. Every change goes through the product's actor (`Stock::adjust`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bus::MessageMeta;
use chrono::{DateTime, Utc};
use platform::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::AuthUser;
use platform::http::{Json, Path, Query};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::MoneyInput;
use platform::pagination::{Page, PageQuery};
use platform::validate::text as trimmed;
use platform::Problem;

use super::products::{load_product, view, ProductRow, ProductView, PRODUCT_SELECT};
use super::{acting_shop, currency, parse_money, unprocessable, AppState, PageOnly};
use crate::domain::MovementKind;
use crate::reservations::{Adjustment, Level};
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive))
        .routes(routes!(adjust))
        .routes(routes!(movements))
        .routes(routes!(levels))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiveInput {
    quantity: i64,
    unit_cost: Option<MoneyInput>,
    supplier_id: Option<Uuid>,
    note: Option<String>,
}

/// Goods in for a bulk product.
#[utoipa::path(post, path = "/products/{id}/receive", tag = "stock", params(("id" = Uuid, Path)), request_body = ReceiveInput, responses(
    (status = 200, body = Level), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn receive(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: MessageMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<ReceiveInput>,
) -> Result<Response, Error> {
    let row = load_product(&s, &user, id).await?;
    let (s, user, req, meta) = (&s, &user, &req, &meta);
    let route = "POST /products/{id}/receive";
    // The ledger recognises a second copy of this effect (a re-run after a lost answer).
    let effect = idempotency::effect_id(ShopId(row.shop_id), route, &key);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), route, &(id, req), move || async move {
        Ok((StatusCode::OK, receive_now(s, user, &row, req, effect, meta).await?))
    })
    .await
    .map_err(Error::from)
}

async fn receive_now(
    s: &AppState,
    user: &AuthUser,
    row: &ProductRow,
    req: &ReceiveInput,
    effect: Option<Uuid>,
    meta: &MessageMeta,
) -> Result<Level, Error> {
    let id = row.id;
    if !(1..=1_000_000).contains(&req.quantity) {
        return Err(Error::from(unprocessable("quantity", "1 to 1000000")));
    }
    let cur = currency(&s.pool, row.shop_id).await?;
    let cost = parse_money("unitCost", req.unit_cost.as_ref(), cur)?;
    let note = trimmed("note", req.note.as_deref(), 500)?;
    if let Some(supplier) = req.supplier_id {
        // Checked here for a clean 422 (the same for another shop's supplier and a random
        // id); the ledger's foreign key on (shop, supplier) holds it regardless.
        let known = sqlx::query_scalar!(
            r#"select exists(select 1 from stock.suppliers where shop_id = $1 and supplier_id = $2) as "known!""#,
            row.shop_id,
            supplier
        )
        .fetch_one(&s.pool)
        .await?;
        if !known {
            return Err(Error::from(unprocessable("supplierId", "no such supplier in this shop")));
        }
    }
    let change = Adjustment {
        delta: req.quantity,
        kind: MovementKind::Receipt,
        reason: note,
        actor_id: Some(user.user_id.0),
        unit_cost_minor: cost,
        source_id: effect,
        supplier_id: req.supplier_id,
        meta: meta.clone(),
    };
    Ok(s.stock.adjust(ProductId(id), change).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustInput {
    delta: i64,
    reason: String,
}

/// A counted correction (damage, loss, found stock), with its reason.
#[utoipa::path(post, path = "/products/{id}/adjust", tag = "stock", params(("id" = Uuid, Path)), request_body = AdjustInput, responses(
    (status = 200, body = Level), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn adjust(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: MessageMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<AdjustInput>,
) -> Result<Response, Error> {
    let row = load_product(&s, &user, id).await?;
    let (s, user, req, meta) = (&s, &user, &req, &meta);
    let route = "POST /products/{id}/adjust";
    // The ledger recognises a second copy of this effect (a re-run after a lost answer).
    let effect = idempotency::effect_id(ShopId(row.shop_id), route, &key);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), route, &(id, req), move || async move {
        Ok((StatusCode::OK, adjust_now(s, user, id, req, effect, meta).await?))
    })
    .await
    .map_err(Error::from)
}

async fn adjust_now(
    s: &AppState,
    user: &AuthUser,
    id: Uuid,
    req: &AdjustInput,
    effect: Option<Uuid>,
    meta: &MessageMeta,
) -> Result<Level, Error> {
    if req.delta == 0 || req.delta.abs() > 1_000_000 {
        return Err(Error::from(unprocessable("delta", "non-zero, at most 1000000 either way")));
    }
    let reason = trimmed("reason", Some(&req.reason), 500)?.ok_or_else(|| unprocessable("reason", "required"))?;
    let change = Adjustment {
        delta: req.delta,
        kind: MovementKind::Adjustment,
        reason: Some(reason),
        actor_id: Some(user.user_id.0),
        unit_cost_minor: None,
        source_id: effect,
        supplier_id: None,
        meta: meta.clone(),
    };
    Ok(s.stock.adjust(ProductId(id), change).await?)
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    id: i64,
    kind: String,
    on_hand_delta: i32,
    reserved_delta: i32,
    item_id: Option<Uuid>,
    reason: Option<String>,
    actor_id: Option<Uuid>,
    reservation_id: Option<Uuid>,
    order_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// The product's append-only ledger, newest first.
#[utoipa::path(get, path = "/products/{id}/movements", tag = "stock", params(("id" = Uuid, Path), PageOnly), responses(
    (status = 200, body = Page<Movement>), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn movements(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(q): Query<PageOnly>,
) -> Result<Json<Page<Movement>>, Error> {
    load_product(&s, &user, id).await?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let rows: Vec<Movement> = sqlx::query_as(
        "select movement_id as id, kind, on_hand_delta, reserved_delta, item_id, reason, actor_id, reservation_id, order_id, created_at
           from movements where product_id = $1 order by movement_id desc limit $2 offset $3",
    )
    .bind(id)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar("select count(*) from movements where product_id = $1").bind(id).fetch_one(&s.pool).await?;
    Ok(Json(Page::new(rows, page, total)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LevelsQuery {
    shop_id: Option<Uuid>,
    /// Only products at or below their keepingUnits.
    low_stock: Option<bool>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// Stock levels of the shop's products.
#[utoipa::path(get, path = "/levels", tag = "stock", params(LevelsQuery), responses(
    (status = 200, body = Page<ProductView>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn levels(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<LevelsQuery>,
) -> Result<Json<Page<ProductView>>, Error> {
    let shop = acting_shop(&user, q.shop_id)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let low = q.low_stock.unwrap_or(false);
    let inner = format!("{PRODUCT_SELECT} where p.shop_id = $1 and p.status <> 'DELETED'");
    let filter = "($2 = false or (x.on_hand - x.reserved) <= x.keeping_units)";
    let rows: Vec<ProductRow> = sqlx::query_as(&format!(
        "select * from ({inner}) x where {filter} order by (x.on_hand - x.reserved) - x.keeping_units, x.product_id limit $3 offset $4"
    ))
    .bind(shop)
    .bind(low)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from ({inner}) x where {filter}"))
        .bind(shop)
        .bind(low)
        .fetch_one(&s.pool)
        .await?;
    let cur = currency(&s.pool, shop).await?;
    Ok(Json(Page::new(rows.into_iter().map(|r| view(r, cur)).collect(), page, total)))
}
