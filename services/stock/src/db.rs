//! Small queries shared by stock's HTTP handlers and its reservation core.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use platform::Currency;

/// The shop's currency as stock knows it (from auth's shop events). A shop not announced
/// yet has the platform default; a failed lookup is an error, never a silent default.
#[tracing::instrument(skip_all, fields(shop_id = %shop))]
pub async fn shop_currency(pool: &PgPool, shop: Uuid) -> anyhow::Result<Currency> {
    let code = sqlx::query_scalar!("select currency from stock.shops where shop_id = $1", shop)
        .fetch_optional(pool)
        .await
        .context("reading the shop's currency")?;
    match code {
        None => Ok(Currency::LKR),
        Some(code) => code.parse().map_err(|_| anyhow::anyhow!("shop {shop} has an unknown currency {code:?}")),
    }
}
