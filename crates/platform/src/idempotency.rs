//! One idempotency mechanism for every service: `Idempotency-Key` on a POST that moves
//! stock or money. The key is scoped to the shop and the route and stored with a
//! fingerprint of the request before the handler acts:
//! - the first request runs and its answer is stored (2xx and definite 4xx);
//! - a retry with the same request gets that answer again, with no second effect;
//! - a duplicate that arrives while the first still runs waits for its answer;
//! - the same key with a different request is a 422 `IDEMPOTENCY_KEY_REUSED`;
//! - a failure that may not be final (5xx, 409, 429) releases the key, so a retry runs.
//!
//! The row lives in the service's own schema (`idempotency_keys`, through the pool's
//! search_path). A process that dies mid-request leaves its key "running": after
//! [`ABANDONED_AFTER`] another request takes it over. Because the answer is stored after the
//! effect, an effect that must never repeat also carries [`effect_id`] so its own store can
//! refuse a second copy (stock's ledger does). An action that books its effect in one
//! transaction can write the answer there too ([`once_storing`], [`Claim::store_in`]): the
//! answer then commits with the effect, and the request costs one commit fewer.

/// A stable id for the effect of (shop, route, key): handed to the code that applies it so
/// a re-run after a lost answer (a timeout, a crash, a takeover) is recognised there.
pub fn effect_id(shop: ShopId, route: &str, key: &IdempotencyKey) -> Option<uuid::Uuid> {
    const NS: uuid::Uuid = uuid::Uuid::from_u128(0x3c1f_08a4_7d2e_4b9a_8f61_5e0d_2a7b_9c44);
    key.0.as_ref().map(|k| uuid::Uuid::new_v5(&NS, format!("{}:{route}:{k}", shop.0).as_bytes()))
}

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::Problem;
use crate::ids::ShopId;

/// A duplicate waits at most this long for the first request's answer.
pub const WAIT: Duration = Duration::from_secs(30);
/// A key still running after this long belonged to a process that died.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// The request's `Idempotency-Key` header, if any: 1 to 200 visible ASCII characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(raw) = parts.headers.get("idempotency-key") else { return Ok(Self(None)) };
        let key = raw
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| Problem::field("Idempotency-Key", "1 to 200 visible ASCII characters"))?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// What a handler answers under a key: a status and a JSON body (stored, then replayed).
pub type Answer = (StatusCode, serde_json::Value);

/// Runs `act` at most once per (shop, route, key); see the module docs. `request` is
/// fingerprinted (its `Debug` form, so the same parsed request matches whatever the key
/// order or spacing of the JSON). Without a key, `act` just runs.
pub async fn once<F, Fut, T>(
    pool: &PgPool,
    key: &IdempotencyKey,
    shop: ShopId,
    route: &str,
    request: &impl std::fmt::Debug,
    act: F,
) -> Result<Response, Problem>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, T), Problem>>,
    T: Serialize,
{
    once_storing(pool, key, shop, route, request, |_| async move {
        let (status, body) = act().await?;
        Ok(Reply::Answer(status, body))
    })
    .await
}

/// The key a request runs under, handed to the action by [`once_storing`].
#[derive(Debug, Clone)]
pub struct Claim {
    shop: ShopId,
    route: String,
    key: String,
}

impl Claim {
    /// Writes the answer through `conn`: inside the transaction that books the effect, so
    /// both commit together. The action then answers [`Reply::Stored`] with the same body.
    pub async fn store_in(
        &self,
        conn: &mut PgConnection,
        status: StatusCode,
        body: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        store(&mut *conn, self.shop, &self.route, &self.key, status, body).await
    }

    /// The answer as the values of its row, for an action that writes it inside a statement
    /// of its own, one round trip fewer than [`Claim::store_in`]. That statement must do
    /// exactly what `store_in` does (the order's booking does, in `insert_details`):
    /// `update <schema>.idempotency_keys set status_code = .., response = .., completed_at =
    /// now() where shop_id = .. and route = .. and key = .. and completed_at is null`.
    pub fn answer<'a>(&'a self, status: StatusCode, body: &'a serde_json::Value) -> StoredAnswer<'a> {
        StoredAnswer { shop_id: self.shop.0, route: &self.route, key: &self.key, status_code: code(status), body }
    }
}

/// A stored answer's row: see [`Claim::answer`].
#[derive(Debug, Clone, Copy)]
pub struct StoredAnswer<'a> {
    pub shop_id: uuid::Uuid,
    pub route: &'a str,
    pub key: &'a str,
    pub status_code: i16,
    pub body: &'a serde_json::Value,
}

/// A status as the `status_code` column holds it.
fn code(status: StatusCode) -> i16 {
    i16::try_from(status.as_u16()).unwrap_or(500)
}

/// What an action run by [`once_storing`] answers.
#[derive(Debug)]
pub enum Reply<T> {
    /// An answer for `once_storing` to store (when there is a key) and send.
    Answer(StatusCode, T),
    /// An answer the action already wrote through [`Claim::store_in`]; it is only sent.
    Stored(StatusCode, serde_json::Value),
}

/// [`once`] for an action that may write its own answer in its own transaction: `act`
/// gets the [`Claim`] (none without a key) and answers [`Reply::Stored`] when it wrote the
/// answer through it, [`Reply::Answer`] otherwise. A failure is handled as by `once`.
pub async fn once_storing<F, Fut, T>(
    pool: &PgPool,
    key: &IdempotencyKey,
    shop: ShopId,
    route: &str,
    request: &impl std::fmt::Debug,
    act: F,
) -> Result<Response, Problem>
where
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply<T>, Problem>>,
    T: Serialize,
{
    let Some(key) = key.0.as_deref() else {
        return Ok(match act(None).await? {
            Reply::Answer(status, body) => (status, axum::Json(body)).into_response(),
            Reply::Stored(status, body) => (status, axum::Json(body)).into_response(),
        });
    };
    let fingerprint = Sha256::digest(format!("{route}\n{request:?}").as_bytes()).to_vec();
    let started = tokio::time::Instant::now();
    loop {
        let claimed = sqlx::query!(
            "insert into idempotency_keys (shop_id, route, key, fingerprint) values ($1, $2, $3, $4)
             on conflict do nothing",
            shop.0,
            route,
            key,
            fingerprint
        )
        .execute(pool)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return run(pool, shop, route, key, act).await;
        }
        let row = sqlx::query!(
            r#"select fingerprint, status_code, response,
                      (completed_at is null and created_at < now() - make_interval(secs => $4)) as "abandoned!"
                 from idempotency_keys where shop_id = $1 and route = $2 and key = $3"#,
            shop.0,
            route,
            key,
            ABANDONED_AFTER.as_secs_f64()
        )
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { continue }; // released meanwhile: try to claim it
        if row.fingerprint != fingerprint {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used for a different request.",
            ));
        }
        if let (Some(status), Some(body)) = (row.status_code, row.response) {
            let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok());
            let status = status.unwrap_or(StatusCode::OK);
            if status.is_client_error() {
                if let Ok(problem) = serde_json::from_value::<Problem>(body.clone()) {
                    return Err(problem);
                }
            }
            return Ok((status, axum::Json(body)).into_response());
        }
        if row.abandoned {
            // Taken over in one statement: of several waiters, exactly one wins it.
            let won = sqlx::query!(
                "update idempotency_keys set created_at = now()
                  where shop_id = $1 and route = $2 and key = $3 and completed_at is null
                    and created_at < now() - make_interval(secs => $4)",
                shop.0,
                route,
                key,
                ABANDONED_AFTER.as_secs_f64()
            )
            .execute(pool)
            .await?
            .rows_affected()
                == 1;
            if won {
                return run(pool, shop, route, key, act).await;
            }
            continue;
        }
        if started.elapsed() >= WAIT {
            return Err(Problem::conflict(
                "IDEMPOTENCY_KEY_IN_USE",
                "A request with this Idempotency-Key is still running; try again shortly.",
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn run<F, Fut, T>(pool: &PgPool, shop: ShopId, route: &str, key: &str, act: F) -> Result<Response, Problem>
where
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply<T>, Problem>>,
    T: Serialize,
{
    let claim = Claim { shop, route: route.to_owned(), key: key.to_owned() };
    let (status, body) = match act(Some(claim)).await {
        Ok(Reply::Stored(status, body)) => return Ok((status, axum::Json(body)).into_response()),
        Ok(Reply::Answer(status, value)) => {
            (status, serde_json::to_value(value).map_err(|e| Problem::internal(&anyhow::Error::new(e)))?)
        }
        Err(problem) => {
            let final_answer = problem.status_code().is_client_error()
                && !matches!(problem.status_code(), StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS);
            if !final_answer {
                release(pool, shop, route, key).await?;
                return Err(problem);
            }
            let body = serde_json::to_value(&problem).map_err(|e| Problem::internal(&anyhow::Error::new(e)))?;
            store(pool, shop, route, key, problem.status_code(), &body).await?;
            return Err(problem);
        }
    };
    store(pool, shop, route, key, status, &body).await?;
    Ok((status, axum::Json(body)).into_response())
}

/// The answer, once: an answer the action already stored with its effect is never
/// overwritten (by a failure it reported after its commit, say).
async fn store(
    conn: impl sqlx::PgExecutor<'_>,
    shop: ShopId,
    route: &str,
    key: &str,
    status: StatusCode,
    body: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let code = code(status);
    sqlx::query!(
        "update idempotency_keys set status_code = $4, response = $5, completed_at = now()
          where shop_id = $1 and route = $2 and key = $3 and completed_at is null",
        shop.0,
        route,
        key,
        code,
        body
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn release(pool: &PgPool, shop: ShopId, route: &str, key: &str) -> Result<(), Problem> {
    sqlx::query!(
        "delete from idempotency_keys where shop_id = $1 and route = $2 and key = $3 and completed_at is null",
        shop.0,
        route,
        key
    )
    .execute(pool)
    .await?;
    Ok(())
}
