//! The wire between Cashvio services: every event and RPC payload, versioned.
//!
//! An event's routing key is its `TYPE` (`<service>.<entity>.<verb>`), or its type and one
//! further word where some consumers want only some of them (`Event::routing_key`: a sale
//! with a receipt to send is `sales.order.completed.receipt`, so the mailer binds to those
//! alone and everyone else to `sales.order.completed.#`); `VERSION` travels in
//! the message headers so a consumer can refuse a version it does not understand instead of
//! misreading it. Adding an optional field keeps the version; anything else bumps it.
//! Payloads carry everything their consumers need, so no service reads another's tables.
//!
//! Forward compatible: payloads accept fields they do not know (no `deny_unknown_fields`
//! here, unlike HTTP request bodies), so an older consumer reads a newer producer's event
//! that gained an optional field. Consumers decode with `bus::Incoming::event::<E>()`, which
//! refuses a newer `VERSION` to the dead-letter queue with the reason.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A message published on the `cashvio.events` exchange.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// Message type and routing key, e.g. `sales.order.completed`.
    const TYPE: &'static str;
    /// Payload schema version.
    const VERSION: u16;

    /// The routing key this event is published under: its type, unless the event narrows it
    /// by a further word that lets a consumer bind to only some of these events. A consumer
    /// of them all binds `TYPE.#`.
    fn routing_key(&self) -> &'static str {
        Self::TYPE
    }
}

/// Bindings that earlier versions made and this one no longer does (`sales.order.completed`
/// became `sales.order.completed.#` for stock and auth and `.receipt` for the mailer). A
/// queue declared by an older version keeps its bindings, so every consumer removes these
/// from its queue unless it still binds them itself.
pub const RETIRED_BINDINGS: &[&str] = &["sales.order.completed", "sales.return.completed"];

/// An RPC request with its reply type.
pub trait Rpc: Serialize + DeserializeOwned + Send + Sync {
    /// The queue that serves it, e.g. `stock.rpc`.
    const QUEUE: &'static str;
    /// Message type, e.g. `stock.reservation.reserve`.
    const TYPE: &'static str;
    type Reply: Serialize + DeserializeOwned + Send;
}

/// Routing keys other services bind to, in one place.
pub mod routing {
    pub const EXCHANGE: &str = "cashvio.events";
    pub const STOCK_RPC_QUEUE: &str = "stock.rpc";
    /// Stock's RPC shards by default (`STOCK_SHARDS`; stock and its callers must agree).
    pub const STOCK_SHARDS: u16 = 8;

    /// The shard a shop's stock lives in, of `shards` (at least 1). A shop's products share
    /// one shard, so a multi-line reservation (always within one shop) is decided by one
    /// owner. The low 64 bits of the id: random in UUIDv7 (the high ones are its time), and
    /// the same in every process and language.
    pub fn shard_of(shop: uuid::Uuid, shards: u16) -> u16 {
        #[allow(clippy::cast_possible_truncation, reason = "below shards, a u16")]
        let k = (shop.as_u128() as u64 % u64::from(shards.max(1))) as u16;
        k
    }

    /// The RPC queue of shard `k` under `prefix` (`stock.rpc` → `stock.rpc.3`).
    pub fn shard_queue(prefix: &str, k: u16) -> String {
        format!("{prefix}.{k}")
    }
}

pub mod auth;
pub mod common;
pub mod mailer;
pub mod sales;
pub mod stock;
