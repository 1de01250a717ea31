//! The stock service, over its shard queues (`stock.rpc.<k>`, the shop's shard: see
//! `contracts::routing::shard_of`): reserve every line or none (priced), commit, release.
//! Every call is bounded; a timeout means "not reserved", and the caller releases by
//! reservation id (idempotent) before it answers.

use std::time::Duration;

use bus::{MessageMeta, RpcClient, RpcError};
use contracts::stock::{CommitRequest, ReleaseRequest, ReservationView, ReserveLine, ReserveRequest};
use uuid::Uuid;

/// How long a sale may hold stock between reserve and commit by default; an order process
/// that dies in between leaves a reservation that expires after this (`ORDER_STOCK_HOLD_SECS`).
pub const HOLD_SECONDS: u32 = 120;

#[derive(Clone)]
pub struct Stock {
    rpc: RpcClient,
    /// The shard queues' prefix (`stock.rpc`).
    queue: String,
    shards: u16,
    timeout: Duration,
    hold_seconds: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StockCallError {
    /// Stock answered with a refusal (its code: STOCK_INSUFFICIENT, PRODUCT_NOT_FOUND, ...).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// No answer in time, or the broker is away: nothing is known to be reserved.
    #[error("stock did not answer: {0}")]
    Unavailable(String),
}

impl From<RpcError> for StockCallError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Fault(f) => StockCallError::Refused { code: f.code, message: f.message },
            other => StockCallError::Unavailable(other.to_string()),
        }
    }
}

impl Stock {
    pub fn new(rpc: RpcClient, queue: String, shards: u16, timeout: Duration, hold_seconds: u32) -> Self {
        Self { rpc, queue, shards: shards.max(1), timeout, hold_seconds: hold_seconds.max(1) }
    }

    /// The queue of the shard that owns `shop`'s stock.
    fn queue_of(&self, shop_id: Uuid) -> String {
        contracts::routing::shard_queue(&self.queue, contracts::routing::shard_of(shop_id, self.shards))
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
    pub async fn reserve(
        &self,
        reservation_id: Uuid,
        shop_id: Uuid,
        lines: Vec<ReserveLine>,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockCallError> {
        let request = ReserveRequest { reservation_id, shop_id, lines, ttl_seconds: self.hold_seconds };
        Ok(self.rpc.call_to(&self.queue_of(shop_id), &request, meta, self.timeout).await?)
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
    pub async fn commit(
        &self,
        reservation_id: Uuid,
        shop_id: Uuid,
        order_id: Uuid,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockCallError> {
        let request = CommitRequest { reservation_id, order_id: Some(order_id), shop_id: Some(shop_id) };
        Ok(self.rpc.call_to(&self.queue_of(shop_id), &request, meta, self.timeout).await?)
    }

    /// Releases, logging (not returning) a failure: the reservation's TTL is the backstop.
    #[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
    pub async fn release(&self, reservation_id: Uuid, shop_id: Uuid, meta: &MessageMeta) {
        let request = ReleaseRequest { reservation_id, shop_id: Some(shop_id) };
        match self.rpc.call_to(&self.queue_of(shop_id), &request, meta, self.timeout).await {
            Ok(_) => {}
            Err(RpcError::Fault(f)) if f.code == "RESERVATION_NOT_FOUND" || f.code == "RESERVATION_EXPIRED" => {}
            Err(e) => tracing::warn!(error = %e, "release failed; the reservation expires by its TTL"),
        }
    }
}
