//! Suppliers. A supplier still used by products or recorded receipts cannot be deleted (the
//! foreign keys decide).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::ids::ShopId;
use platform::pagination::{Page, PageQuery};
use platform::validate::text;
use platform::Problem;

use super::{acting_shop, unprocessable, AppState};
use crate::Error;

use super::catalog::not_found;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_supplier, list_suppliers)).routes(routes!(
        get_supplier,
        update_supplier,
        delete_supplier
    ))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SupplierView {
    id: Uuid,
    shop_id: Uuid,
    name: String,
    contact_number: String,
    email: Option<String>,
    #[serde(rename = "haveWhatsApp")]
    have_whatsapp: bool,
    product_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const SUPPLIER_SELECT: &str = "select s.supplier_id as id, s.shop_id, s.name, s.contact_number, s.email, s.have_whatsapp,
        (select count(*) from products p where p.supplier_id = s.supplier_id and p.status <> 'DELETED') as product_count, s.created_at,
        s.updated_at
   from suppliers s";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupplierInput {
    /// The record's own id, as the first Cashvio's clients repeat it in PUT bodies: must be the
    /// path's; refused on create.
    id: Option<Uuid>,
    shop_id: Option<Uuid>,
    name: Option<String>,
    contact_number: Option<String>,
    email: Option<String>,
    #[serde(rename = "haveWhatsApp")]
    have_whatsapp: Option<bool>,
}

async fn load_supplier(s: &AppState, user: &AuthUser, id: Uuid) -> Result<SupplierView, Error> {
    let row: Option<SupplierView> =
        sqlx::query_as(&format!("{SUPPLIER_SELECT} where s.supplier_id = $1")).bind(id).fetch_optional(&s.pool).await?;
    let row = row.ok_or_else(|| not_found("supplier"))?;
    user.require_shop_role(ShopId(row.shop_id), ShopRole::ShopStaff).map_err(|_| not_found("supplier"))?;
    Ok(row)
}

/// A supplier of the shop.
#[utoipa::path(post, path = "/suppliers", tag = "suppliers", request_body = SupplierInput, responses((status = 201, body = SupplierView), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_supplier(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<SupplierInput>,
) -> Result<(StatusCode, Json<SupplierView>), Error> {
    platform::validate::body_id(req.id, None)?;
    let shop = acting_shop(&user, req.shop_id)?;
    let name = text("name", req.name.as_deref(), 120)?.ok_or_else(|| unprocessable("name", "required"))?;
    let contact = text("contactNumber", req.contact_number.as_deref(), 40)?
        .ok_or_else(|| unprocessable("contactNumber", "required"))?;
    let email = text("email", req.email.as_deref(), 254)?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(Error::from(unprocessable("email", "not an e-mail address")));
    }
    let id = Uuid::now_v7();
    sqlx::query("insert into suppliers (supplier_id, shop_id, name, contact_number, email, have_whatsapp) values ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(shop)
        .bind(&name)
        .bind(&contact)
        .bind(&email)
        .bind(req.have_whatsapp.unwrap_or(false))
        .execute(&s.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(load_supplier(&s, &user, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SupplierQuery {
    shop_id: Option<Uuid>,
    search: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// The shop's suppliers.
#[utoipa::path(get, path = "/suppliers", tag = "suppliers", params(SupplierQuery), responses((status = 200, body = Page<SupplierView>)))]
#[tracing::instrument(skip_all)]
async fn list_suppliers(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<SupplierQuery>,
) -> Result<Json<Page<SupplierView>>, Error> {
    let shop = acting_shop(&user, q.shop_id)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let search = platform::pagination::contains_pattern(q.search.as_deref()).map(|p| p.to_lowercase());
    let filter = "s.shop_id = $1 and ($2::text is null or lower(s.name) like $2 or s.contact_number like $2)";
    let rows: Vec<SupplierView> = sqlx::query_as(&format!(
        "{SUPPLIER_SELECT} where {filter} order by lower(s.name), s.supplier_id limit $3 offset $4"
    ))
    .bind(shop)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from suppliers s where {filter}"))
        .bind(shop)
        .bind(&search)
        .fetch_one(&s.pool)
        .await?;
    Ok(Json(Page::new(rows, page, total)))
}

#[utoipa::path(get, path = "/suppliers/{id}", tag = "suppliers", params(("id" = Uuid, Path)), responses((status = 200, body = SupplierView), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_supplier(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<SupplierView>, Error> {
    Ok(Json(load_supplier(&s, &user, id).await?))
}

#[utoipa::path(put, path = "/suppliers/{id}", tag = "suppliers", params(("id" = Uuid, Path)), request_body = SupplierInput, responses((status = 200, body = SupplierView)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_supplier(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<SupplierInput>,
) -> Result<Json<SupplierView>, Error> {
    platform::validate::body_id(req.id, Some(id))?;
    let current = load_supplier(&s, &user, id).await?;
    platform::validate::unchanged("shopId", req.shop_id, Some(current.shop_id))?;
    sqlx::query(
        "update suppliers set name = coalesce($2, name), contact_number = coalesce($3, contact_number),
                email = coalesce($4, email), have_whatsapp = coalesce($5, have_whatsapp) where supplier_id = $1",
    )
    .bind(id)
    .bind(text("name", req.name.as_deref(), 120)?)
    .bind(text("contactNumber", req.contact_number.as_deref(), 40)?)
    .bind(text("email", req.email.as_deref(), 254)?)
    .bind(req.have_whatsapp)
    .execute(&s.pool)
    .await?;
    Ok(Json(load_supplier(&s, &user, id).await?))
}

/// Deletes a supplier no product uses (409 otherwise).
#[utoipa::path(delete, path = "/suppliers/{id}", tag = "suppliers", params(("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_supplier(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<StatusCode, Error> {
    load_supplier(&s, &user, id).await?;
    match sqlx::query("delete from stock.suppliers where supplier_id = $1").bind(id).execute(&s.pool).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        // The foreign key decides, not a check-then-delete race.
        Err(sqlx::Error::Database(d))
            if matches!(d.constraint(), Some("products_supplier_fkey" | "movements_supplier_fkey")) =>
        {
            Err(Error::from(Problem::conflict(
                "SUPPLIER_IN_USE",
                "Products or recorded receipts still refer to this supplier.",
            )))
        }
        Err(e) => Err(e.into()),
    }
}
