//! The wire between Cashvio services: every event and RPC payload, versioned.
//!
//! An event's routing key is its `TYPE` (`<service>.<entity>.<verb>`), or its type and one
//! further word that keeps it from a consumer bound to the type alone (`Event::routing_key`:
//! a sale with no receipt to send is `sales.order.completed.without_receipt`, so the mailer,
//! bound to `sales.order.completed`, never sees it; stock and auth bind
//! `sales.order.completed.#`); `VERSION` travels in
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

    /// The routing key this event is published under: its type, or its type and one further
    /// word for the events a consumer bound to the type alone does not want. A consumer of
    /// them all binds `TYPE.#`. (The word goes on the events some consumer does not want,
    /// not on the ones it does: an event published by an older version, under its type,
    /// still reaches everyone, and a consumer that wants them all widens its binding before
    /// a producer narrows a key.)
    fn routing_key(&self) -> &'static str {
        Self::TYPE
    }
}

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
