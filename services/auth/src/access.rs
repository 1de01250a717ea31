//! Who may do what, answered by auth from its own tables (the source every other service
//! projects): the session must not be revoked, the account must be active, and the shops
//! are the active memberships. One indexed query per request; no cache, so a change here
//! applies to auth's own endpoints at once.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use bus::MessageMeta;
use contracts::auth::UserChanged;
use platform::auth::{Access, AccessDenied, AccessSource, ShopRole};
use platform::ids::{ShopId, UserId};
use platform::Problem;

use crate::error::AuthError;

pub struct AuthAccess {
    pub pool: PgPool,
}

#[async_trait::async_trait]
impl AccessSource for AuthAccess {
    /// Auth is the source: nothing is ever pending here.
    async fn access(&self, user: UserId, session: Option<Uuid>, _pending: &[ShopId]) -> Result<Access, Problem> {
        let row = sqlx::query!(
            r#"select u.status,
                      exists(select 1 from auth.sessions s
                              where s.session_id = $2 and (s.revoked_at is not null or s.user_id <> u.user_id)) as "revoked!",
                      coalesce(array_agg(m.shop_id) filter (where m.shop_id is not null), '{}') as "shops!",
                      coalesce(array_agg(m.role) filter (where m.shop_id is not null), '{}') as "roles!: Vec<ShopRole>"
                 from auth.users u
                 left join auth.memberships m on m.user_id = u.user_id and m.status = 'ACTIVE'
                where u.user_id = $1
                group by u.user_id, u.status"#,
            user.0,
            session
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Problem::internal(&anyhow::Error::new(e).context("reading the caller's access")))?;
        let Some(row) = row else { return Err(AccessDenied::AccountDisabled.into()) };
        if row.revoked {
            return Err(AccessDenied::SessionRevoked.into());
        }
        if row.status != "ACTIVE" {
            return Err(AccessDenied::AccountDisabled.into());
        }
        let shops = row.shops.into_iter().zip(row.roles).map(|(shop, role)| (ShopId(shop), role)).collect();
        Ok(Access { shops })
    }
}

/// Tells every service, in the changing transaction, that an account's status changed.
pub async fn announce_user(conn: &mut PgConnection, user_id: Uuid, status: &str) -> Result<(), AuthError> {
    let event = UserChanged { user_id, status: status.to_owned(), changed_at: chrono::Utc::now() };
    bus::enqueue(conn, &event, &MessageMeta::default()).await?;
    Ok(())
}
