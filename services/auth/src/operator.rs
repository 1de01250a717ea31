//! Operator actions on auth's tables (run by `cashvio-admin`, never a public endpoint).
//! They live here so that auth is the one owner of `auth.users`.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, Email, Password};

/// Creates the super admin, or promotes and re-activates the account with that e-mail.
/// Returns the user id and whether it was created.
pub async fn create_super_admin(
    pool: &PgPool,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<(Uuid, bool)> {
    let email = Email::parse(email).map_err(|_| anyhow::anyhow!("not a valid e-mail address"))?;
    let name = domain::name("name", name).map_err(|_| anyhow::anyhow!("the name must be 1 to 120 characters"))?;
    let password = Password::parse(password)
        .map_err(|_| anyhow::anyhow!("the password must be 8 to 128 characters and not a common one"))?;
    let hash = crate::crypto::hash_password(password.into_inner()).await?;
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let existing =
        sqlx::query_scalar!("select user_id from auth.users where lower(email) = $1 for update", email.normalized())
            .fetch_optional(&mut *tx)
            .await
            .context("looking the account up")?;
    let result = match existing {
        Some(id) => {
            sqlx::query!(
                "update auth.users set role = 'SUPER_ADMIN', status = 'ACTIVE', password_hash = $2 where user_id = $1",
                id,
                hash
            )
            .execute(&mut *tx)
            .await
            .context("promoting the account")?;
            crate::access::announce_user(&mut tx, id, "ACTIVE").await.map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::session::revoke_all(&mut tx, id, "role changed").await.map_err(|e| anyhow::anyhow!("{e}"))?;
            (id, false)
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query!(
                "insert into auth.users (user_id, email, name, password_hash, role, email_verified)
                 values ($1, $2, $3, $4, 'SUPER_ADMIN', true)",
                id,
                email.as_str(),
                name,
                hash
            )
            .execute(&mut *tx)
            .await
            .context("creating the account")?;
            (id, true)
        }
    };
    tx.commit().await.context("committing")?;
    Ok(result)
}

/// A new signing key; the old ones stay published for `access_ttl` plus a margin for
/// instances that still sign with their cached key (up to a minute).
pub async fn rotate_signing_key(pool: &PgPool, access_ttl: Duration) -> anyhow::Result<String> {
    crate::keys::rotate(pool, access_ttl + Duration::from_secs(120)).await.context("rotating the signing key")
}
