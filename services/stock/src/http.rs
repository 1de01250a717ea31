//! The stock service's HTTP API (paths as the service sees them; nginx adds `/stock`).

pub mod catalog;
pub mod categories;
pub mod discounts;
pub mod items;
pub mod levels;
pub mod product_view;
pub mod products;
pub mod reservations;
pub mod suppliers;

use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use platform::auth::AuthUser;
use platform::ids::ShopId;
use platform::money::MoneyInput;
use platform::{Currency, Problem};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::reservations::Stock;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub stock: Stock,
}

pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(products::router())
        .merge(items::router())
        .merge(levels::router())
        .merge(categories::router())
        .merge(suppliers::router())
        .merge(discounts::router())
        .merge(reservations::router())
        .with_state(state)
}

/// The shop a request acts in (see `AuthUser::acting_shop`).
pub fn acting_shop(user: &AuthUser, named: Option<Uuid>) -> Result<Uuid, Problem> {
    user.acting_shop(named.map(ShopId)).map(|s| s.0)
}

/// The shop's currency as stock knows it (see [`crate::db::shop_currency`]).
pub async fn currency(pool: &PgPool, shop: Uuid) -> Result<Currency, Problem> {
    Ok(crate::db::shop_currency(pool, shop).await?)
}

/// A catalog record's visibility as requested: ACTIVE, or HIDE, which the first system's
/// clients call INACTIVE (both accepted, stored as HIDE).
pub fn visibility(raw: Option<&str>) -> Result<Option<&'static str>, Problem> {
    match raw {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some("ACTIVE")),
        Some("HIDE" | "INACTIVE") => Ok(Some("HIDE")),
        Some(_) => Err(unprocessable("status", "ACTIVE, HIDE or INACTIVE")),
    }
}

pub fn unprocessable(field: &str, message: &str) -> Problem {
    Problem::field(field, message)
}

/// An amount as sent (a decimal string or a JSON number), in the shop's currency, not negative.
pub fn parse_money(field: &str, raw: Option<&MoneyInput>, currency: Currency) -> Result<Option<i64>, Problem> {
    raw.map(|m| {
        let m = m.read(field, currency)?;
        if m.is_negative() {
            return Err(unprocessable(field, "a non-negative amount in the shop's currency, e.g. \"1250.00\""));
        }
        Ok(m.minor())
    })
    .transpose()
}

/// A page of a list with no other filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    pub page: Option<i64>,
    pub limit: Option<i64>,
}
