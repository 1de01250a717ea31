//! Stock as several instances: shops are spread over `shards` RPC queues (`stock.rpc.<k>`,
//! `contracts::routing::shard_of`), each consumed with RabbitMQ's single-active-consumer, so
//! exactly one instance owns a shard at a time and the broker hands it to another when the
//! owner's channel closes. Only the owner runs actors for the shard's products: the order
//! service sends to the shard's queue, and an instance asked over HTTP (or by an event) for
//! a shard it does not own forwards the operation over that queue (`stock.forward`).
//!
//! An instance knows it owns a shard once a delivery reached it there (the broker announces
//! nothing else); until then it forwards, and the first forward tells it. When a shard's
//! consumer ends, the instance stops its actors and forgets what it remembered: the next
//! owner rebuilds from the rows, as after a restart, and the database constraints hold the
//! invariants during the moments two instances may both believe they own it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use bus::{MessageMeta, RpcClient, RpcError};
use platform::ids::{ProductId, ShopId};

use crate::domain::{ItemId, MovementKind, ReserveCommand};
use crate::reservations::{Adjustment, NewUnit, StockError};

/// The message type of an operation one stock instance forwards to a shard's owner.
pub const FORWARD: &str = "stock.forward";

/// Where an operation runs.
pub enum Route {
    /// This instance owns the shard (or runs unsharded).
    Here,
    /// Another instance does: forward over this queue.
    There(String),
}

pub struct Shards {
    count: u16,
    prefix: String,
    active: Vec<watch::Receiver<bool>>,
    /// Each shard server lets its queue go when notified (see [`Shards::balance`]).
    step_downs: Vec<Arc<Notify>>,
    rpc: RpcClient,
    timeout: Duration,
    pool: PgPool,
    /// Products never change shop: remembered for good (bounded).
    shops: Mutex<HashMap<ProductId, ShopId>>,
}

impl Shards {
    /// `count` shards under `prefix`; gives the senders the shard servers set (one per shard,
    /// in order).
    pub fn new(
        count: u16,
        prefix: &str,
        rpc: RpcClient,
        timeout: Duration,
        pool: PgPool,
    ) -> (Self, Vec<watch::Sender<bool>>) {
        let count = count.max(1);
        let (senders, active): (Vec<_>, Vec<_>) = (0..count).map(|_| watch::channel(false)).unzip();
        let step_downs = (0..count).map(|_| Arc::new(Notify::new())).collect();
        let shards =
            Self { count, prefix: prefix.to_owned(), active, step_downs, rpc, timeout, pool, shops: Mutex::default() };
        (shards, senders)
    }

    /// What tells shard `k`'s server to let its queue go.
    pub fn step_down_signal(&self, k: u16) -> Arc<Notify> {
        self.step_downs[usize::from(k)].clone()
    }

    /// Spreads the shards over the instances that serve them (every instance consumes every
    /// shard queue, so `consumers` is how many there are): an instance owning more than its
    /// share, `ceil(shards / consumers)`, lets one go per round, the highest it owns. Answers
    /// that shard; [`Shards::step_down`] lets it go.
    pub fn over_share(&self, consumers: u32) -> Option<u16> {
        let consumers = u16::try_from(consumers.max(1)).unwrap_or(u16::MAX);
        let share = self.count.div_ceil(consumers);
        let owned: Vec<u16> = (0..self.count).filter(|&k| *self.active[usize::from(k)].borrow()).collect();
        if owned.len() <= usize::from(share) {
            return None;
        }
        owned.last().copied()
    }

    /// Lets shard `k` go: the broker hands it to the next consumer in line, and this instance
    /// queues up again behind. Only a server serving now hears it (no permit is kept for a
    /// later session).
    pub fn step_down(&self, k: u16) {
        self.step_downs[usize::from(k)].notify_waiters();
    }

    /// Every shard's queue, in order.
    pub fn queues(&self) -> Vec<String> {
        (0..self.count).map(|k| contracts::routing::shard_queue(&self.prefix, k)).collect()
    }

    /// How many shards this instance owns now.
    pub fn owned(&self) -> usize {
        self.active.iter().filter(|a| *a.borrow()).count()
    }

    pub fn route(&self, shop: ShopId) -> Route {
        let k = contracts::routing::shard_of(shop.0, self.count);
        if *self.active[usize::from(k)].borrow() {
            Route::Here
        } else {
            Route::There(contracts::routing::shard_queue(&self.prefix, k))
        }
    }

    /// The route of `product`'s shop; a product not found runs here (and is refused here).
    pub async fn route_product(&self, product: ProductId) -> Result<Route, StockError> {
        let known = self.shops.lock().unwrap_or_else(PoisonError::into_inner).get(&product).copied();
        let shop = match known {
            Some(shop) => shop,
            None => {
                let shop = sqlx::query_scalar!("select shop_id from stock.products where product_id = $1", product.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| crate::reservations::internal("finding a product's shard", e))?;
                let Some(shop) = shop.map(ShopId) else { return Ok(Route::Here) };
                let mut shops = self.shops.lock().unwrap_or_else(PoisonError::into_inner);
                if shops.len() > 200_000 {
                    shops.clear();
                }
                shops.insert(product, shop);
                shop
            }
        };
        Ok(self.route(shop))
    }

    /// Runs `op` on the owner of `queue`'s shard and answers what it answered. No answer in
    /// time is `Busy` (retryable): the owner may have done it, and every operation is safe to
    /// repeat (reservations by id, adjustments by source id) or only reloads.
    pub async fn forward<T: DeserializeOwned>(
        &self,
        queue: &str,
        op: &Op,
        meta: &MessageMeta,
    ) -> Result<T, StockError> {
        let answered = match self.rpc.call_to(queue, op, meta, self.timeout).await {
            Ok(answered) => answered,
            Err(RpcError::Timeout(_) | RpcError::Broker(_)) => {
                tracing::warn!(%queue, "the shard's owner did not answer a forwarded operation");
                return Err(StockError::Busy);
            }
            // An owner of another version (a rolling deploy) that does not know the
            // operation yet: retryable, not a failure of ours.
            Err(RpcError::Fault(f)) if f.code == "UNKNOWN_REQUEST" || f.code == "MALFORMED_REQUEST" => {
                tracing::warn!(%queue, fault = %f, "the shard's owner did not understand a forwarded operation");
                return Err(StockError::Busy);
            }
            Err(e) => return Err(crate::reservations::internal("forwarding to a shard", e)),
        };
        serde_json::from_value(answered?).map_err(|e| crate::reservations::internal("decoding a forwarded answer", e))
    }

    /// Pings every shard once (every `Config::shard_ping_every`); failures are for the next round.
    /// A ping unanswered within `timeout` (say, sent before the queue's consumers were up)
    /// is let go: the next round pings again.
    pub async fn ping_all(&self, timeout: Duration) {
        let pings = self.queues().into_iter().map(|queue| async move {
            let _ = self.rpc.call_to::<Op>(&queue, &Op::Ping, &MessageMeta::default(), timeout).await;
        });
        futures::future::join_all(pings).await;
    }

    /// Whether this instance owns `shop`'s shard (as far as it knows).
    pub fn owns(&self, shop: ShopId) -> bool {
        matches!(self.route(shop), Route::Here)
    }

    /// The shard `shop` belongs to.
    pub fn shard_of(&self, shop: ShopId) -> u16 {
        contracts::routing::shard_of(shop.0, self.count)
    }

    /// This instance's shards gained and lost from now on.
    pub fn changes(&self) -> Changes {
        let mut watching = self.active.clone();
        for a in &mut watching {
            a.borrow_and_update();
        }
        Changes { watching }
    }
}

/// A shard this instance started or stopped owning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Gained(u16),
    Lost(u16),
}

/// The shards' changes one at a time (kept across waits, so none is missed unless a shard
/// is lost and gained again before the watcher wakes: then it reads as gained).
pub struct Changes {
    watching: Vec<watch::Receiver<bool>>,
}

impl Changes {
    pub async fn next(&mut self) -> Change {
        let changes = self.watching.iter_mut().enumerate().map(|(k, a)| {
            Box::pin(async move {
                if a.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                (k, *a.borrow_and_update())
            })
        });
        let ((k, owned), _, _) = futures::future::select_all(changes).await;
        let k = u16::try_from(k).unwrap_or(u16::MAX);
        if owned {
            Change::Gained(k)
        } else {
            Change::Lost(k)
        }
    }
}

/// An operation forwarded to a shard's owner (`stock.forward`). The request context travels
/// in the message's headers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Reserve(ReserveCommand),
    Commit {
        reservation_id: Uuid,
        order_id: Option<Uuid>,
    },
    Release {
        reservation_id: Uuid,
    },
    Adjust {
        product_id: Uuid,
        change: WireAdjustment,
    },
    AddUnit {
        product_id: Uuid,
        item_id: Uuid,
        barcode: String,
        price_minor: i64,
        warranty_months: Option<i32>,
    },
    RemoveUnit {
        product_id: Uuid,
        item_id: Uuid,
        reason: String,
        actor_id: Option<Uuid>,
    },
    ReturnUnit {
        product_id: Uuid,
        item_id: Uuid,
        return_id: Uuid,
    },
    Reload {
        product_id: Uuid,
    },
    /// Nothing: tells the shard's owner that it is (every `Config::shard_ping_every`).
    Ping,
}

/// [`Adjustment`] on the wire (its request context travels in the headers).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireAdjustment {
    pub delta: i64,
    pub kind: String,
    pub reason: Option<String>,
    pub actor_id: Option<Uuid>,
    pub unit_cost_minor: Option<i64>,
    pub source_id: Option<Uuid>,
    pub supplier_id: Option<Uuid>,
}

impl WireAdjustment {
    pub fn from(change: &Adjustment) -> Self {
        Self {
            delta: change.delta,
            kind: change.kind.as_str().to_owned(),
            reason: change.reason.clone(),
            actor_id: change.actor_id,
            unit_cost_minor: change.unit_cost_minor,
            source_id: change.source_id,
            supplier_id: change.supplier_id,
        }
    }

    pub fn into_adjustment(self, meta: &MessageMeta) -> Result<Adjustment, StockError> {
        let kind: MovementKind =
            self.kind.parse().map_err(|_| StockError::Invalid(format!("unknown movement kind {}", self.kind)))?;
        Ok(Adjustment {
            delta: self.delta,
            kind,
            reason: self.reason,
            actor_id: self.actor_id,
            unit_cost_minor: self.unit_cost_minor,
            source_id: self.source_id,
            supplier_id: self.supplier_id,
            meta: meta.clone(),
        })
    }
}

impl contracts::Rpc for Op {
    // Sent with `call_to` to a shard's queue.
    const QUEUE: &'static str = contracts::routing::STOCK_RPC_QUEUE;
    const TYPE: &'static str = FORWARD;
    /// The owner's answer, its refusals exactly as it refused.
    type Reply = Result<serde_json::Value, StockError>;
}

impl Op {
    pub fn add_unit(product: ProductId, unit: &NewUnit) -> Self {
        Op::AddUnit {
            product_id: product.0,
            item_id: unit.item_id.0,
            barcode: unit.barcode.clone(),
            price_minor: unit.price_minor,
            warranty_months: unit.warranty_months,
        }
    }
}

/// The unit of an [`Op::AddUnit`].
pub fn new_unit(item_id: Uuid, barcode: String, price_minor: i64, warranty_months: Option<i32>) -> NewUnit {
    NewUnit { item_id: ItemId(item_id), barcode, price_minor, warranty_months }
}
