//! Auth operator commands: the first super admin (never a public endpoint) and signing-key
//! rotation.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

/// Creates the super admin, or promotes and re-activates the account with that e-mail.
/// Returns the user id and whether it was created.
pub async fn create_super_admin(
    pool: &PgPool,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<(Uuid, bool)> {
    let email = cashvio_auth::domain::Email::parse(email).map_err(|_| anyhow::anyhow!("not a valid e-mail address"))?;
    let name = cashvio_auth::domain::name("name", name)
        .map_err(|_| anyhow::anyhow!("the name must be 1 to 120 characters"))?;
    let password = cashvio_auth::domain::Password::parse(password)
        .map_err(|_| anyhow::anyhow!("the password must be 8 to 128 characters and not a common one"))?;
    let hash = cashvio_auth::crypto::hash_password(password.into_inner()).await?;
    let mut tx = pool.begin().await?;
    let existing: Option<Uuid> =
        sqlx::query_scalar("select user_id from auth.users where lower(email) = $1 for update")
            .bind(email.normalized())
            .fetch_optional(&mut *tx)
            .await?;
    let result = match existing {
        Some(id) => {
            sqlx::query(
                "update auth.users set role = 'SUPER_ADMIN', status = 'ACTIVE', password_hash = $2 where user_id = $1",
            )
            .bind(id)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            (id, false)
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into auth.users (user_id, email, name, password_hash, role, email_verified)
                 values ($1, $2, $3, $4, 'SUPER_ADMIN', true)",
            )
            .bind(id)
            .bind(email.as_str())
            .bind(&name)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            (id, true)
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// A new signing key; the old ones stay published for `access_ttl` plus a margin for
/// instances that still sign with their cached key (up to a minute).
pub async fn rotate_signing_key(pool: &PgPool, access_ttl: Duration) -> anyhow::Result<String> {
    cashvio_auth::keys::rotate(pool, access_ttl + Duration::from_secs(120)).await.context("rotating the signing key")
}
