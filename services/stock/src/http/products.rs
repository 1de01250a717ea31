//! Products, serialized items, stock levels (receive, adjust, the movement ledger). Every
//! query is scoped to a shop the caller belongs to; availability changes go through the
//! product's actor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bus::MessageMeta;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, OptionalJson, Path, Query};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::{MoneyInput, MoneyNumber};
use platform::pagination::{Page, PageQuery};
use platform::validate::text as trimmed;
use platform::{Currency, Money, Problem};

use super::{acting_shop, currency, unprocessable, visibility, AppState};
use crate::reservations::Level;
use crate::reservations::{Adjustment, NewUnit};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product, delete_product))
        .routes(routes!(receive))
        .routes(routes!(adjust))
        .routes(routes!(movements))
        .routes(routes!(levels))
        .routes(routes!(create_item, list_items))
        .routes(routes!(item_by_barcode))
        .routes(routes!(get_item, update_item, remove_item))
        .routes(routes!(products_with_items))
        .routes(routes!(product_items))
}

fn db_problem(e: sqlx::Error) -> Problem {
    if let sqlx::Error::Database(d) = &e {
        match d.constraint() {
            Some("products_barcode_key") => {
                return Problem::conflict("PRODUCT_BARCODE_TAKEN", "Another product of this shop has that barcode.")
            }
            Some("products_sku_key") => {
                return Problem::conflict("PRODUCT_SKU_TAKEN", "Another product of this shop has that SKU.")
            }
            Some("items_barcode_key") => {
                return Problem::conflict("ITEM_BARCODE_TAKEN", "A unit of this shop already has that barcode.")
            }
            // Composite (shop, id) keys: another shop's id and a random one look the same.
            Some("products_supplier_fkey") => return unprocessable("supplierId", "no such supplier in this shop"),
            Some("products_category_fkey") => return unprocessable("categoryId", "no such category in this shop"),
            Some("products_sub_category_fkey") => {
                return unprocessable("subCategoryId", "no such subcategory in this shop")
            }
            Some("products_sub_sub_category_fkey") => {
                return unprocessable("subSubCategoryId", "no such sub-subcategory in this shop")
            }
            Some(c) if c.ends_with("_fkey") => {
                return unprocessable("reference", "refers to something that does not exist in this shop")
            }
            Some(c) if c.ends_with("_check") => return unprocessable("value", &format!("violates {c}")),
            _ => {}
        }
    }
    Problem::from(e)
}

/// An amount as sent (a decimal string or a JSON number), in the shop's currency, not negative.
fn parse_money(field: &str, raw: Option<&MoneyInput>, currency: Currency) -> Result<Option<i64>, Problem> {
    raw.map(|m| {
        let m = m.read(field, currency)?;
        if m.is_negative() {
            return Err(unprocessable(field, "a non-negative amount in the shop's currency, e.g. \"1250.00\""));
        }
        Ok(m.minor())
    })
    .transpose()
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ProductRow {
    #[sqlx(rename = "product_id")]
    id: Uuid,
    shop_id: Uuid,
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    image_urls: Vec<String>,
    keeping_units: i32,
    warranty_months: i32,
    loyalty_points: i32,
    supplier_id: Option<Uuid>,
    category_id: Option<Uuid>,
    sub_category_id: Option<Uuid>,
    sub_sub_category_id: Option<Uuid>,
    /// ACTIVE, or INACTIVE when hidden (the first system's name, which its clients know;
    /// HIDE is accepted for it in requests).
    status: String,
    sku: Option<String>,
    barcode: Option<String>,
    tracking: String,
    #[serde(skip)]
    sell_price_minor: Option<i64>,
    /// The related records as nested objects, as the first system's clients read them:
    /// `supplier{id,name,email,contactNumber,haveWhatsApp}`, `category{id,name}`,
    /// `subCategory{id,name,categoryId}`, `subSubCategory{id,name,subCategoryId}`; null when unset.
    #[schema(value_type = Option<Object>)]
    supplier: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    category: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    sub_category: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    sub_sub_category: Option<serde_json::Value>,
    on_hand: i64,
    reserved: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    #[serde(flatten)]
    row: ProductRow,
    sell_price: Option<String>,
    available: i64,
    /// `available` again, under the name the first system's clients read.
    stock: i64,
}

const PRODUCT_SELECT: &str = "select p.product_id, p.shop_id, p.name, p.display_name, p.description, p.image_urls,
        p.keeping_units, p.warranty_months, p.loyalty_points, p.supplier_id, p.category_id, p.sub_category_id,
        p.sub_sub_category_id, case p.status when 'HIDE' then 'INACTIVE' else p.status end as status, p.sku, p.barcode, p.tracking, p.sell_price_minor, p.created_at, p.updated_at,
        (select json_build_object('id', su.supplier_id, 'name', su.name, 'email', su.email, 'contactNumber', su.contact_number,
                'haveWhatsApp', su.have_whatsapp) from suppliers su where su.supplier_id = p.supplier_id) as supplier,
        (select json_build_object('id', c.category_id, 'name', c.name) from categories c where c.category_id = p.category_id) as category,
        (select json_build_object('id', c.category_id, 'name', c.name, 'categoryId', c.parent_id)
           from categories c where c.category_id = p.sub_category_id) as sub_category,
        (select json_build_object('id', c.category_id, 'name', c.name, 'subCategoryId', c.parent_id)
           from categories c where c.category_id = p.sub_sub_category_id) as sub_sub_category,
        case when p.tracking = 'BULK' then coalesce(l.on_hand, 0)::bigint
             else (select count(*) from items i where i.product_id = p.product_id and i.status in ('AVAILABLE', 'RESERVED')) end as on_hand,
        case when p.tracking = 'BULK' then coalesce(l.reserved, 0)::bigint
             else (select count(*) from items i where i.product_id = p.product_id and i.status = 'RESERVED') end as reserved
   from products p left join levels l using (product_id)";

fn view(row: ProductRow, currency: Currency) -> ProductView {
    let sell_price = row.sell_price_minor.map(|m| Money::from_minor(m, currency).to_decimal_string());
    let available = row.on_hand - row.reserved;
    ProductView { row, sell_price, available, stock: available }
}

async fn load_product(s: &AppState, user: &AuthUser, id: Uuid) -> Result<ProductRow, Problem> {
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
fn check_counts(req: &ProductInput) -> Result<(), Problem> {
    for (field, v) in [
        ("keepingUnits", req.keeping_units),
        ("warrantyMonths", req.warranty_months),
        ("loyaltyPoints", req.loyalty_points),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(unprocessable(field, "must not be negative"));
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
) -> Result<(StatusCode, Json<ProductView>), Problem> {
    platform::validate::body_id(req.id, None)?;
    let shop = acting_shop(&user, req.shop_id)?;
    let name = trimmed("name", req.name.as_deref(), 200)?.ok_or_else(|| unprocessable("name", "required"))?;
    // Without `tracking`: a product with a price is counted in bulk; one without a price
    // gets one per unit (the first system's dashboard creates products bare and adds units
    // with their prices).
    let default_tracking = if req.sell_price.is_some() { "BULK" } else { "SERIALIZED" };
    let tracking = match req.tracking.as_deref().unwrap_or(default_tracking) {
        "BULK" => "BULK",
        "SERIALIZED" => "SERIALIZED",
        _ => return Err(unprocessable("tracking", "SERIALIZED or BULK")),
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
    .await
    .map_err(db_problem)?;
    if tracking == "BULK" {
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
) -> Result<Json<Page<ProductView>>, Problem> {
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
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from products p where {filter}"))
        .bind(shop)
        .bind(q.supplier_id)
        .bind(q.category_id)
        .bind(q.sub_category_id)
        .bind(q.sub_sub_category_id)
        .bind(status)
        .bind(&search)
        .fetch_one(&s.pool)
        .await?;
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
) -> Result<Json<ProductView>, Problem> {
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
) -> Result<Json<ProductView>, Problem> {
    platform::validate::body_id(req.id, Some(id))?;
    let row = load_product(&s, &user, id).await?;
    if req.tracking.as_deref().is_some_and(|t| t != row.tracking) {
        return Err(unprocessable("tracking", "cannot change once created"));
    }
    if req.shop_id.is_some_and(|sh| sh != row.shop_id) {
        return Err(unprocessable("shopId", "a product cannot move between shops"));
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
    .await
    .map_err(db_problem)?;
    s.stock.reload(id); // name, price or threshold may have changed
    Ok(Json(view(load_product(&s, &user, id).await?, cur)))
}

/// Removes a product: gone if it never had stock, otherwise marked DELETED (its history stays).
#[utoipa::path(delete, path = "/products/{id}", tag = "products", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_product(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Problem> {
    let row = load_product(&s, &user, id).await?;
    if row.reserved > 0 {
        return Err(Problem::conflict("PRODUCT_HAS_RESERVATIONS", "Units of this product are reserved right now."));
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
    s.stock.reload(id);
    Ok(StatusCode::NO_CONTENT)
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
) -> Result<Response, Problem> {
    let row = load_product(&s, &user, id).await?;
    let (s, user, req, meta) = (&s, &user, &req, &meta);
    let route = "POST /products/{id}/receive";
    // The ledger recognises a second copy of this effect (a re-run after a lost answer).
    let effect = idempotency::effect_id(ShopId(row.shop_id), route, &key);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), route, &(id, req), move || async move {
        Ok((StatusCode::OK, receive_now(s, user, &row, req, effect, meta).await?))
    })
    .await
}

async fn receive_now(
    s: &AppState,
    user: &AuthUser,
    row: &ProductRow,
    req: &ReceiveInput,
    effect: Option<Uuid>,
    meta: &MessageMeta,
) -> Result<Level, Problem> {
    let id = row.id;
    if !(1..=1_000_000).contains(&req.quantity) {
        return Err(unprocessable("quantity", "1 to 1000000"));
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
            return Err(unprocessable("supplierId", "no such supplier in this shop"));
        }
    }
    let change = Adjustment {
        delta: req.quantity,
        kind: "RECEIPT",
        reason: note,
        actor_id: Some(user.user_id.0),
        unit_cost_minor: cost,
        source_id: effect,
        supplier_id: req.supplier_id,
        meta: meta.clone(),
    };
    Ok(s.stock.adjust(id, change).await?)
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
) -> Result<Response, Problem> {
    let row = load_product(&s, &user, id).await?;
    let (s, user, req, meta) = (&s, &user, &req, &meta);
    let route = "POST /products/{id}/adjust";
    // The ledger recognises a second copy of this effect (a re-run after a lost answer).
    let effect = idempotency::effect_id(ShopId(row.shop_id), route, &key);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), route, &(id, req), move || async move {
        Ok((StatusCode::OK, adjust_now(s, user, id, req, effect, meta).await?))
    })
    .await
}

async fn adjust_now(
    s: &AppState,
    user: &AuthUser,
    id: Uuid,
    req: &AdjustInput,
    effect: Option<Uuid>,
    meta: &MessageMeta,
) -> Result<Level, Problem> {
    if req.delta == 0 || req.delta.abs() > 1_000_000 {
        return Err(unprocessable("delta", "non-zero, at most 1000000 either way"));
    }
    let reason = trimmed("reason", Some(&req.reason), 500)?.ok_or_else(|| unprocessable("reason", "required"))?;
    let change = Adjustment {
        delta: req.delta,
        kind: "ADJUSTMENT",
        reason: Some(reason),
        actor_id: Some(user.user_id.0),
        unit_cost_minor: None,
        source_id: effect,
        supplier_id: None,
        meta: meta.clone(),
    };
    Ok(s.stock.adjust(id, change).await?)
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    page: Option<i64>,
    limit: Option<i64>,
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
) -> Result<Json<Page<Movement>>, Problem> {
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
) -> Result<Json<Page<ProductView>>, Problem> {
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

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ItemRow {
    #[sqlx(rename = "item_id")]
    id: Uuid,
    shop_id: Uuid,
    product_id: Uuid,
    barcode: String,
    #[serde(skip)]
    brought_price_minor: i64,
    #[serde(skip)]
    sell_price_minor: i64,
    warranty_months: Option<i32>,
    status: String,
    order_id: Option<Uuid>,
    sold_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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

const ITEM_SELECT: &str =
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
) -> Result<Response, Problem> {
    platform::validate::body_id(req.id, None)?;
    let product = req.product_id.ok_or_else(|| unprocessable("productId", "required"))?;
    let row = load_product(&s, &user, product).await?;
    let (s, user, req) = (&s, &user, &req);
    idempotency::once(&s.pool, &key, ShopId(row.shop_id), "POST /items", req, move || async move {
        Ok((StatusCode::CREATED, create_item_now(s, user, &row, req).await?))
    })
    .await
}

async fn create_item_now(
    s: &AppState,
    user: &AuthUser,
    row: &ProductRow,
    req: &ItemInput,
) -> Result<ItemView, Problem> {
    let product = row.id;
    if row.tracking != "SERIALIZED" {
        return Err(unprocessable("productId", "units are for SERIALIZED products; receive BULK stock instead"));
    }
    let barcode =
        trimmed("barcode", req.barcode.as_deref(), 64)?.ok_or_else(|| unprocessable("barcode", "required"))?;
    let cur = currency(&s.pool, row.shop_id).await?;
    let bought = parse_money("broughtPrice", req.brought_price.as_ref(), cur)?
        .ok_or_else(|| unprocessable("broughtPrice", "required"))?;
    let sell = parse_money("sellPrice", req.sell_price.as_ref(), cur)?
        .ok_or_else(|| unprocessable("sellPrice", "required"))?;
    if req.warranty_period.is_some_and(|w| !(0..=240).contains(&w)) {
        return Err(unprocessable("warrantyPeriod", "0 to 240 months"));
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
    .await
    .map_err(db_problem)?;
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
        .add_unit(product, NewUnit { item_id: id, barcode, price_minor: sell, warranty_months: req.warranty_period });
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
) -> Result<Page<ItemView>, Problem> {
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
) -> Result<Json<Page<ItemView>>, Problem> {
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
) -> Result<Json<Page<ItemView>>, Problem> {
    Ok(Json(list_units(&s, &user, id, q.page, q.limit).await?))
}

async fn load_item(
    s: &AppState,
    user: &AuthUser,
    filter: &str,
    value: &str,
    shop: Option<Uuid>,
) -> Result<(ItemRow, Currency), Problem> {
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
) -> Result<Json<ItemView>, Problem> {
    let (row, cur) = load_item(&s, &user, "barcode", &barcode, q.shop_id).await?;
    Ok(Json(item_view(row, cur)))
}

/// One unit.
#[utoipa::path(get, path = "/items/{id}", tag = "items", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ItemView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_item(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<Json<ItemView>, Problem> {
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
) -> Result<Json<ItemView>, Problem> {
    platform::validate::body_id(req.id, Some(id))?;
    let (row, cur) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    if req.product_id.is_some_and(|p| p != row.product_id)
        || req.barcode.as_deref().is_some_and(|b| b.trim() != row.barcode)
    {
        return Err(unprocessable("productId", "a unit keeps its product and barcode"));
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
    .await
    .map_err(db_problem)?;
    s.stock.reload(row.product_id);
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
) -> Result<StatusCode, Problem> {
    let (row, _) = load_item(&s, &user, "item_id::text", &id.to_string(), None).await?;
    let reason = match req {
        Some(req) => trimmed("reason", Some(&req.reason), 500)?.ok_or_else(|| unprocessable("reason", "required"))?,
        None => REMOVED_WITHOUT_REASON.to_owned(),
    };
    if row.status == "SOLD" {
        return Err(Problem::conflict("ITEM_SOLD", "A sold unit stays on record; return it instead."));
    }
    if row.status == "REMOVED" {
        return Ok(StatusCode::NO_CONTENT);
    }
    let actor = Some(user.user_id.0);
    s.stock.remove_unit(row.product_id, id, &reason, actor, &meta).await?;
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
) -> Result<Json<Page<ProductWithItems>>, Problem> {
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
