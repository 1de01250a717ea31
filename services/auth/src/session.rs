//! Sessions and tokens: an access JWT (15 minutes, the user's role and per-shop roles) plus
//! an opaque refresh token whose hash is stored; every refresh rotates it, and presenting a
//! rotated token again revokes the whole session (token family).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::auth::SessionRevoked;
use platform::auth::{Claims, Role, ShopClaim, ShopRole};
use platform::ids::{ShopId, UserId};

use crate::config::TokenConfig;
use crate::crypto;
use crate::error::AuthError;
use crate::keys::KeyStore;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopSummary {
    pub id: Uuid,
    pub business_name: String,
    pub address: String,
    pub contact_phone: Option<String>,
    pub shop_logo: Option<String>,
    pub shop_banner: Option<String>,
    pub role: ShopRole,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub status: String,
    pub profile_image: Option<String>,
    pub default_shop_id: Option<Uuid>,
    pub default_shop: Option<ShopSummary>,
    pub shops: Vec<ShopSummary>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserSummary,
}

struct UserRow {
    user_id: Uuid,
    name: String,
    email: String,
    role: Role,
    status: String,
    profile_image: Option<String>,
    default_shop_id: Option<Uuid>,
}

#[tracing::instrument(skip(conn))]
pub async fn user_summary(conn: &mut PgConnection, user_id: Uuid) -> Result<UserSummary, AuthError> {
    let u = sqlx::query_as!(
        UserRow,
        r#"select user_id, name, email, role as "role: Role", status, profile_image, default_shop_id
             from auth.users where user_id = $1"#,
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AuthError::NotFound("user"))?;
    let shops = sqlx::query_as!(
        ShopSummary,
        r#"select s.shop_id as id, s.business_name, s.address, s.contact_phone, s.shop_logo, s.shop_banner,
                  m.role as "role: ShopRole"
             from auth.memberships m join auth.shops s using (shop_id)
            where m.user_id = $1 and m.status = 'ACTIVE'
            order by m.created_at"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let default_shop =
        u.default_shop_id.and_then(|d| shops.iter().find(|s| s.id == d).cloned()).or_else(|| shops.first().cloned());
    Ok(UserSummary {
        id: u.user_id,
        name: u.name,
        email: u.email,
        role: u.role,
        status: u.status,
        profile_image: u.profile_image,
        default_shop_id: default_shop.as_ref().map(|s| s.id),
        default_shop,
        shops,
    })
}

fn claims_for(user: &UserSummary, session: Uuid, cfg: &TokenConfig) -> Claims {
    let now = Utc::now().timestamp();
    let ttl = i64::try_from(cfg.access_ttl.as_secs()).unwrap_or(900);
    Claims {
        sub: UserId(user.id),
        role: user.role,
        shops: user.shops.iter().map(|s| ShopClaim { id: ShopId(s.id), role: s.role }).collect(),
        iss: cfg.issuer.clone(),
        aud: cfg.audience.clone(),
        exp: now + ttl,
        iat: now,
        sid: Some(session.to_string()),
    }
}

/// Stores the hash of a new refresh token of the session (the token itself is never stored).
async fn insert_refresh_token(conn: &mut PgConnection, token: &str, session_id: Uuid) -> Result<(), AuthError> {
    sqlx::query!(
        "insert into auth.refresh_tokens (token_hash, session_id) values ($1, $2)",
        crypto::digest(token),
        session_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts a session (a new token family) for a user who just proved who they are.
#[tracing::instrument(skip(pool, keys, cfg, user_agent))]
pub async fn start(
    pool: &PgPool,
    keys: &KeyStore,
    cfg: &TokenConfig,
    user_id: Uuid,
    remember_me: bool,
    user_agent: Option<&str>,
) -> Result<TokenResponse, AuthError> {
    let mut tx = pool.begin().await?;
    let user = user_summary(&mut tx, user_id).await?;
    if user.status != "ACTIVE" {
        return Err(AuthError::AccountDisabled);
    }
    let ttl = if remember_me { cfg.refresh_ttl } else { cfg.refresh_ttl_short };
    let session_id = Uuid::now_v7();
    let user_agent: Option<String> = user_agent.map(|u| u.chars().take(300).collect());
    sqlx::query!(
        "insert into auth.sessions (session_id, user_id, remember_me, user_agent, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        session_id,
        user_id,
        remember_me,
        user_agent,
        ttl.as_secs_f64()
    )
    .execute(&mut *tx)
    .await?;
    let refresh = crypto::random_token();
    insert_refresh_token(&mut tx, &refresh, session_id).await?;
    tx.commit().await?;
    let access = keys.sign(&claims_for(&user, session_id, cfg)).await?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: cfg.access_ttl.as_secs(),
        user,
    })
}

struct PresentedToken {
    session_id: Uuid,
    used_at: Option<DateTime<Utc>>,
    /// Used, but so recently that this is a second tab, not a thief.
    in_grace: bool,
    successor_sealed: Option<Vec<u8>>,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    user_id: Uuid,
}

/// Exchanges a refresh token for a new pair. A token already exchanged means it was stolen
/// (or the client is confused): the whole family is revoked and both holders must sign in.
#[tracing::instrument(skip_all)]
pub async fn refresh(
    pool: &PgPool,
    keys: &KeyStore,
    cfg: &TokenConfig,
    presented: &str,
) -> Result<TokenResponse, AuthError> {
    let hash = crypto::digest(presented);
    let mut tx = pool.begin().await?;
    // Lock the session and the token so two concurrent refreshes of one family serialise,
    // and the second sees what the first wrote (used, and its sealed successor).
    let row = sqlx::query_as!(
        PresentedToken,
        r#"select t.session_id, t.used_at, s.revoked_at, s.expires_at, s.user_id, t.successor_sealed,
                  coalesce(t.used_at > now() - make_interval(secs => $2), false) as "in_grace!"
             from auth.refresh_tokens t join auth.sessions s using (session_id)
            where t.token_hash = $1
              for update of s, t"#,
        hash,
        cfg.refresh_reuse_grace.as_secs_f64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Err(AuthError::RefreshInvalid) };
    if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
        return Err(AuthError::RefreshInvalid);
    }
    if row.used_at.is_some() && row.in_grace {
        // Two tabs refreshed with the same token: the later one gets the same successor.
        if let Some(next) = row.successor_sealed.as_deref().and_then(|s| crypto::open_successor(presented, s)) {
            let user = user_summary(&mut tx, row.user_id).await?;
            if user.status != "ACTIVE" {
                return Err(AuthError::AccountDisabled);
            }
            tx.commit().await?;
            let access = keys.sign(&claims_for(&user, row.session_id, cfg)).await?;
            return Ok(TokenResponse {
                access_token: access,
                refresh_token: next,
                token_type: "Bearer",
                expires_in: cfg.access_ttl.as_secs(),
                user,
            });
        }
    }
    if row.used_at.is_some() {
        sqlx::query!(
            "update auth.sessions set revoked_at = now(), revoked_reason = 'refresh token reused' where session_id = $1",
            row.session_id
        )
        .execute(&mut *tx)
        .await?;
        announce_revoked(&mut tx, &[(row.session_id, row.user_id)], "refresh token reused").await?;
        tx.commit().await?;
        tracing::warn!(session_id = %row.session_id, user_id = %row.user_id, "refresh token reuse: session revoked");
        return Err(AuthError::RefreshReused);
    }
    let user = user_summary(&mut tx, row.user_id).await?;
    if user.status != "ACTIVE" {
        return Err(AuthError::AccountDisabled);
    }
    let next = crypto::random_token();
    sqlx::query!(
        "update auth.refresh_tokens set used_at = now(), successor_sealed = $2 where token_hash = $1",
        hash,
        crypto::seal_successor(presented, &next)
    )
    .execute(&mut *tx)
    .await?;
    insert_refresh_token(&mut tx, &next, row.session_id).await?;
    tx.commit().await?;
    let access = keys.sign(&claims_for(&user, row.session_id, cfg)).await?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: next,
        token_type: "Bearer",
        expires_in: cfg.access_ttl.as_secs(),
        user,
    })
}

/// Revokes the session a refresh token belongs to. Unknown tokens are ignored (logout is
/// idempotent).
#[tracing::instrument(skip_all)]
pub async fn revoke_by_token(pool: &PgPool, presented: &str) -> Result<(), AuthError> {
    let mut tx = pool.begin().await?;
    let ended: Vec<(Uuid, Uuid)> = sqlx::query!(
        "update auth.sessions set revoked_at = now(), revoked_reason = 'logout'
          where revoked_at is null
            and session_id = (select session_id from auth.refresh_tokens where token_hash = $1)
         returning session_id, user_id",
        crypto::digest(presented)
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.session_id, r.user_id))
    .collect();
    announce_revoked(&mut tx, &ended, "logout").await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(skip(conn))]
pub async fn revoke_session(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> Result<(), AuthError> {
    let ended: Vec<(Uuid, Uuid)> = sqlx::query!(
        "update auth.sessions set revoked_at = now(), revoked_reason = $3
          where session_id = $1 and user_id = $2 and revoked_at is null
         returning session_id, user_id",
        session_id,
        user_id,
        reason
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.session_id, r.user_id))
    .collect();
    announce_revoked(conn, &ended, reason).await
}

#[tracing::instrument(skip(conn))]
pub async fn revoke_all(conn: &mut PgConnection, user_id: Uuid, reason: &str) -> Result<u64, AuthError> {
    let ended: Vec<(Uuid, Uuid)> = sqlx::query!(
        "update auth.sessions set revoked_at = now(), revoked_reason = $2
          where user_id = $1 and revoked_at is null
         returning session_id, user_id",
        user_id,
        reason
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.session_id, r.user_id))
    .collect();
    announce_revoked(conn, &ended, reason).await?;
    Ok(ended.len() as u64)
}

/// Tells every service, in the revoking transaction, that these sessions ended: their
/// access tokens stop working everywhere within about a second.
async fn announce_revoked(conn: &mut PgConnection, ended: &[(Uuid, Uuid)], reason: &str) -> Result<(), AuthError> {
    let now = Utc::now();
    for (session_id, user_id) in ended {
        let event =
            SessionRevoked { session_id: *session_id, user_id: *user_id, reason: reason.to_owned(), revoked_at: now };
        bus::enqueue(&mut *conn, &event, &MessageMeta::default()).await?;
    }
    Ok(())
}
