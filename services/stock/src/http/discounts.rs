//! Discounts belong to a shop and apply, while active, to the products attached to them; the
//! reservation core prices lines with the best active discount (the actors reload when a
//! discount changes).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::ids::ProductId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::ids::ShopId;
use platform::pagination::{Page, PageQuery};
use platform::Problem;

use super::{acting_shop, unprocessable, AppState};
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_discount, list_discounts))
        .routes(routes!(get_discount, update_discount, delete_discount))
        .routes(routes!(attach_products, active_for_product))
        .routes(routes!(detach_product))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscountProduct {
    product_id: Uuid,
    /// Percent off, e.g. "12.5".
    percentage: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscountView {
    id: Uuid,
    shop_id: Uuid,
    name: String,
    description: Option<String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: String,
    active_now: bool,
    products: Vec<DiscountProduct>,
}

fn percentage(bp: i32) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:02}").trim_end_matches('0').to_owned()
    }
}

/// "12.5" → 1250 basis points; between 0.01 and 100.
fn basis_points(raw: &str) -> Option<i32> {
    let money = platform::Money::parse(raw, platform::Currency::USD).ok()?;
    i32::try_from(money.minor()).ok().filter(|bp| (1..=10_000).contains(bp))
}

async fn load(s: &AppState, user: &AuthUser, id: Uuid) -> Result<DiscountView, Error> {
    let row = sqlx::query!(
        r#"select shop_id, name, description, starts_at, ends_at, status,
                  (status = 'ACTIVE' and starts_at <= now() and now() < ends_at) as "active_now!"
             from stock.discounts where discount_id = $1"#,
        id
    )
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| Problem::not_found("DISCOUNT_NOT_FOUND", "No such discount."))?;
    let (shop_id, name, description, starts_at, ends_at, status, active_now) =
        (row.shop_id, row.name, row.description, row.starts_at, row.ends_at, row.status, row.active_now);
    user.require_shop_role(ShopId(shop_id), ShopRole::ShopStaff)
        .map_err(|_| Problem::not_found("DISCOUNT_NOT_FOUND", "No such discount."))?;
    let products: Vec<(Uuid, i32)> = sqlx::query_as(
        "select product_id, basis_points from discount_products where discount_id = $1 order by product_id",
    )
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    Ok(DiscountView {
        id,
        shop_id,
        name,
        description,
        starts_at,
        ends_at,
        status,
        active_now,
        products: products
            .into_iter()
            .map(|(product_id, bp)| DiscountProduct { product_id, percentage: percentage(bp) })
            .collect(),
    })
}

async fn reload_products(s: &AppState, discount: Uuid) -> Result<(), Error> {
    let products: Vec<Uuid> = sqlx::query_scalar("select product_id from discount_products where discount_id = $1")
        .bind(discount)
        .fetch_all(&s.pool)
        .await?;
    // At once: each may be told over its shard's queue.
    futures::future::join_all(products.into_iter().map(|p| s.stock.reload(ProductId(p)))).await;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscountInput {
    shop_id: Option<Uuid>,
    name: Option<String>,
    description: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// ACTIVE or INACTIVE
    status: Option<String>,
}

fn status(raw: Option<&str>) -> Result<Option<String>, Error> {
    match raw {
        None => Ok(None),
        Some(st @ ("ACTIVE" | "INACTIVE")) => Ok(Some(st.to_owned())),
        Some(_) => Err(Error::from(unprocessable("status", "ACTIVE or INACTIVE"))),
    }
}

/// A discount of the shop (attach products to it next).
#[utoipa::path(post, path = "/discounts", tag = "discounts", request_body = DiscountInput, responses((status = 201, body = DiscountView), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_discount(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<DiscountInput>,
) -> Result<(StatusCode, Json<DiscountView>), Error> {
    let shop = acting_shop(&user, req.shop_id)?;
    let name = req
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 120)
        .ok_or_else(|| unprocessable("name", "1 to 120 characters"))?;
    let starts = platform::validate::moment("startsAt", req.starts_at)?.unwrap_or_else(Utc::now);
    let ends = platform::validate::moment("endsAt", req.ends_at)?.ok_or_else(|| unprocessable("endsAt", "required"))?;
    if ends <= starts {
        return Err(Error::from(unprocessable("endsAt", "must be after startsAt")));
    }
    let id = Uuid::now_v7();
    sqlx::query("insert into discounts (discount_id, shop_id, name, description, starts_at, ends_at, status) values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(shop)
        .bind(name)
        .bind(req.description.as_deref().map(str::trim))
        .bind(starts)
        .bind(ends)
        .bind(status(req.status.as_deref())?.unwrap_or_else(|| "ACTIVE".into()))
        .execute(&s.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(load(&s, &user, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiscountQuery {
    shop_id: Option<Uuid>,
    /// Only those active now.
    active: Option<bool>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// The shop's discounts.
#[utoipa::path(get, path = "/discounts", tag = "discounts", params(DiscountQuery), responses((status = 200, body = Page<DiscountView>)))]
#[tracing::instrument(skip_all)]
async fn list_discounts(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<DiscountQuery>,
) -> Result<Json<Page<DiscountView>>, Error> {
    let shop = acting_shop(&user, q.shop_id)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let active = q.active.unwrap_or(false);
    let filter = "shop_id = $1 and ($2 = false or (status = 'ACTIVE' and starts_at <= now() and now() < ends_at))";
    let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
        "select discount_id from discounts where {filter} order by starts_at desc, discount_id limit $3 offset $4"
    ))
    .bind(shop)
    .bind(active)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from discounts where {filter}"))
        .bind(shop)
        .bind(active)
        .fetch_one(&s.pool)
        .await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.push(load(&s, &user, id).await?);
    }
    Ok(Json(Page::new(rows, page, total)))
}

#[utoipa::path(get, path = "/discounts/{id}", tag = "discounts", params(("id" = Uuid, Path)), responses((status = 200, body = DiscountView), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_discount(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<DiscountView>, Error> {
    Ok(Json(load(&s, &user, id).await?))
}

#[utoipa::path(put, path = "/discounts/{id}", tag = "discounts", params(("id" = Uuid, Path)), request_body = DiscountInput, responses((status = 200, body = DiscountView), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_discount(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<DiscountInput>,
) -> Result<Json<DiscountView>, Error> {
    let current = load(&s, &user, id).await?;
    platform::validate::unchanged("shopId", req.shop_id, Some(current.shop_id))?;
    let starts = platform::validate::moment("startsAt", req.starts_at)?.unwrap_or(current.starts_at);
    let ends = platform::validate::moment("endsAt", req.ends_at)?.unwrap_or(current.ends_at);
    if ends <= starts {
        return Err(Error::from(unprocessable("endsAt", "must be after startsAt")));
    }
    sqlx::query(
        "update discounts set name = coalesce($2, name), description = coalesce($3, description), starts_at = $4, ends_at = $5,
                status = coalesce($6, status) where discount_id = $1",
    )
    .bind(id)
    .bind(req.name.as_deref().map(str::trim).filter(|n| !n.is_empty()))
    .bind(req.description.as_deref())
    .bind(starts)
    .bind(ends)
    .bind(status(req.status.as_deref())?)
    .execute(&s.pool)
    .await?;
    reload_products(&s, id).await?;
    Ok(Json(load(&s, &user, id).await?))
}

#[utoipa::path(delete, path = "/discounts/{id}", tag = "discounts", params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_discount(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<StatusCode, Error> {
    load(&s, &user, id).await?;
    let products: Vec<Uuid> = sqlx::query_scalar("select product_id from discount_products where discount_id = $1")
        .bind(id)
        .fetch_all(&s.pool)
        .await?;
    sqlx::query("delete from discounts where discount_id = $1").bind(id).execute(&s.pool).await?;
    // At once: each may be told over its shard's queue.
    futures::future::join_all(products.into_iter().map(|p| s.stock.reload(ProductId(p)))).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachLine {
    product_id: Uuid,
    /// Percent off: "10", "12.5".
    percentage: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachInput {
    products: Vec<AttachLine>,
}

/// Attaches products (with their percentage) to a discount.
#[utoipa::path(post, path = "/discounts/products/{id}", tag = "discounts", params(("id" = Uuid, Path)), request_body = AttachInput, responses(
    (status = 200, body = DiscountView), (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn attach_products(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<AttachInput>,
) -> Result<Json<DiscountView>, Error> {
    let d = load(&s, &user, id).await?;
    if req.products.is_empty() || req.products.len() > 500 {
        return Err(Error::from(unprocessable("products", "1 to 500 products")));
    }
    let mut tx = s.pool.begin().await?;
    for line in &req.products {
        let raw = match &line.percentage {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let bp = basis_points(&raw).ok_or_else(|| unprocessable("percentage", "between 0.01 and 100"))?;
        let same_shop: bool = sqlx::query_scalar(
            "select exists(select 1 from products where product_id = $1 and shop_id = $2 and status <> 'DELETED')",
        )
        .bind(line.product_id)
        .bind(d.shop_id)
        .fetch_one(&mut *tx)
        .await?;
        if !same_shop {
            return Err(Error::from(unprocessable("productId", "no such product in this shop")));
        }
        sqlx::query(
            "insert into discount_products (shop_id, discount_id, product_id, basis_points) values ($4, $1, $2, $3)
             on conflict (discount_id, product_id) do update set basis_points = excluded.basis_points",
        )
        .bind(id)
        .bind(line.product_id)
        .bind(bp)
        .bind(d.shop_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    reload_products(&s, id).await?;
    Ok(Json(load(&s, &user, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetachInput {
    product_id: Uuid,
}

/// Takes a product off a discount.
#[utoipa::path(delete, path = "/discounts/{id}/products", tag = "discounts", params(("id" = Uuid, Path)), request_body = DetachInput, responses(
    (status = 200, body = DiscountView), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn detach_product(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<DetachInput>,
) -> Result<Json<DiscountView>, Error> {
    load(&s, &user, id).await?;
    sqlx::query("delete from discount_products where discount_id = $1 and product_id = $2")
        .bind(id)
        .bind(req.product_id)
        .execute(&s.pool)
        .await?;
    s.stock.reload(ProductId(req.product_id)).await;
    Ok(Json(load(&s, &user, id).await?))
}

/// The discounts active now on a product (`id` is the product's id here).
#[utoipa::path(get, path = "/discounts/products/{id}", tag = "discounts", params(("id" = Uuid, Path)), responses(
    (status = 200, body = [DiscountView]), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(product_id = %product_id))]
async fn active_for_product(
    State(s): State<AppState>,
    user: AuthUser,
    Path(product_id): Path<Uuid>,
) -> Result<Json<Vec<DiscountView>>, Error> {
    let shop: Option<Uuid> = sqlx::query_scalar("select shop_id from products where product_id = $1")
        .bind(product_id)
        .fetch_optional(&s.pool)
        .await?;
    let shop = shop.ok_or_else(|| Problem::not_found("PRODUCT_NOT_FOUND", "No such product."))?;
    user.require_shop_role(ShopId(shop), ShopRole::ShopStaff)
        .map_err(|_| Problem::not_found("PRODUCT_NOT_FOUND", "No such product."))?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select d.discount_id from discounts d join discount_products dp using (discount_id)
          where dp.product_id = $1 and d.status = 'ACTIVE' and d.starts_at <= now() and now() < d.ends_at order by dp.basis_points desc",
    )
    .bind(product_id)
    .fetch_all(&s.pool)
    .await?;
    let mut out = Vec::new();
    for id in ids {
        out.push(load(&s, &user, id).await?);
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_trip() {
        assert_eq!(basis_points("12.5"), Some(1250));
        assert_eq!(basis_points("100"), Some(10_000));
        assert_eq!(basis_points("0"), None);
        assert_eq!(basis_points("100.01"), None);
        assert_eq!(basis_points("12.345"), None);
        assert_eq!(percentage(1250), "12.5");
        assert_eq!(percentage(1000), "10");
        assert_eq!(percentage(5), "0.05");
    }
}
