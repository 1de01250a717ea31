//! Access-token signing keys (Ed25519) kept in `auth.signing_keys`: the newest signs; every
//! key still published is in the JWKS. Rotation (`cashvio-admin rotate-signing-key`) adds a
//! key and keeps the old one published until its tokens have expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::RwLock;

use platform::auth::Claims;

struct Active {
    kid: String,
    key: EncodingKey,
    loaded_at: Instant,
}

/// Signs tokens with the current key; re-reads the table now and then so a rotation done
/// by the command reaches running instances.
#[derive(Clone)]
pub struct KeyStore {
    pool: PgPool,
    active: Arc<RwLock<Option<Active>>>,
}

const RELOAD_EVERY: Duration = Duration::from_secs(60);

impl KeyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, active: Arc::default() }
    }

    /// Creates the first key if there is none (a fresh database).
    pub async fn ensure_key(&self) -> anyhow::Result<()> {
        let exists: bool = sqlx::query_scalar("select exists(select 1 from signing_keys where retired_at is null)")
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            insert_new_key(&self.pool).await?;
        }
        Ok(())
    }

    pub async fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        {
            let guard = self.active.read().await;
            if let Some(a) = guard.as_ref().filter(|a| a.loaded_at.elapsed() < RELOAD_EVERY) {
                return encode(&a.kid, &a.key, claims);
            }
        }
        let mut guard = self.active.write().await;
        let (kid, der): (String, Vec<u8>) = sqlx::query_as(
            "select kid, private_der from signing_keys where retired_at is null order by created_at desc limit 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .context("no active signing key")?;
        let key = EncodingKey::from_ed_der(&der);
        let token = encode(&kid, &key, claims);
        *guard = Some(Active { kid, key, loaded_at: Instant::now() });
        token
    }

    /// The public keys to publish.
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select kid, public_x from signing_keys
              where published_until is null or published_until > now()
              order by created_at desc",
        )
        .fetch_all(&self.pool)
        .await?;
        let keys: Vec<Value> = rows
            .into_iter()
            .map(|(kid, x)| json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid, "x": x}))
            .collect();
        Ok(json!({ "keys": keys }))
    }
}

fn encode(kid: &str, key: &EncodingKey, claims: &Claims) -> anyhow::Result<String> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).context("signing access token")
}

async fn insert_new_key(pool: &PgPool) -> anyhow::Result<String> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().context("encoding key")?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let kid = format!("k-{}", uuid::Uuid::now_v7().simple());
    sqlx::query("insert into signing_keys (kid, private_der, public_x) values ($1, $2, $3)")
        .bind(&kid)
        .bind(der.as_bytes())
        .bind(x)
        .execute(pool)
        .await?;
    Ok(kid)
}

/// Rotation: a new key signs from now on (within a minute on every instance); older keys
/// stop signing and stay published for `keep_published` (at least the access-token TTL).
pub async fn rotate(pool: &PgPool, keep_published: Duration) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    let secs = keep_published.as_secs_f64();
    sqlx::query(
        "update signing_keys set retired_at = now(), published_until = now() + make_interval(secs => $1)
          where retired_at is null",
    )
    .bind(secs)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    insert_new_key(pool).await
}
