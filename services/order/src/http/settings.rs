//! `GET/PUT /shops/{shopId}/settings`: what the order service owns of a shop's rules
//! (owner only). The currency is auth's (it arrives with the shop's events), shown here.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path};
use platform::ids::ShopId;
use platform::money::{Currency, Money, MoneyInput};
use platform::Problem;

use super::AppState;
use crate::db::shops::{self, Settings, Shop};
use crate::error::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub shop_id: Uuid,
    pub currency: String,
    /// An IANA time zone ("Asia/Colombo"): days in reports start at its midnight.
    pub time_zone: String,
    /// Whether an unpaid rest may become a customer's due.
    pub allow_credit: bool,
    /// The most a customer may owe ("0.00": no limit is given, so no credit).
    pub credit_limit: String,
    /// Whether shop staff may charge a price other than stock's (owners always may).
    pub staff_price_override: bool,
    /// Whether cash sales need an open register shift.
    pub require_open_shift: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn view(shop: Shop) -> SettingsView {
    let currency: Currency = shop.currency.parse().unwrap_or(Currency::LKR);
    SettingsView {
        shop_id: shop.shop_id,
        currency: shop.currency,
        time_zone: shop.time_zone,
        allow_credit: shop.allow_credit,
        credit_limit: Money::from_minor(shop.credit_limit_minor, currency).to_decimal_string(),
        staff_price_override: shop.staff_price_override,
        require_open_shift: shop.require_open_shift,
        updated_at: shop.updated_at,
    }
}

/// Every field is optional: what is left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    time_zone: Option<String>,
    allow_credit: Option<bool>,
    credit_limit: Option<MoneyInput>,
    staff_price_override: Option<bool>,
    require_open_shift: Option<bool>,
    /// The currency is auth's; sending the same one is accepted, another is refused.
    currency: Option<String>,
}

async fn owned(s: &AppState, user: &AuthUser, shop: Uuid) -> Result<Shop, Problem> {
    user.require_shop_role(ShopId(shop), ShopRole::ShopOwner)?;
    Ok(shops::get(&s.pool, shop).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?)
}

#[utoipa::path(get, path = "/shops/{shopId}/settings", tag = "settings", params(("shopId" = Uuid, Path)), responses(
    (status = 200, body = SettingsView), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn get_settings(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop): Path<Uuid>,
) -> Result<Json<SettingsView>, Problem> {
    Ok(Json(view(owned(&s, &user, shop).await?)))
}

#[utoipa::path(put, path = "/shops/{shopId}/settings", tag = "settings", params(("shopId" = Uuid, Path)),
    request_body = SettingsBody, responses(
        (status = 200, body = SettingsView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn put_settings(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop): Path<Uuid>,
    Json(body): Json<SettingsBody>,
) -> Result<Json<SettingsView>, Problem> {
    let current = owned(&s, &user, shop).await?;
    let currency: Currency = current.currency.parse().map_err(|_| Problem::field("currency", "unknown"))?;
    if body.currency.as_deref().is_some_and(|c| !c.trim().eq_ignore_ascii_case(currency.code())) {
        return Err(Problem::field("currency", "is the shop's (set where the shop is edited), not changed here"));
    }
    let time_zone = match body.time_zone.map(|t| t.trim().to_owned()) {
        None => current.time_zone.clone(),
        Some(tz) if shops::time_zone_exists(&s.pool, &tz).await.map_err(Error::from)? => tz,
        Some(_) => return Err(Problem::field("timeZone", "an IANA time zone such as Asia/Colombo, or UTC")),
    };
    let credit_limit_minor = match body.credit_limit {
        None => current.credit_limit_minor,
        Some(raw) => match raw.to_money(currency) {
            Ok(m) if !m.is_negative() => m.minor(),
            Ok(_) => return Err(Problem::field("creditLimit", "must not be negative")),
            Err(e) => return Err(Problem::field("creditLimit", &e.to_string())),
        },
    };
    let settings = Settings {
        time_zone,
        allow_credit: body.allow_credit.unwrap_or(current.allow_credit),
        credit_limit_minor,
        staff_price_override: body.staff_price_override.unwrap_or(current.staff_price_override),
        require_open_shift: body.require_open_shift.unwrap_or(current.require_open_shift),
    };
    let shop = shops::put_settings(&s.pool, shop, &settings).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?;
    Ok(Json(view(shop)))
}
