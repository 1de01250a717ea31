//! Small queries shared by stock's HTTP handlers and its reservation core.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use platform::Currency;

/// How long a shop's currency is answered from memory. Every product, unit and level read
/// formats prices in it; it changes when an owner edits the shop, which reaches stock as an
/// event: the instance applying it forgets at once, others within this.
pub const CURRENCY_TTL: Duration = Duration::from_secs(30);

static CURRENCIES: LazyLock<Mutex<HashMap<Uuid, (Currency, Instant)>>> = LazyLock::new(Default::default);

/// The shop's currency as stock knows it (from auth's shop events). A shop not announced
/// yet has the platform default (not remembered: its event is on the way); a failed lookup
/// is an error, never a silent default.
#[tracing::instrument(skip_all, fields(shop_id = %shop))]
pub async fn shop_currency(pool: &PgPool, shop: Uuid) -> anyhow::Result<Currency> {
    let known = CURRENCIES.lock().unwrap_or_else(PoisonError::into_inner).get(&shop).copied();
    if let Some((currency, _)) = known.filter(|(_, at)| at.elapsed() < CURRENCY_TTL) {
        return Ok(currency);
    }
    let code = sqlx::query_scalar!("select currency from stock.shops where shop_id = $1", shop)
        .fetch_optional(pool)
        .await
        .context("reading the shop's currency")?;
    let Some(code) = code else { return Ok(Currency::LKR) };
    let currency: Currency =
        code.parse().map_err(|_| anyhow::anyhow!("shop {shop} has an unknown currency {code:?}"))?;
    let mut known = CURRENCIES.lock().unwrap_or_else(PoisonError::into_inner);
    if known.len() > 100_000 {
        known.clear();
    }
    known.insert(shop, (currency, Instant::now()));
    Ok(currency)
}

/// Forgets the remembered currency of `shop` (its record was just written).
pub fn forget_currency(shop: Uuid) {
    CURRENCIES.lock().unwrap_or_else(PoisonError::into_inner).remove(&shop);
}
