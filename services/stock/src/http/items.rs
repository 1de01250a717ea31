//! Serialized units (items): create, list, find by barcode, edit, and remove by hand (only
//! an available unit, through its product's actor).

use crate::domain::ItemId;
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

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, OptionalJson, Path, Query};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::MoneyInput;
use platform::pagination::{Page, PageQuery};
use platform::validate::text as trimmed;
use platform::{Currency, Money, Problem};

use super::products::{load_product, ProductRow};
use super::{currency, parse_money, unprocessable, AppState, PageOnly};
use crate::domain::Tracking;
use crate::reservations::NewUnit;
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_item, list_items))
        .routes(routes!(item_by_barcode))
        .routes(routes!(get_item, update_item, remove_item))
        .routes(routes!(product_items))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ItemRow {
    #[sqlx(rename = "item_id")]
    pub(super) id: Uuid,
    pub(super) shop_id: Uuid,
    pub(super) product_id: Uuid,
    pub(super) barcode: String,
    #[serde(skip)]
    pub(super) brought_price_minor: i64,
    #[serde(skip)]
    pub(super) sell_price_minor: i64,
    pub(super) warranty_months: Option<i32>,
    pub(super) status: String,
    pub(super) order_id: Option<Uuid>,
    pub(super) sold_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    #[serde(flatten)]
    row: ItemRow,
    brought_price: String,
    sell_price: String,
}

fn item_view(row: ItemRow, cur: Currency) -> ItemView {
    ItemView {
        brought_price: Money::from_minor(row.brought_price_minor, cur).to_decimal_string(),
        sell_price: Money::from_minor(row.sell_price_minor, cur).to_decimal_string(),
        row,
    }
}

pub(super) const ITEM_SELECT: &str =
    "select item_id, shop_id, product_id, barcode, brought_price_minor, sell_price_minor, warranty_months,
    status, order_id, sold_at, created_at, updated_at from items";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemInput {
    /// The record's own id, as the first Cashvio's clients repeat it in PUT bodies: must be the
    /// path's; refused on create.
    id: Option<Uuid>,
    barcode: Option<String>,
    brought_price: Option<MoneyInput>,
    sell_price: Option<MoneyInput>,
    /// Months; the product's when absent.
    warranty_period: Option<i32>,
    product_id: Option<Uuid>,
}

/// Adds a serialized unit (a phone with its IMEI, a laptop with its serial).
#[utoipa::path(post, path = "/items", tag = "items", request_body = ItemInput, responses(
    (status = 201, body = ItemView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create_item(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Json(req): Json<ItemInput>,
) -> Result<Response, Error> {
    platform::validate::body_id(req.id, None)?;
    let product = req.product_id.ok_or_else(|| unprocessable("productId", "required"))?;
    let row = load_product(&s, &user, product).await?;
    let (s, user, req) = (&s, &user, &req);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), "POST /items", req, move || async move {
        Ok((StatusCode::CREATED, create_item_now(s, user, &row, req).await?))
    })
    .await
    .map_err(Error::from)
}

async fn create_item_now(s: &AppState, user: &AuthUser, row: &ProductRow, req: &ItemInput) -> Result<ItemView, Error> {
    let product = row.id;
    if row.tracking != Tracking::Serialized {
        return Err(Error::from(unprocessable(
            "productId",
            "units are for SERIALIZED products; receive BULK stock instead",
        )));
    }
    let barcode =
        trimmed("barcode", req.barcode.as_deref(), 64)?.ok_or_else(|| unprocessable("barcode", "required"))?;
    let cur = currency(&s.pool, row.shop_id).await?;
    let bought = parse_money("broughtPrice", req.brought_price.as_ref(), cur)?
        .ok_or_else(|| unprocessable("broughtPrice", "required"))?;
    let sell = parse_money("sellPrice", req.sell_price.as_ref(), cur)?
        .ok_or_else(|| unprocessable("sellPrice", "required"))?;
    if req.warranty_period.is_some_and(|w| !(0..=240).contains(&w)) {
        return Err(Error::from(unprocessable("warrantyPeriod", "0 to 240 months")));
    }
    let id = Uuid::now_v7();
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "insert into items (item_id, shop_id, product_id, barcode, brought_price_minor, sell_price_minor, warranty_months)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(row.shop_id)
    .bind(product)
    .bind(&barcode)
    .bind(bought)
    .bind(sell)
    .bind(req.warranty_period)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into movements (shop_id, product_id, item_id, kind, on_hand_delta, unit_cost_minor, actor_id)
         values ($1, $2, $3, 'RECEIPT', 1, $4, $5)",
    )
    .bind(row.shop_id)
    .bind(product)
    .bind(id)
    .bind(bought)
    .bind(user.user_id.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    s.stock
        .add_unit(
            ProductId(product),
            NewUnit { item_id: ItemId(id), barcode, price_minor: sell, warranty_months: req.warranty_period },
        )
        .await;
    let item: ItemRow =
        sqlx::query_as(&format!("{ITEM_SELECT} where item_id = $1")).bind(id).fetch_one(&s.pool).await?;
    Ok(item_view(item, cur))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    product_id: Uuid,
    page: Option<i64>,
    limit: Option<i64>,
}

async fn list_units(
    s: &AppState,
    user: &AuthUser,
    product: Uuid,
    page: Option<i64>,
    limit: Option<i64>,
) -> Result<Page<ItemView>, Error> {
    let row = load_product(s, user, product).await?;
    let page = PageQuery { page, limit }.parse()?;
    let rows: Vec<ItemRow> =
        sqlx::query_as(&format!("{ITEM_SELECT} where product_id = $1 order by created_at, item_id limit $2 offset $3"))
            .bind(product)
            .bind(page.limit)
            .bind(page.offset())
            .fetch_all(&s.pool)
            .await?;
    let total: i64 =
        sqlx::query_scalar("select count(*) from items where product_id = $1").bind(product).fetch_one(&s.pool).await?;
    let cur = currency(&s.pool, row.shop_id).await?;
    Ok(Page::new(rows.into_iter().map(|r| item_view(r, cur)).collect(), page, total))
}

/// A product's units.
#[utoipa::path(get, path = "/items", tag = "items", params(ItemsQuery), responses(
    (status = 200, body = Page<ItemView>), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_items(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<ItemsQuery>,
) -> Result<Json<Page<ItemView>>, Error> {
    Ok(Json(list_units(&s, &user, q.product_id, q.page, q.limit).await?))
}

/// A product's units (same as `GET /items?productId=`).
#[utoipa::path(get, path = "/products/{id}/items", tag = "items", params(("id" = Uuid, Path), PageOnly), responses(
    (status = 200, body = Page<ItemView>), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn product_items(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(q): Query<PageOnly>,
) -> Result<Json<Page<ItemView>>, Error> {
    Ok(Json(list_units(&s, &user, id, q.page, q.limit).await?))
}

async fn load_item(
    s: &AppState,
    user: &AuthUser,
    filter: &str,
    value: &str,
    shop: Option<Uuid>,
) -> Result<(ItemRow, Currency), Error> {
    let rows: Vec<ItemRow> =
        sqlx::query_as(&format!("{ITEM_SELECT} where {filter} = $1 and ($2::uuid is null or shop_id = $2)"))
            .bind(value)
            .bind(shop)
            .fetch_all(&s.pool)
            .await?;
    let row = rows
        .into_iter()
        .find(|r| user.require_shop_role(ShopId(r.shop_id), ShopRole::ShopStaff).is_ok())
        .ok_or_else(|| Problem::not_found("ITEM_NOT_FOUND", "No such unit."))?;
    let cur = currency(&s.pool, row.shop_id).await?;
    Ok((row, cur))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShopOnly {
    shop_id: Option<Uuid>,
}

/// A unit by its barcode (barcodes are unique per shop).
#[utoipa::path(get, path = "/items/barcode/{barcode}", tag = "items", params(("barcode" = String, Path), ShopOnly), responses(
    (status = 200, body = ItemView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(barcode = %barcode))]
async fn item_by_barcode(
    State(s): State<AppState>,
    user: AuthUser,
    Path(barcode): Path<String>,
    Query(q): Query<ShopOnly>,
) -> Result<Json<ItemView>, Error> {
    let (row, cur) = load_item(&s, &user, "barcode", &barcode, q.shop_id).await?;
    Ok(Json(item_view(row, cur)))
}

/// One unit.
#[utoipa::path(get, path = "/items/{id}", tag = "items", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ItemView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_item(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<Json<ItemView>, Error> {
    let (row, cur) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    Ok(Json(item_view(row, cur)))
}

/// Corrects a unit's prices or warranty (availability is not edited by hand).
#[utoipa::path(put, path = "/items/{id}", tag = "items", params(("id" = Uuid, Path)), request_body = ItemInput, responses(
    (status = 200, body = ItemView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_item(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<ItemInput>,
) -> Result<Json<ItemView>, Error> {
    platform::validate::body_id(req.id, Some(id))?;
    let (row, cur) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    if req.product_id.is_some_and(|p| p != row.product_id)
        || req.barcode.as_deref().is_some_and(|b| b.trim() != row.barcode)
    {
        return Err(Error::from(unprocessable("productId", "a unit keeps its product and barcode")));
    }
    sqlx::query(
        "update items set brought_price_minor = coalesce($2, brought_price_minor), sell_price_minor = coalesce($3, sell_price_minor),
                warranty_months = coalesce($4, warranty_months) where item_id = $1",
    )
    .bind(id)
    .bind(parse_money("broughtPrice", req.brought_price.as_ref(), cur)?)
    .bind(parse_money("sellPrice", req.sell_price.as_ref(), cur)?)
    .bind(req.warranty_period)
    .execute(&s.pool)
    .await?;
    s.stock.reload(ProductId(row.product_id)).await;
    let (row, cur) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    Ok(Json(item_view(row, cur)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveInput {
    reason: String,
}

/// The reason recorded when the first system's dashboard removes a unit (it sends no body).
const REMOVED_WITHOUT_REASON: &str = "removed in the dashboard";

/// Takes an available unit out of stock (damaged, lost, entered by mistake): it is marked
/// REMOVED with the reason in the ledger, never deleted. Reserved and sold units cannot be.
#[utoipa::path(delete, path = "/items/{id}", tag = "items", params(("id" = Uuid, Path)), request_body = RemoveInput, responses(
    (status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn remove_item(
    State(s): State<AppState>,
    user: AuthUser,
    meta: MessageMeta,
    Path(id): Path<Uuid>,
    OptionalJson(req): OptionalJson<RemoveInput>,
) -> Result<StatusCode, Error> {
    let (row, _) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    let reason = match req {
        Some(req) => trimmed("reason", Some(&req.reason), 500)?.ok_or_else(|| unprocessable("reason", "required"))?,
        None => REMOVED_WITHOUT_REASON.to_owned(),
    };
    if row.status == "SOLD" {
        return Err(Error::from(Problem::conflict("ITEM_SOLD", "A sold unit stays on record; return it instead.")));
    }
    if row.status == "REMOVED" {
        return Ok(StatusCode::NO_CONTENT);
    }
    let actor = Some(user.user_id.0);
    s.stock.remove_unit(ProductId(row.product_id), ItemId(id), &reason, actor, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
