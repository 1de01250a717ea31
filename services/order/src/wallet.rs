//! Customers' wallets at each shop: balance (store credit, or a due when negative) and
//! loyalty points, sealed under the shop's data key ([`keys`], [`crypto`]).
//!
//! One ractor actor per wallet serialises its changes: a change takes the wallet's *turn*
//! (the actor hands out the cached state and waits until the change reports back), runs its
//! own transaction, and returns the new state. The database cannot check an encrypted
//! balance, so the actor is what keeps two debits from both spending the same money; the
//! `version` compare-and-set is the net under it when several instances serve one shop.
//!
//! Loading a wallet checks it whole: its state opens under its id and version, its entries
//! open under theirs, their versions run 1..=version and their amounts add up to the
//! balance. A ciphertext swapped between wallets or rows, or an older state restored, fails
//! there, and nothing is booked on it.

pub mod crypto;
pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{oneshot, Mutex};
use uuid::Uuid;

use crypto::{Binding, Tampered};
use keys::KeyRing;

/// A wallet's plaintext state, held only in memory, with the sealed row it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletState {
    pub wallet_id: Uuid,
    pub version: i64,
    pub balance: i64,
    pub points: i64,
    sealed: Vec<u8>,
}

/// What the actor knows of its wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Not loaded, or a change failed part-way: read it again.
    Unknown,
    /// No wallet yet (balance 0).
    Absent,
    Present(WalletState),
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("the wallet failed its integrity check")]
    Tampered,
    #[error("the wallet changed on another instance; try again")]
    Conflict,
    #[error("the wallet is busy; try again")]
    Busy,
    #[error("amount overflows")]
    Overflow,
    /// The shop's wallet key could not be had (KMS did not answer); nothing was changed.
    #[error("wallets are unavailable for a moment (their keys could not be read); try again")]
    KeysUnavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A shop's data key could not be had: logged here, answered as a retryable 503.
fn keys_unavailable(e: anyhow::Error) -> WalletError {
    tracing::warn!(error = %format!("{e:#}"), "wallet keys unavailable");
    WalletError::KeysUnavailable
}

impl From<Tampered> for WalletError {
    fn from(_: Tampered) -> Self {
        WalletError::Tampered
    }
}

impl From<sqlx::Error> for WalletError {
    fn from(e: sqlx::Error) -> Self {
        WalletError::Internal(e.into())
    }
}

/// One change of a wallet: an amount (minor units, signed) and points (signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// SALE_PAYMENT, CHANGE, DUE, DUE_PAYMENT, TOP_UP, REFUND, LOYALTY_EARNED, LOYALTY_REVERSED.
    pub kind: &'static str,
    pub method: Option<&'static str>,
    pub amount: i64,
    pub points: i64,
}

/// A wallet's turn: its state now; `finish` with the state after the change. Dropped
/// without finishing (an error, a cancelled request), the actor forgets the state and the
/// next change reads it again.
pub struct Turn {
    pub state: Cached,
    /// The shop's data key, taken with the turn so that writing never waits on KMS (or on
    /// a database connection for the wrapped key) inside the caller's transaction.
    key: Arc<crypto::DataKey>,
    done: Option<oneshot::Sender<Cached>>,
}

impl Turn {
    pub fn finish(mut self, state: Cached) {
        if let Some(done) = self.done.take() {
            let _ = done.send(state);
        }
    }
}

/// How long a change may keep a wallet's turn; after it the actor moves on, forgetting the
/// state (the version check then refuses the late change's write).
const TURN_LIMIT: Duration = Duration::from_secs(30);
/// How long a change waits for its turn.
const TURN_WAIT: Duration = Duration::from_secs(30);

pub enum WalletMsg {
    Take(Arc<crypto::DataKey>, RpcReplyPort<Turn>),
}

struct WalletActor;

impl Actor for WalletActor {
    type Msg = WalletMsg;
    type State = Cached;
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<WalletMsg>, _: ()) -> Result<Cached, ActorProcessingErr> {
        Ok(Cached::Unknown)
    }

    async fn handle(
        &self,
        _me: ActorRef<WalletMsg>,
        msg: WalletMsg,
        state: &mut Cached,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WalletMsg::Take(key, reply) => {
                let (tx, rx) = oneshot::channel();
                let turn = Turn { state: std::mem::replace(state, Cached::Unknown), key, done: Some(tx) };
                if reply.send(turn).is_err() {
                    return Ok(()); // the caller gave up waiting
                }
                *state = match tokio::time::timeout(TURN_LIMIT, rx).await {
                    Ok(Ok(after)) => after,
                    _ => Cached::Unknown,
                };
            }
        }
        Ok(())
    }
}

/// The live actors, by (shop, customer).
type ActorMap = HashMap<(Uuid, Uuid), ActorRef<WalletMsg>>;

/// Who and what a wallet change belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub shop_id: Uuid,
    pub customer_id: Uuid,
}

#[derive(Clone)]
pub struct Wallets {
    pub keys: KeyRing,
    pool: PgPool,
    actors: Arc<Mutex<ActorMap>>,
}

impl Wallets {
    pub fn new(keys: KeyRing, pool: PgPool) -> Self {
        Self { keys, pool, actors: Arc::default() }
    }

    /// Waits for the wallet's turn (its state loaded and checked).
    pub async fn turn(&self, shop_id: Uuid, customer_id: Uuid) -> Result<Turn, WalletError> {
        let actor = {
            let mut actors = self.actors.lock().await;
            match actors.get(&(shop_id, customer_id)) {
                Some(a) if a.get_status() == ractor::ActorStatus::Running => a.clone(),
                _ => {
                    let (a, _) = Actor::spawn(None, WalletActor, ()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    actors.insert((shop_id, customer_id), a.clone());
                    a
                }
            }
        };
        let key = self.keys.key(shop_id).await.map_err(keys_unavailable)?;
        let mut turn = match actor.call(|reply| WalletMsg::Take(key, reply), Some(TURN_WAIT)).await {
            Ok(ractor::rpc::CallResult::Success(t)) => t,
            Ok(_) => return Err(WalletError::Busy),
            Err(e) => return Err(anyhow::anyhow!("wallet actor: {e}").into()),
        };
        // The cached state is used only while the row is still the one it came from (another
        // instance, or a hand on the database, may have changed it): one cheap read.
        let current = sqlx::query!(
            "select version, sealed from sales.wallets where shop_id = $1 and customer_id = $2",
            shop_id,
            customer_id
        )
        .fetch_optional(&self.pool)
        .await?;
        let fresh = match (&turn.state, &current) {
            (Cached::Present(s), Some(row)) => s.version == row.version && s.sealed == row.sealed,
            (Cached::Absent, None) => true,
            _ => false,
        };
        if !fresh {
            turn.state = self.load_with(&turn.key, shop_id, customer_id).await?;
        }
        Ok(turn)
    }

    /// Every wallet of the shop with its balance and points, for the shop's reports (customer
    /// dues). Each state is opened under its own row's binding, so a row altered or moved by
    /// hand fails its check; the entry chain is not re-added here (a single wallet's read does).
    pub async fn balances(&self, shop_id: Uuid) -> Result<Vec<(Uuid, i64, i64)>, WalletError> {
        let key = self.keys.key(shop_id).await.map_err(keys_unavailable)?;
        let rows = sqlx::query!(
            "select wallet_id, customer_id, sealed, version from sales.wallets where shop_id = $1",
            shop_id
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let binding = Binding { wallet_id: row.wallet_id, entry_id: Uuid::nil(), version: row.version };
            let (balance, points) =
                crypto::open(&key, binding, &row.sealed).inspect_err(|_| tamper_alarm(row.wallet_id))?;
            out.push((row.customer_id, balance, points));
        }
        Ok(out)
    }

    /// Reads and checks a wallet (see the module docs).
    pub async fn load(&self, shop_id: Uuid, customer_id: Uuid) -> Result<Cached, WalletError> {
        let key = self.keys.key(shop_id).await.map_err(keys_unavailable)?;
        self.load_with(&key, shop_id, customer_id).await
    }

    async fn load_with(&self, key: &crypto::DataKey, shop_id: Uuid, customer_id: Uuid) -> Result<Cached, WalletError> {
        let Some(row) = sqlx::query!(
            "select wallet_id, sealed, version from sales.wallets where shop_id = $1 and customer_id = $2",
            shop_id,
            customer_id
        )
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(Cached::Absent);
        };
        let binding = Binding { wallet_id: row.wallet_id, entry_id: Uuid::nil(), version: row.version };
        let (balance, points) = crypto::open(key, binding, &row.sealed).inspect_err(|_| tamper_alarm(row.wallet_id))?;
        let entries = sqlx::query!(
            "select entry_id, version, sealed from sales.wallet_entries where wallet_id = $1 order by version",
            row.wallet_id
        )
        .fetch_all(&self.pool)
        .await?;
        let (mut sum, mut sum_points) = (0i64, 0i64);
        for (i, e) in entries.iter().enumerate() {
            let expected = i64::try_from(i).map_err(|_| WalletError::Overflow)? + 1;
            let binding = Binding { wallet_id: row.wallet_id, entry_id: e.entry_id, version: e.version };
            let (amount, pts) = crypto::open(key, binding, &e.sealed).inspect_err(|_| tamper_alarm(row.wallet_id))?;
            if e.version != expected {
                tamper_alarm(row.wallet_id);
                return Err(WalletError::Tampered);
            }
            sum = sum.checked_add(amount).ok_or(WalletError::Overflow)?;
            sum_points = sum_points.checked_add(pts).ok_or(WalletError::Overflow)?;
        }
        let count = i64::try_from(entries.len()).map_err(|_| WalletError::Overflow)?;
        if count != row.version || sum != balance || sum_points != points {
            tamper_alarm(row.wallet_id);
            return Err(WalletError::Tampered);
        }
        Ok(Cached::Present(WalletState {
            wallet_id: row.wallet_id,
            version: row.version,
            balance,
            points,
            sealed: row.sealed,
        }))
    }

    /// Writes `changes` in the caller's transaction: entries sealed under their own id and
    /// version, the state under the new version, compare-and-set on the old one. Answers the
    /// state to hand back with the turn once the transaction commits.
    pub async fn write(
        &self,
        tx: &mut PgConnection,
        owner: Owner,
        turn: &Turn,
        changes: &[Change],
        order_id: Option<Uuid>,
        actor_id: Option<Uuid>,
    ) -> Result<Cached, WalletError> {
        let (after, entries) = self.write_state(tx, owner, turn, changes).await?;
        entries.insert(tx, order_id, actor_id).await?;
        Ok(after)
    }

    /// [`Wallets::write`] in two steps: the state now (its compare-and-set), the entries
    /// later in the same transaction (after the order they point at is inserted).
    pub async fn write_state(
        &self,
        tx: &mut PgConnection,
        owner: Owner,
        turn: &Turn,
        changes: &[Change],
    ) -> Result<(Cached, PendingEntries), WalletError> {
        let Owner { shop_id, customer_id } = owner;
        if changes.is_empty() {
            return Ok((turn.state.clone(), PendingEntries::default()));
        }
        let key = &*turn.key;
        let mut state = match &turn.state {
            Cached::Present(s) => s.clone(),
            Cached::Absent => {
                let wallet_id = Uuid::now_v7();
                let sealed = crypto::seal(key, Binding { wallet_id, entry_id: Uuid::nil(), version: 0 }, 0, 0);
                let created = sqlx::query!(
                    "insert into sales.wallets (wallet_id, shop_id, customer_id, sealed, version) values ($1, $2, $3, $4, 0)
                     on conflict (shop_id, customer_id) do nothing",
                    wallet_id,
                    shop_id,
                    customer_id,
                    sealed
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if created == 0 {
                    return Err(WalletError::Conflict);
                }
                WalletState { wallet_id, version: 0, balance: 0, points: 0, sealed }
            }
            Cached::Unknown => return Err(anyhow::anyhow!("a wallet written without being read").into()),
        };
        let old_version = state.version;
        let mut entries = PendingEntries { wallet_id: state.wallet_id, shop_id, ..PendingEntries::default() };
        for c in changes {
            state.version += 1;
            state.balance = state.balance.checked_add(c.amount).ok_or(WalletError::Overflow)?;
            state.points = state.points.checked_add(c.points).ok_or(WalletError::Overflow)?;
            let entry_id = Uuid::now_v7();
            let binding = Binding { wallet_id: state.wallet_id, entry_id, version: state.version };
            entries.ids.push(entry_id);
            entries.versions.push(state.version);
            entries.kinds.push(c.kind.to_owned());
            entries.methods.push(c.method.map(str::to_owned));
            entries.sealed.push(crypto::seal(key, binding, c.amount, c.points));
        }
        let state_sealed = crypto::seal(
            key,
            Binding { wallet_id: state.wallet_id, entry_id: Uuid::nil(), version: state.version },
            state.balance,
            state.points,
        );
        let updated = sqlx::query!(
            "update sales.wallets set sealed = $3, version = $4 where wallet_id = $1 and version = $2 and sealed = $5",
            state.wallet_id,
            old_version,
            state_sealed,
            state.version,
            state.sealed
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(WalletError::Conflict);
        }
        state.sealed = state_sealed;
        Ok((Cached::Present(state), entries))
    }

    /// A wallet's entries, opened (newest first): (entry id, kind, method, order, amount, points, when).
    pub async fn entries(&self, shop_id: Uuid, wallet_id: Uuid, limit: i64) -> Result<Vec<Entry>, WalletError> {
        let key = self.keys.key(shop_id).await.map_err(keys_unavailable)?;
        let rows = sqlx::query!(
            "select entry_id, version, kind, method, order_id, sealed, created_at from sales.wallet_entries
              where wallet_id = $1 order by version desc limit $2",
            wallet_id,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let (amount, points) =
                    crypto::open(&key, Binding { wallet_id, entry_id: r.entry_id, version: r.version }, &r.sealed)?;
                Ok(Entry {
                    entry_id: r.entry_id,
                    kind: r.kind,
                    method: r.method,
                    order_id: r.order_id,
                    amount,
                    points,
                    created_at: r.created_at,
                })
            })
            .collect()
    }
}

/// A wallet change's sealed entries, to insert in the transaction that changed its state.
#[derive(Debug, Default)]
pub struct PendingEntries {
    wallet_id: Uuid,
    shop_id: Uuid,
    ids: Vec<Uuid>,
    versions: Vec<i64>,
    kinds: Vec<String>,
    methods: Vec<Option<String>>,
    sealed: Vec<Vec<u8>>,
}

impl PendingEntries {
    pub async fn insert(
        self,
        tx: &mut PgConnection,
        order_id: Option<Uuid>,
        actor_id: Option<Uuid>,
    ) -> sqlx::Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "insert into sales.wallet_entries (entry_id, wallet_id, shop_id, version, kind, method, order_id, sealed, actor_id)
             select id, $1, $2, version, kind, method, $3, sealed, $4
               from unnest($5::uuid[], $6::int8[], $7::text[], $8::text[], $9::bytea[]) as t(id, version, kind, method, sealed)",
            self.wallet_id,
            self.shop_id,
            order_id,
            actor_id,
            &self.ids,
            &self.versions,
            &self.kinds,
            &self.methods as &[Option<String>],
            &self.sealed
        )
        .execute(tx)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub entry_id: Uuid,
    pub kind: String,
    pub method: Option<String>,
    pub order_id: Option<Uuid>,
    pub amount: i64,
    pub points: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn tamper_alarm(wallet_id: Uuid) {
    tracing::error!(%wallet_id, "a wallet failed its integrity check: its rows were changed outside the service");
}
