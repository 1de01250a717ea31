//! Rate limits for sign-in-type endpoints, per key (an e-mail, an IP) in a fixed window,
//! counted in PostgreSQL (`auth.rate_limits`) so that every auth instance spends one budget:
//! a second instance must not double an attacker's. nginx limits per IP in front of every
//! instance; these add the per-e-mail brake, which a per-IP limit cannot give against a
//! distributed guesser.
//!
//! One statement per hit: an upsert of the key's row that starts a new window when the old
//! one is over and counts the hit otherwise (at most one past the limit, so a refused
//! attacker does not push the window's end). Rows of finished windows are swept by
//! [`RateLimiter::sweep`], which the service runs once per window. Why PostgreSQL and not
//! Redis: auth already has it on every request path that is limited (sign-in reads the
//! user), these paths run a few times a second, not thousands, and one fewer engine to run.

use std::time::Duration;

use sha2::Digest;
use sqlx::PgPool;

use crate::error::AuthError;

pub struct RateLimiter {
    pool: PgPool,
    window: Duration,
}

impl RateLimiter {
    pub fn new(pool: PgPool, window: Duration) -> Self {
        Self { pool, window }
    }

    /// Counts a hit on `key`; [`AuthError::RateLimited`] (with the seconds until the window
    /// ends) once `limit` hits fall in the window.
    pub async fn hit(&self, key: &str, limit: u32) -> Result<(), AuthError> {
        // Stored as a digest: the key holds what a caller typed (an e-mail, unvalidated at
        // this point), which must neither sit in the table in clear nor outgrow its index.
        let key = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        let window = self.window.as_secs_f64();
        let limit = i32::try_from(limit).unwrap_or(i32::MAX - 1);
        let row = sqlx::query!(
            r#"insert into auth.rate_limits as r (key, window_start, hits) values ($1, now(), 1)
               on conflict (key) do update set
                   window_start = case when r.window_start <= now() - make_interval(secs => $2) then now()
                                       else r.window_start end,
                   hits = case when r.window_start <= now() - make_interval(secs => $2) then 1
                               else least(r.hits + 1, $3 + 1) end
               returning hits as "hits!",
                   extract(epoch from window_start + make_interval(secs => $2) - now())::float8 as "left!""#,
            &key,
            window,
            limit
        )
        .fetch_one(&self.pool)
        .await?;
        if row.hits > limit {
            // Whole seconds, at least one: what `Retry-After` says.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0 < left <= window")]
            let left = row.left.ceil().max(1.0) as u64;
            return Err(AuthError::RateLimited(left));
        }
        Ok(())
    }

    /// Deletes the rows of windows that are over. Answers how many went.
    pub async fn sweep(&self) -> sqlx::Result<u64> {
        let window = self.window.as_secs_f64();
        Ok(sqlx::query!("delete from auth.rate_limits where window_start <= now() - make_interval(secs => $1)", window)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Sweeps once per window until `stop`.
    pub async fn sweep_until(self: std::sync::Arc<Self>, stop: platform::shutdown::CancellationToken) {
        let mut every = tokio::time::interval(self.window.max(Duration::from_secs(1)));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "sweeping rate-limit windows failed; next window tries again");
                    }
                }
            }
        }
    }
}
