//! Products: create, list (with stock and nested names), read, edit, delete, and the till's
//! products with their units in stock. Every query is scoped to a shop the caller belongs
//! to; a product change reloads its actor.

use axum::extract::State;
use axum::http::StatusCode;
use platform::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::ids::ShopId;
use platform::money::{MoneyInput, MoneyNumber};
use platform::pagination::{Page, PageQuery};
use platform::validate::text as trimmed;
use platform::{Currency, Money, Problem};

use super::items::{ItemRow, ITEM_SELECT};
pub use super::product_view::{view, ProductRow, ProductView, PRODUCT_SELECT};
use super::{acting_shop, currency, parse_money, unprocessable, visibility, AppState};
use crate::domain::Tracking;
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product, delete_product))
        .routes(routes!(products_with_items))
}

pub(super) async fn load_product(s: &AppState, user: &AuthUser, id: Uuid) -> Result<ProductRow, Error> {
    let row: Option<ProductRow> =
        sqlx::query_as(&format!("{PRODUCT_SELECT} where p.product_id = $1 and p.status <> 'DELETED'"))
            .bind(id)
            .fetch_optional(&s.pool)
            .await?;
    let row = row.ok_or_else(|| Problem::not_found("PRODUCT_NOT_FOUND", "No such product."))?;
    // Another shop's product does not exist, as far as this caller can tell.
    user.require_shop_role(ShopId(row.shop_id), ShopRole::ShopStaff)
        .map_err(|_| Problem::not_found("PRODUCT_NOT_FOUND", "No such product."))?;
    Ok(row)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    /// The record's own id, as the first Cashvio's clients repeat it in PUT bodies: must be the
    /// path's; refused on create.
    id: Option<Uuid>,
    shop_id: Option<Uuid>,
    name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    image_urls: Option<Vec<String>>,
    keeping_units: Option<i32>,
    warranty_months: Option<i32>,
    loyalty_points: Option<i32>,
    supplier_id: Option<Uuid>,
    category_id: Option<Uuid>,
    sub_category_id: Option<Uuid>,
    sub_sub_category_id: Option<Uuid>,
    /// ACTIVE or HIDE
    status: Option<String>,
    sku: Option<String>,
    barcode: Option<String>,
    /// SERIALIZED or BULK; fixed once created. Left out: BULK when a `sellPrice` is given,
    /// SERIALIZED otherwise (the first system's dashboard creates bare products, then units).
    tracking: Option<String>,
    /// Bulk products' price ("1250.00").
    sell_price: Option<MoneyInput>,
}

/// The counts of a product (threshold, warranty, points) are never negative.
fn check_counts(req: &ProductInput) -> Result<(), Error> {
    for (field, v) in [
        ("keepingUnits", req.keeping_units),
        ("warrantyMonths", req.warranty_months),
        ("loyaltyPoints", req.loyalty_points),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(Error::from(unprocessable(field, "must not be negative")));
        }
    }
    Ok(())
}

/// Adds a product to the shop's catalog.
#[utoipa::path(post, path = "/products", tag = "products", request_body = ProductInput, responses(
    (status = 201, body = ProductView), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create_product(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<ProductInput>,
) -> Result<(StatusCode, Json<ProductView>), Error> {
    platform::validate::body_id(req.id, None)?;
    let shop = acting_shop(&user, req.shop_id)?;
    let name = trimmed("name", req.name.as_deref(), 200)?.ok_or_else(|| unprocessable("name", "required"))?;
    // Without `tracking`: a product with a price is counted in bulk; one without a price
    // gets one per unit (the first system's dashboard creates products bare and adds units
    // with their prices).
    let tracking = match req.tracking.as_deref() {
        None if req.sell_price.is_some() => Tracking::Bulk,
        None => Tracking::Serialized,
        Some(t) => t.parse().map_err(|_| unprocessable("tracking", "SERIALIZED or BULK"))?,
    };
    let cur = currency(&s.pool, shop).await?;
    let price = parse_money("sellPrice", req.sell_price.as_ref(), cur)?;
    check_counts(&req)?;
    let status = visibility(req.status.as_deref())?.unwrap_or("ACTIVE");
    let id = Uuid::now_v7();
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "insert into products (product_id, shop_id, name, display_name, description, image_urls, keeping_units, warranty_months,
                               loyalty_points, supplier_id, category_id, sub_category_id, sub_sub_category_id, status, sku, barcode,
                               tracking, sell_price_minor)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(id)
    .bind(shop)
    .bind(&name)
    .bind(trimmed("displayName", req.display_name.as_deref(), 200)?)
    .bind(trimmed("description", req.description.as_deref(), 4_000)?)
    .bind(platform::validate::shop_objects("imageUrls", shop, req.image_urls.as_deref().unwrap_or_default())?)
    .bind(req.keeping_units.unwrap_or(0))
    .bind(req.warranty_months.unwrap_or(0))
    .bind(req.loyalty_points.unwrap_or(0))
    .bind(req.supplier_id)
    .bind(req.category_id)
    .bind(req.sub_category_id)
    .bind(req.sub_sub_category_id)
    .bind(status)
    .bind(trimmed("sku", req.sku.as_deref(), 64)?)
    .bind(trimmed("barcode", req.barcode.as_deref(), 64)?)
    .bind(tracking)
    .bind(price)
    .execute(&mut *tx)
    .await?;
    if tracking == Tracking::Bulk {
        sqlx::query("insert into levels (product_id, shop_id) values ($1, $2)")
            .bind(id)
            .bind(shop)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let row = load_product(&s, &user, id).await?;
    Ok((StatusCode::CREATED, Json(view(row, cur))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    shop_id: Option<Uuid>,
    supplier_id: Option<Uuid>,
    category_id: Option<Uuid>,
    sub_category_id: Option<Uuid>,
    sub_sub_category_id: Option<Uuid>,
    status: Option<String>,
    /// Case-insensitive prefix of the name, or an exact SKU or barcode.
    search: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// The shop's products, filtered and paginated.
#[utoipa::path(get, path = "/products", tag = "products", params(ProductQuery), responses(
    (status = 200, body = Page<ProductView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_products(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<ProductQuery>,
) -> Result<Json<Page<ProductView>>, Error> {
    let shop = acting_shop(&user, q.shop_id)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let status = visibility(q.status.as_deref())?;
    let search = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_lowercase);
    let filter = "p.shop_id = $1 and p.status <> 'DELETED'
        and ($2::uuid is null or p.supplier_id = $2) and ($3::uuid is null or p.category_id = $3)
        and ($4::uuid is null or p.sub_category_id = $4) and ($5::uuid is null or p.sub_sub_category_id = $5)
        and ($6::text is null or p.status = $6)
        and ($7::text is null or lower(p.name) like replace(replace($7, '%', '\\%'), '_', '\\_') || '%'
             or lower(p.sku) = $7 or lower(p.barcode) = $7)";
    let rows: Vec<ProductRow> = sqlx::query_as(&format!(
        "{PRODUCT_SELECT} where {filter} order by lower(p.name), p.product_id limit $8 offset $9"
    ))
    .bind(shop)
    .bind(q.supplier_id)
    .bind(q.category_id)
    .bind(q.sub_category_id)
    .bind(q.sub_sub_category_id)
    .bind(status)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    // A till's barcode look-up is a page of one: no count for a page that tells its total.
    let total: i64 = match page.total_from(rows.len()) {
        Some(total) => total,
        None => {
            sqlx::query_scalar(&format!("select count(*) from products p where {filter}"))
                .bind(shop)
                .bind(q.supplier_id)
                .bind(q.category_id)
                .bind(q.sub_category_id)
                .bind(q.sub_sub_category_id)
                .bind(status)
                .bind(&search)
                .fetch_one(&s.pool)
                .await?
        }
    };
    let cur = currency(&s.pool, shop).await?;
    Ok(Json(Page::new(rows.into_iter().map(|r| view(r, cur)).collect(), page, total)))
}

/// One product with its stock.
#[utoipa::path(get, path = "/products/{id}", tag = "products", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ProductView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_product(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ProductView>, Error> {
    let row = load_product(&s, &user, id).await?;
    let cur = currency(&s.pool, row.shop_id).await?;
    Ok(Json(view(row, cur)))
}

/// Edits a product (tracking cannot change).
#[utoipa::path(put, path = "/products/{id}", tag = "products", params(("id" = Uuid, Path)), request_body = ProductInput, responses(
    (status = 200, body = ProductView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_product(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<ProductInput>,
) -> Result<Json<ProductView>, Error> {
    platform::validate::body_id(req.id, Some(id))?;
    let row = load_product(&s, &user, id).await?;
    if req.tracking.as_deref().is_some_and(|t| t != row.tracking.as_str()) {
        return Err(Error::from(unprocessable("tracking", "cannot change once created")));
    }
    if req.shop_id.is_some_and(|sh| sh != row.shop_id) {
        return Err(Error::from(unprocessable("shopId", "a product cannot move between shops")));
    }
    check_counts(&req)?;
    let cur = currency(&s.pool, row.shop_id).await?;
    sqlx::query(
        "update products set name = coalesce($2, name), display_name = coalesce($3, display_name),
                description = coalesce($4, description), image_urls = coalesce($5, image_urls),
                keeping_units = coalesce($6, keeping_units), warranty_months = coalesce($7, warranty_months),
                loyalty_points = coalesce($8, loyalty_points), supplier_id = coalesce($9, supplier_id),
                category_id = coalesce($10, category_id), sub_category_id = coalesce($11, sub_category_id),
                sub_sub_category_id = coalesce($12, sub_sub_category_id), status = coalesce($13, status),
                sku = coalesce($14, sku), barcode = coalesce($15, barcode), sell_price_minor = coalesce($16, sell_price_minor)
          where product_id = $1",
    )
    .bind(id)
    .bind(trimmed("name", req.name.as_deref(), 200)?)
    .bind(trimmed("displayName", req.display_name.as_deref(), 200)?)
    .bind(trimmed("description", req.description.as_deref(), 4_000)?)
    .bind(req.image_urls.as_deref().map(|v| platform::validate::shop_objects("imageUrls", row.shop_id, v)).transpose()?)
    .bind(req.keeping_units)
    .bind(req.warranty_months)
    .bind(req.loyalty_points)
    .bind(req.supplier_id)
    .bind(req.category_id)
    .bind(req.sub_category_id)
    .bind(req.sub_sub_category_id)
    .bind(visibility(req.status.as_deref())?)
    .bind(trimmed("sku", req.sku.as_deref(), 64)?)
    .bind(trimmed("barcode", req.barcode.as_deref(), 64)?)
    .bind(parse_money("sellPrice", req.sell_price.as_ref(), cur)?)
    .execute(&s.pool)
    .await?;
    s.stock.reload(ProductId(id)).await; // name, price or threshold may have changed
    Ok(Json(view(load_product(&s, &user, id).await?, cur)))
}

/// Removes a product: gone if it never had stock, otherwise marked DELETED (its history stays).
#[utoipa::path(delete, path = "/products/{id}", tag = "products", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_product(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<StatusCode, Error> {
    let row = load_product(&s, &user, id).await?;
    if row.reserved > 0 {
        return Err(Error::from(Problem::conflict(
            "PRODUCT_HAS_RESERVATIONS",
            "Units of this product are reserved right now.",
        )));
    }
    let mut tx = s.pool.begin().await?;
    let history: bool = sqlx::query_scalar(
        "select exists(select 1 from movements where product_id = $1) or exists(select 1 from items where product_id = $1)
             or exists(select 1 from reservation_lines where product_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if history {
        sqlx::query("update products set status = 'DELETED' where product_id = $1").bind(id).execute(&mut *tx).await?;
    } else {
        sqlx::query("delete from levels where product_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("delete from discount_products where product_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("delete from products where product_id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    s.stock.reload(ProductId(id)).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductWithItems {
    #[serde(flatten)]
    product: ProductView,
    /// The units in stock (available or reserved) of serialized products.
    items: Vec<StockedItem>,
}

/// A unit as the till's picker reads it: `sellPrice` a JSON number (the first system's
/// till copies it into a number field), with the currency's digits.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockedItem {
    #[serde(flatten)]
    row: ItemRow,
    brought_price: String,
    #[schema(value_type = f64)]
    sell_price: MoneyNumber,
}

/// Products with their units in stock (serialized products' available and reserved units).
#[utoipa::path(get, path = "/products/with-items", tag = "products", params(ProductQuery), responses(
    (status = 200, body = Page<ProductWithItems>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn products_with_items(
    State(s): State<AppState>,
    user: AuthUser,
    q: Query<ProductQuery>,
) -> Result<Json<Page<ProductWithItems>>, Error> {
    let Json(page) = list_products(State(s.clone()), user, q).await?;
    let ids: Vec<Uuid> = page.data.iter().map(|p| p.row.id).collect();
    let items: Vec<ItemRow> = sqlx::query_as(&format!(
        "{ITEM_SELECT} where product_id = any($1) and status in ('AVAILABLE', 'RESERVED') order by created_at"
    ))
    .bind(&ids)
    .fetch_all(&s.pool)
    .await?;
    let cur = match page.data.first() {
        Some(p) => currency(&s.pool, p.row.shop_id).await?,
        None => Currency::LKR,
    };
    let mut by_product: std::collections::HashMap<Uuid, Vec<StockedItem>> = std::collections::HashMap::new();
    for item in items {
        let view = StockedItem {
            brought_price: Money::from_minor(item.brought_price_minor, cur).to_decimal_string(),
            sell_price: MoneyNumber(Money::from_minor(item.sell_price_minor, cur)),
            row: item,
        };
        by_product.entry(view.row.product_id).or_default().push(view);
    }
    let data = page
        .data
        .into_iter()
        .map(|p| {
            let items = by_product.remove(&p.row.id).unwrap_or_default();
            ProductWithItems { product: p, items }
        })
        .collect();
    Ok(Json(Page { data, meta: page.meta }))
}
