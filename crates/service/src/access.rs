//! Who may do what, in every service but auth: a projection of auth's events (memberships,
//! account status, ended sessions) into the service's own schema, read through a short
//! in-memory cache. A change reaches the projection within about a second of auth
//! committing it (outbox, RabbitMQ, this consumer); the instance that applies it forgets
//! the cached answer at once, the others within [`CACHE_TTL`]. No request calls auth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use bus::{Handler, HandlerError, Incoming};
use contracts::auth::{MemberChanged, SessionRevoked, ShopCreated, UserChanged};
use contracts::Event;
use platform::auth::{Access, AccessDenied, AccessSource, ShopRole};
use platform::ids::{ShopId, UserId};
use platform::Problem;

/// How long an instance may answer from memory without looking at the projection again.
pub const CACHE_TTL: Duration = Duration::from_millis(500);

/// How long a request waits for a membership its token named but the projection has not
/// heard of yet (a token issued right after its shop was created, the event in flight).
pub const PENDING_WAIT: Duration = Duration::from_secs(3);

/// The events the projection follows.
pub const BINDINGS: &[&str] = &[ShopCreated::TYPE, MemberChanged::TYPE, SessionRevoked::TYPE, UserChanged::TYPE];

/// The access, and every shop the projection knows of for the user (in any status).
type Answer = (Result<Access, AccessDenied>, Vec<ShopId>);

/// A caller: the user and the session their token belongs to.
type Caller = (UserId, Option<Uuid>);

/// One read of the projection, shared by every request waiting for it (its error as text).
type Load = tokio::sync::OnceCell<Result<Answer, String>>;

/// Reads the projection (with the cache in front).
pub struct ProjectedAccess {
    pool: PgPool,
    cache: Mutex<HashMap<Caller, (Instant, Answer)>>,
    /// The read in progress per caller: see [`ProjectedAccess::load_once`].
    loading: Mutex<HashMap<Caller, Arc<Load>>>,
    reads: AtomicU64,
}

impl ProjectedAccess {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, cache: Mutex::new(HashMap::new()), loading: Mutex::new(HashMap::new()), reads: AtomicU64::new(0) }
    }

    /// How many times the projection was read (a cache miss read once, and each look of a
    /// request waiting for a shop the projection has not heard of yet).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// A cache miss, read once however many requests of the caller miss together: the first
    /// reads, the others wait for that read and take its outcome, an error included (a
    /// thousand tills signed in as one shop owner missed together every time the answer aged
    /// out, and each read the projection: 1.5 statements per checkout at 1,000 connections).
    /// If the request reading is dropped, a waiting one reads instead.
    async fn load_once(&self, key: Caller) -> Result<Answer, Problem> {
        let load = {
            let mut loading = self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if loading.len() > 10_000 {
                // Reads whose every request was dropped before it ended.
                loading.retain(|_, l| Arc::strong_count(l) > 1);
            }
            loading.entry(key).or_default().clone()
        };
        let outcome = load
            .get_or_init(|| async {
                let read = self.load(key.0, key.1).await.map_err(|e| format!("{e:#}"));
                if let Ok(answer) = &read {
                    self.remember(key, answer.clone());
                }
                read
            })
            .await
            .clone();
        // Done: the next miss reads anew (the first to get here takes it out; a later read's
        // entry is not this one's to take).
        let mut loading = self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if loading.get(&key).is_some_and(|l| Arc::ptr_eq(l, &load)) {
            loading.remove(&key);
        }
        drop(loading);
        outcome.map_err(|e| Problem::internal(&anyhow::anyhow!("reading the access projection: {e}")))
    }

    fn cached(&self, key: &Caller) -> Option<Answer> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, a)| a.clone())
    }

    fn remember(&self, key: Caller, answer: Answer) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 50_000 {
                cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            }
            cache.insert(key, (Instant::now(), answer));
        }
    }

    /// Forgets what is cached about `user` (after a change to them was applied here).
    pub fn forget(&self, user: UserId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(u, _), _| *u != user);
        }
    }

    async fn load(&self, user: UserId, session: Option<Uuid>) -> Result<Answer, sqlx::Error> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let known = |rows: &[(ShopId, Option<ShopRole>)]| rows.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        let state = sqlx::query!(
            r#"select (select status from access_users where user_id = $1) as "status?",
                      exists(select 1 from access_revoked_sessions where session_id = $2) as "revoked!""#,
            user.0,
            session
        )
        .fetch_one(&self.pool)
        .await?;
        if state.revoked {
            return Ok((Err(AccessDenied::SessionRevoked), Vec::new()));
        }
        if state.status.as_deref().is_some_and(|s| s != "ACTIVE") {
            return Ok((Err(AccessDenied::AccountDisabled), Vec::new()));
        }
        let rows: Vec<(ShopId, Option<ShopRole>)> =
            sqlx::query!("select shop_id, role, status from access_members where user_id = $1", user.0)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| {
                    let role = match (r.status.as_str(), r.role.as_str()) {
                        ("ACTIVE", "SHOP_OWNER") => Some(ShopRole::ShopOwner),
                        ("ACTIVE", _) => Some(ShopRole::ShopStaff),
                        _ => None,
                    };
                    (ShopId(r.shop_id), role)
                })
                .collect();
        let shops = rows.iter().filter_map(|(s, r)| r.map(|r| (*s, r))).collect();
        Ok((Ok(Access { shops }), known(&rows)))
    }
}

#[async_trait::async_trait]
impl AccessSource for ProjectedAccess {
    async fn access(&self, user: UserId, session: Option<Uuid>, pending: &[ShopId]) -> Result<Access, Problem> {
        let key = (user, session);
        let started = Instant::now();
        // A miss is read once for everyone missing it now; a wait for a pending shop reads
        // the projection anew each round (below), past the cache.
        let mut answer = match self.cached(&key) {
            Some(a) => Some(a),
            None => Some(self.load_once(key).await?),
        };
        let mut pause = Duration::from_millis(25);
        loop {
            let (access, known) = match answer.take() {
                Some(a) => a,
                None => {
                    let a = self.load(user, session).await.map_err(|e| {
                        Problem::internal(&anyhow::Error::new(e).context("reading the access projection"))
                    })?;
                    self.remember(key, a.clone());
                    a
                }
            };
            let waiting = access.is_ok() && pending.iter().any(|shop| !known.contains(shop));
            if !waiting || started.elapsed() >= PENDING_WAIT {
                return access.map_err(Problem::from);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }
}

/// Applies auth's events to the projection, then hands the service's own events to
/// `inner` (a `ShopCreated` goes to both when the service follows it too).
pub struct WithAccess<H> {
    pub access: std::sync::Arc<ProjectedAccess>,
    pub inner: H,
    /// What `inner` is bound to.
    pub inner_bindings: Vec<String>,
}

#[async_trait::async_trait]
impl<H: Handler> Handler for WithAccess<H> {
    /// The access events always; anything else as the wrapped handler judges it.
    fn wants(&self, msg: &Incoming) -> bool {
        BINDINGS.contains(&msg.message_type.as_str()) || self.inner.wants(msg)
    }

    /// The access events go through the inbox (a membership's history must apply once and
    /// in order); the wrapped handler's own events as it judges them.
    fn idempotent(&self, msg: &Incoming) -> bool {
        !BINDINGS.contains(&msg.message_type.as_str()) && self.inner.idempotent(msg)
    }

    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        let changed = match msg.message_type.as_str() {
            ShopCreated::TYPE => {
                let e: ShopCreated = msg.event()?;
                // The owner's membership as the shop was created; the same event is re-sent
                // on every brand update, so it only ever creates the row and never touches
                // one (a removed or demoted first owner stays so).
                sqlx::query!(
                    "insert into access_members (shop_id, user_id, role, status, changed_at)
                     values ($1, $2, 'SHOP_OWNER', 'ACTIVE', $3) on conflict (user_id, shop_id) do nothing",
                    e.shop.id,
                    e.owner_id,
                    e.created_at
                )
                .execute(&mut *conn)
                .await?;
                Some(e.owner_id)
            }
            MemberChanged::TYPE => {
                let e: MemberChanged = msg.event()?;
                let role = e.role.as_deref().unwrap_or("SHOP_STAFF");
                upsert_member(conn, e.shop_id, e.user_id, role, &e.status, e.changed_at).await?;
                Some(e.user_id)
            }
            SessionRevoked::TYPE => {
                let e: SessionRevoked = msg.event()?;
                sqlx::query!(
                    "insert into access_revoked_sessions (session_id, user_id, revoked_at) values ($1, $2, $3)
                     on conflict (session_id) do nothing",
                    e.session_id,
                    e.user_id,
                    e.revoked_at
                )
                .execute(&mut *conn)
                .await?;
                Some(e.user_id)
            }
            UserChanged::TYPE => {
                let e: UserChanged = msg.event()?;
                sqlx::query!(
                    "insert into access_users (user_id, status, changed_at) values ($1, $2, $3)
                     on conflict (user_id) do update set status = excluded.status, changed_at = excluded.changed_at
                      where access_users.changed_at <= excluded.changed_at",
                    e.user_id,
                    e.status,
                    e.changed_at
                )
                .execute(&mut *conn)
                .await?;
                Some(e.user_id)
            }
            _ => None,
        };
        if let Some(user) = changed {
            // Forgotten before the commit: a request in between may cache the old answer
            // again, for at most CACHE_TTL.
            self.access.forget(UserId(user));
        }
        if self.inner_bindings.iter().any(|b| topic_matches(b, &msg.message_type)) {
            self.inner.handle(conn, msg).await?;
        }
        Ok(())
    }
}

async fn upsert_member(
    conn: &mut PgConnection,
    shop: Uuid,
    user: Uuid,
    role: &str,
    status: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), HandlerError> {
    if !matches!(role, "SHOP_OWNER" | "SHOP_STAFF") || !matches!(status, "ACTIVE" | "SUSPENDED" | "REMOVED") {
        return Err(HandlerError::Permanent(anyhow::anyhow!("unknown membership role {role:?} or status {status:?}")));
    }
    sqlx::query!(
        "insert into access_members (shop_id, user_id, role, status, changed_at) values ($1, $2, $3, $4, $5)
         on conflict (user_id, shop_id) do update
            set role = excluded.role, status = excluded.status, changed_at = excluded.changed_at
          where access_members.changed_at <= excluded.changed_at",
        shop,
        user,
        role,
        status,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// AMQP topic matching: `*` is one word, `#` zero or more.
fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn topics_match_as_rabbitmq_does() {
        assert!(topic_matches("auth.shop.created", "auth.shop.created"));
        assert!(topic_matches("auth.#", "auth.shop.created"));
        assert!(topic_matches("#", "a"));
        assert!(topic_matches("auth.*.created", "auth.shop.created"));
        assert!(!topic_matches("auth.*", "auth.shop.created"));
        assert!(!topic_matches("sales.order.completed", "auth.shop.created"));
    }
}
