//! A customer's orders, wallets and warranties: the customer app's
//! `GET /customer-orders/all/{customerId}/history|warranty` (every shop) and the shop's
//! `GET /customer-orders/{customerId}/shop/{shopId}/history|warranty`. The customer sees
//! their own; a shop's staff see what their shops sold them; nobody else sees anything.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path};
use platform::ids::ShopId;
use platform::money::Currency;
use platform::Problem;

use super::AppState;
use crate::db::orders::{self, ListFilter};
use crate::db::shops;
use crate::error::Error;
use crate::view::{self, OrderView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all_history))
        .routes(routes!(all_warranty))
        .routes(routes!(shop_history))
        .routes(routes!(shop_warranty))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInfo {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub contact_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderHistory {
    pub wallet: super::wallets::WalletView,
    /// Newest first (at most 100).
    pub orders: Vec<OrderView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopHistory {
    pub shop_id: Uuid,
    pub shop_name: String,
    pub shop_logo: Option<String>,
    pub order_history: OrderHistory,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub customer: CustomerInfo,
    pub shop_data: Vec<ShopHistory>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarrantyItem {
    pub order_id: Uuid,
    pub order_number: String,
    pub order_item_id: Uuid,
    pub shop_id: Uuid,
    pub shop_name: String,
    pub product_id: Uuid,
    pub product_name: String,
    pub barcode: Option<String>,
    pub purchased_at: DateTime<Utc>,
    pub warranty_months: i64,
    pub warranty_until: DateTime<Utc>,
    pub active: bool,
    pub days_left: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Warranty {
    pub customer: CustomerInfo,
    pub shop_data: Vec<ShopHistory>,
    pub all_active_warranty: Vec<WarrantyItem>,
    pub all_expired_warranty: Vec<WarrantyItem>,
    pub active_count: usize,
    pub expired_count: usize,
}

/// The customer and what each visible shop has of them.
async fn gather(s: &AppState, user: &AuthUser, customer: Uuid, only: Option<Uuid>) -> Result<History, Problem> {
    if let Some(shop) = only {
        if user.user_id.0 != customer {
            user.require_shop_role(ShopId(shop), ShopRole::ShopStaff)?;
        }
    } else if user.user_id.0 != customer && !user.is_platform_admin() && user.shops.is_empty() {
        return Err(Error::CustomerNotFound.into());
    }
    let records = sqlx::query!(
        r#"select c.shop_id, coalesce(p.name, c.name) as "name?", coalesce(p.email, c.email) as "email?", c.phone
             from sales.customers c left join sales.people p on p.user_id = c.customer_id
            where c.customer_id = $1 and ($2::uuid is null or c.shop_id = $2)
            order by c.created_at"#,
        customer,
        only
    )
    .fetch_all(&s.pool)
    .await
    .map_err(Error::from)?;
    let visible: Vec<_> = records
        .into_iter()
        .filter(|r| {
            user.user_id.0 == customer || user.require_shop_role(ShopId(r.shop_id), ShopRole::ShopStaff).is_ok()
        })
        .collect();
    let info = match visible.first() {
        Some(r) => {
            CustomerInfo { id: customer, name: r.name.clone(), email: r.email.clone(), contact_number: r.phone.clone() }
        }
        None if user.user_id.0 == customer => {
            let me = sqlx::query!("select name, email from sales.people where user_id = $1", customer)
                .fetch_optional(&s.pool)
                .await
                .map_err(Error::from)?;
            CustomerInfo {
                id: customer,
                name: me.as_ref().map(|p| p.name.clone()),
                email: me.map(|p| p.email),
                contact_number: None,
            }
        }
        None => return Err(Error::CustomerNotFound.into()),
    };
    let mut shop_data = Vec::new();
    for r in &visible {
        let shop = shops::get(&s.pool, r.shop_id).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?;
        let currency: Currency = shop.currency.parse().unwrap_or(Currency::LKR);
        let filter = ListFilter {
            shop_id: Some(shop.shop_id),
            shops: vec![shop.shop_id],
            customer_id: Some(customer),
            status: None,
            from: None,
            until: None,
        };
        let (rows, _) = orders::list(&s.pool, &filter, 100, 0).await.map_err(Error::from)?;
        let ids: Vec<Uuid> = rows.iter().map(|o| o.order_id).collect();
        let (lines, payments) = orders::details(&s.pool, &ids).await.map_err(Error::from)?;
        let wallet = super::wallets::wallet_in(s, shop.shop_id, currency, customer).await?;
        shop_data.push(ShopHistory {
            shop_id: shop.shop_id,
            shop_name: shop.name.clone(),
            shop_logo: shop.logo_url.clone(),
            order_history: OrderHistory { wallet, orders: view::orders(rows, lines, payments) },
        });
    }
    Ok(History { customer: info, shop_data })
}

fn warranty(history: History) -> Warranty {
    let now = Utc::now();
    let mut active = Vec::new();
    let mut expired = Vec::new();
    for shop in &history.shop_data {
        for order in shop.order_history.orders.iter().filter(|o| o.status != "DRAFT" && o.status != "CANCELLED") {
            for line in &order.order_items {
                let Some(until) = line.warranty_until else { continue };
                let item = WarrantyItem {
                    order_id: order.id,
                    order_number: order.order_number.clone(),
                    order_item_id: line.id,
                    shop_id: shop.shop_id,
                    shop_name: shop.shop_name.clone(),
                    product_id: line.product_id,
                    product_name: line.name.clone(),
                    barcode: line.barcode.clone(),
                    purchased_at: order.completed_at.unwrap_or(order.created_at),
                    warranty_months: view::months_between(order.completed_at.unwrap_or(order.created_at), until),
                    warranty_until: until,
                    active: until > now,
                    days_left: (until - now).num_days().max(0),
                };
                if item.active {
                    active.push(item);
                } else {
                    expired.push(item);
                }
            }
        }
    }
    Warranty {
        active_count: active.len(),
        expired_count: expired.len(),
        all_active_warranty: active,
        all_expired_warranty: expired,
        customer: history.customer,
        shop_data: history.shop_data,
    }
}

#[utoipa::path(get, path = "/customer-orders/all/{customerId}/history", tag = "customers",
    params(("customerId" = Uuid, Path)), responses(
        (status = 200, body = History), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn all_history(
    State(s): State<AppState>,
    user: AuthUser,
    Path(customer): Path<Uuid>,
) -> Result<Json<History>, Problem> {
    Ok(Json(gather(&s, &user, customer, None).await?))
}

#[utoipa::path(get, path = "/customer-orders/all/{customerId}/warranty", tag = "customers",
    params(("customerId" = Uuid, Path)), responses(
        (status = 200, body = Warranty), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn all_warranty(
    State(s): State<AppState>,
    user: AuthUser,
    Path(customer): Path<Uuid>,
) -> Result<Json<Warranty>, Problem> {
    Ok(Json(warranty(gather(&s, &user, customer, None).await?)))
}

#[utoipa::path(get, path = "/customer-orders/{customerId}/shop/{shopId}/history", tag = "customers",
    params(("customerId" = Uuid, Path), ("shopId" = Uuid, Path)), responses(
        (status = 200, body = History), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn shop_history(
    State(s): State<AppState>,
    user: AuthUser,
    Path((customer, shop)): Path<(Uuid, Uuid)>,
) -> Result<Json<History>, Problem> {
    Ok(Json(gather(&s, &user, customer, Some(shop)).await?))
}

#[utoipa::path(get, path = "/customer-orders/{customerId}/shop/{shopId}/warranty", tag = "customers",
    params(("customerId" = Uuid, Path), ("shopId" = Uuid, Path)), responses(
        (status = 200, body = Warranty), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn shop_warranty(
    State(s): State<AppState>,
    user: AuthUser,
    Path((customer, shop)): Path<(Uuid, Uuid)>,
) -> Result<Json<Warranty>, Problem> {
    Ok(Json(warranty(gather(&s, &user, customer, Some(shop)).await?)))
}
