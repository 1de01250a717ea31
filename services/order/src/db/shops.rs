//! What the order service knows of shops (from auth's events) and the settings it owns.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use contracts::auth::ShopCreated;
use contracts::common::ShopBrand;

use super::customers::Customer;
use crate::wallet::Seen;

#[derive(Debug, Clone)]
pub struct Shop {
    pub shop_id: Uuid,
    pub name: String,
    pub logo_url: Option<String>,
    pub address: Option<String>,
    pub contact_phone: Option<String>,
    pub currency: String,
    pub time_zone: String,
    pub allow_credit: bool,
    pub credit_limit_minor: i64,
    pub staff_price_override: bool,
    pub require_open_shift: bool,
    pub updated_at: DateTime<Utc>,
}

impl Shop {
    pub fn brand(&self) -> ShopBrand {
        ShopBrand {
            id: self.shop_id,
            name: self.name.clone(),
            logo_url: self.logo_url.clone(),
            address: self.address.clone(),
            contact_phone: self.contact_phone.clone(),
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn get(pool: &PgPool, shop_id: Uuid) -> sqlx::Result<Option<Shop>> {
    sqlx::query_as!(
        Shop,
        "select shop_id, name, logo_url, address, contact_phone, currency, time_zone, allow_credit, credit_limit_minor,
                staff_price_override, require_open_shift, updated_at
           from sales.shops where shop_id = $1",
        shop_id
    )
    .fetch_optional(pool)
    .await
}

/// What a sale starts from, in one read: the shop, whether the order is already booked (a
/// keyed retry whose first run booked it), and the named customer if the shop has them.
pub struct ForSale {
    pub shop: Shop,
    pub booked: bool,
    pub customer: Option<Customer>,
    /// The named customer's wallet row at the shop, for the wallet's turn.
    pub wallet: Seen,
}

#[tracing::instrument(skip_all)]
pub async fn for_sale(
    pool: &PgPool,
    shop_id: Uuid,
    order_id: Uuid,
    customer_id: Option<Uuid>,
) -> sqlx::Result<Option<ForSale>> {
    let row = sqlx::query!(
        r#"select s.shop_id, s.name, s.logo_url, s.address, s.contact_phone, s.currency, s.time_zone, s.allow_credit,
                  s.credit_limit_minor, s.staff_price_override, s.require_open_shift, s.updated_at,
                  exists (select 1 from sales.orders o where o.order_id = $2) as "booked!",
                  c.customer_id as "customer_id?", c.registered as "registered?", c.name as "customer_name?",
                  c.email as "customer_email?", c.phone as "customer_phone?",
                  w.version as "wallet_version?", w.sealed as "wallet_sealed?"
             from sales.shops s
             left join sales.customers c on c.shop_id = s.shop_id and c.customer_id = $3
             left join sales.wallets w on w.shop_id = s.shop_id and w.customer_id = $3
            where s.shop_id = $1"#,
        shop_id,
        order_id,
        customer_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| ForSale {
        wallet: match (customer_id, r.wallet_version, r.wallet_sealed) {
            (None, _, _) => Seen::Nothing,
            (Some(_), Some(version), Some(sealed)) => Seen::Row { version, sealed },
            (Some(_), _, _) => Seen::Absent,
        },
        customer: match (r.customer_id, r.registered) {
            (Some(customer_id), Some(registered)) => Some(Customer {
                customer_id,
                registered,
                name: r.customer_name,
                email: r.customer_email,
                phone: r.customer_phone,
            }),
            _ => None,
        },
        booked: r.booked,
        shop: Shop {
            shop_id: r.shop_id,
            name: r.name,
            logo_url: r.logo_url,
            address: r.address,
            contact_phone: r.contact_phone,
            currency: r.currency,
            time_zone: r.time_zone,
            allow_credit: r.allow_credit,
            credit_limit_minor: r.credit_limit_minor,
            staff_price_override: r.staff_price_override,
            require_open_shift: r.require_open_shift,
            updated_at: r.updated_at,
        },
    }))
}

/// A shop's brand and currency from auth. The credit policy is taken only when the shop is
/// new here: after that the owner's settings (this service's) decide.
pub async fn upsert_from_event(conn: &mut PgConnection, e: &ShopCreated) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into sales.shops (shop_id, name, logo_url, address, contact_phone, currency, allow_credit)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (shop_id) do update set name = excluded.name, logo_url = excluded.logo_url,
             address = excluded.address, contact_phone = excluded.contact_phone, currency = excluded.currency",
        e.shop.id,
        e.shop.name,
        e.shop.logo_url,
        e.shop.address,
        e.shop.contact_phone,
        e.currency,
        e.allow_credit
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Settings as the owner sets them (every field given; the handler merges).
pub struct Settings {
    pub time_zone: String,
    pub allow_credit: bool,
    pub credit_limit_minor: i64,
    pub staff_price_override: bool,
    pub require_open_shift: bool,
}

/// The settings; a new time zone re-buckets the ledger's daily totals into the shop's new
/// days in the same transaction.
pub async fn put_settings(pool: &PgPool, shop_id: Uuid, s: &Settings) -> sqlx::Result<Option<Shop>> {
    let mut tx = pool.begin().await?;
    let before = sqlx::query_scalar!("select time_zone from sales.shops where shop_id = $1 for update", shop_id)
        .fetch_optional(&mut *tx)
        .await?;
    let shop = sqlx::query_as!(
        Shop,
        "update sales.shops set time_zone = $2, allow_credit = $3, credit_limit_minor = $4, staff_price_override = $5,
                require_open_shift = $6
          where shop_id = $1
         returning shop_id, name, logo_url, address, contact_phone, currency, time_zone, allow_credit, credit_limit_minor,
                   staff_price_override, require_open_shift, updated_at",
        shop_id,
        s.time_zone,
        s.allow_credit,
        s.credit_limit_minor,
        s.staff_price_override,
        s.require_open_shift
    )
    .fetch_optional(&mut *tx)
    .await?;
    if before.is_some_and(|tz| tz != s.time_zone) {
        super::cashflow::rebuild_days(&mut tx, shop_id).await?;
    }
    tx.commit().await?;
    Ok(shop)
}

/// Whether PostgreSQL (whose zone database the reports use) knows this IANA time zone.
pub async fn time_zone_exists(pool: &PgPool, tz: &str) -> sqlx::Result<bool> {
    if tz.is_empty() || tz.len() > 64 {
        return Ok(false);
    }
    sqlx::query_scalar!(r#"select exists (select 1 from pg_timezone_names where name = $1) as "known!""#, tz)
        .fetch_one(pool)
        .await
}
