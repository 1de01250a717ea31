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

/// A wallet change ready to write ([`Wallets::stage_state`]): the state to hand back with the
/// turn once the transaction commits, the entries, and the state's compare-and-set.
pub struct Staged {
    pub after: Cached,
    pub entries: PendingEntries,
    /// None when nothing changes.
    pub swap: Option<Swap>,
}

/// A wallet state's compare-and-set: the new sealed state and version replace the ones the
/// turn read, only if the row still holds exactly those (another instance may have moved it).
#[derive(Debug, Clone)]
pub struct Swap {
    pub wallet_id: Uuid,
    pub old_version: i64,
    pub old_sealed: Vec<u8>,
    pub new_version: i64,
    pub new_sealed: Vec<u8>,
}

impl Swap {
    /// The compare-and-set as a statement of its own.
    pub async fn run(&self, tx: &mut PgConnection) -> Result<(), WalletError> {
        let updated = sqlx::query!(
            "update sales.wallets set sealed = $3, version = $4 where wallet_id = $1 and version = $2 and sealed = $5",
            self.wallet_id,
            self.old_version,
            self.new_sealed,
            self.new_version,
            self.old_sealed
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(WalletError::Conflict);
        }
        Ok(())
    }
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

/// What a caller read of a wallet's row before asking for its turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not read: the turn reads it.
    Nothing,
    /// Read: the customer has no wallet at the shop.
    Absent,
    Row {
        version: i64,
        sealed: Vec<u8>,
    },
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

/// How many times a change that lost its wallet's compare-and-set is tried in all. Each
/// loss means the other instance's change won (it is progress), so many losses in a row
/// only happen under a crowd of changes of one wallet on both instances at once.
pub const ATTEMPTS: u32 = 30;

/// Runs `attempt` (told whether it is the first) again when it failed with a conflict on a
/// wallet (`is_conflict`): another instance changed the wallet between this one's read and
/// its write. Each instance's actor serialises its own changes, so a conflict is between
/// instances only and the next attempt, behind this instance's queue, reads the wallet
/// anew. After [`ATTEMPTS`] the conflict is answered (409 `WALLET_CONFLICT`).
pub async fn until_its_turn<T, E, F: std::future::Future<Output = Result<T, E>>>(
    is_conflict: impl Fn(&E) -> bool,
    mut attempt: impl FnMut(bool) -> F,
) -> Result<T, E> {
    let mut n = 1;
    loop {
        match attempt(n == 1).await {
            Err(e) if is_conflict(&e) && n < ATTEMPTS => {
                tracing::debug!(attempt = n, "a wallet changed under this change elsewhere; again");
                // Growing, capped and jittered, so the two instances' next tries drift apart.
                let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 10);
                tokio::time::sleep(Duration::from_millis(u64::from(n.min(10)) * 2 + jitter)).await;
                n += 1;
            }
            outcome => return outcome,
        }
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
        self.turn_seen(shop_id, customer_id, Seen::Nothing).await
    }

    /// [`Wallets::turn`] when the caller already read the wallet's row (in a read it makes
    /// anyway, before the turn): that row is what the cache is checked against.
    pub async fn turn_seen(&self, shop_id: Uuid, customer_id: Uuid, seen: Seen) -> Result<Turn, WalletError> {
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
        // instance, or a hand on the database, may have changed it): one cheap read, unless
        // the caller made it. A row seen before the turn that a local change has moved on
        // since only costs a reload; a change elsewhere after the read is refused by the
        // write's compare-and-set, as it would be after this read.
        let current = match seen {
            Seen::Nothing => sqlx::query!(
                "select version, sealed from sales.wallets where shop_id = $1 and customer_id = $2",
                shop_id,
                customer_id
            )
            .fetch_optional(&self.pool)
            .await?
            .map(|r| (r.version, r.sealed)),
            Seen::Absent => None,
            Seen::Row { version, sealed } => Some((version, sealed)),
        };
        let fresh = match (&turn.state, &current) {
            (Cached::Present(s), Some((version, sealed))) => s.version == *version && s.sealed == *sealed,
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
        // The state and its entries in one statement, so in one snapshot: read apart, a
        // change committed in between by another instance (whose writes this process's
        // actor does not order) looks like an altered wallet.
        let rows = sqlx::query!(
            r#"select w.wallet_id, w.sealed, w.version, e.entry_id as "entry_id?", e.version as "entry_version?",
                      e.sealed as "entry_sealed?"
                 from sales.wallets w left join sales.wallet_entries e on e.wallet_id = w.wallet_id
                where w.shop_id = $1 and w.customer_id = $2
                order by e.version"#,
            shop_id,
            customer_id
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Cached::Absent);
        };
        struct Head {
            wallet_id: Uuid,
            version: i64,
            sealed: Vec<u8>,
        }
        let row = Head { wallet_id: first.wallet_id, version: first.version, sealed: first.sealed.clone() };
        let binding = Binding { wallet_id: row.wallet_id, entry_id: Uuid::nil(), version: row.version };
        let (balance, points) = crypto::open(key, binding, &row.sealed).inspect_err(|_| tamper_alarm(row.wallet_id))?;
        struct EntryRow {
            entry_id: Uuid,
            version: i64,
            sealed: Vec<u8>,
        }
        let entries: Vec<EntryRow> = rows
            .into_iter()
            .filter_map(|r| match (r.entry_id, r.entry_version, r.entry_sealed) {
                (Some(entry_id), Some(version), Some(sealed)) => Some(EntryRow { entry_id, version, sealed }),
                _ => None,
            })
            .collect();
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
        let staged = self.stage_state(tx, owner, turn, changes).await?;
        if let Some(swap) = &staged.swap {
            swap.run(tx).await?;
        }
        staged.entries.insert(tx, order_id, actor_id).await?;
        Ok(staged.after)
    }

    /// [`Wallets::write`]'s sealing without its writes: the caller runs the state's
    /// compare-and-set inside a statement of its own ([`Staged::swap`]; the checkout's
    /// order-number statement does), refusing the write with [`WalletError::Conflict`] when it
    /// matched no row, and inserts the entries later in the same transaction (after the order
    /// they point at). A wallet seen absent is created here (its first change).
    pub async fn stage_state(
        &self,
        tx: &mut PgConnection,
        owner: Owner,
        turn: &Turn,
        changes: &[Change],
    ) -> Result<Staged, WalletError> {
        let Owner { shop_id, customer_id } = owner;
        if changes.is_empty() {
            return Ok(Staged { after: turn.state.clone(), entries: PendingEntries::default(), swap: None });
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
        let swap = Swap {
            wallet_id: state.wallet_id,
            old_version,
            old_sealed: std::mem::replace(&mut state.sealed, state_sealed.clone()),
            new_version: state.version,
            new_sealed: state_sealed,
        };
        Ok(Staged { after: Cached::Present(state), entries, swap: Some(swap) })
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

/// [`PendingEntries`] as the columns of one insert, for a statement that writes them along
/// with other rows (the sale's details).
pub struct EntryColumns<'a> {
    pub wallet_id: Option<Uuid>,
    pub ids: &'a [Uuid],
    pub versions: &'a [i64],
    pub kinds: &'a [String],
    pub methods: &'a [Option<String>],
    pub sealed: &'a [Vec<u8>],
}

impl PendingEntries {
    pub fn columns(&self) -> EntryColumns<'_> {
        EntryColumns {
            wallet_id: (!self.ids.is_empty()).then_some(self.wallet_id),
            ids: &self.ids,
            versions: &self.versions,
            kinds: &self.kinds,
            methods: &self.methods,
            sealed: &self.sealed,
        }
    }

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
