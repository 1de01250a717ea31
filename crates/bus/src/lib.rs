//! RabbitMQ for Cashvio, over lapin.
//!
//! - [`Broker`]: one connection per process, re-established on demand after a drop.
//! - [`topology`]: the topic exchange and, per consumer, a quorum queue with `.retry`
//!   (delay by TTL) and `.dlq` beside it, declared at start.
//! - [`outbox`]: events written in the caller's transaction and a relay that publishes
//!   them with publisher confirms, marking rows only after the broker confirmed.
//! - [`consumer`]: runs a handler in a database transaction together with an inbox insert
//!   keyed by message id; acks after commit; retries with delay, then dead-letters.
//! - [`rpc`]: request/reply over direct reply-to with correlation ids and a caller timeout.
//!
//! Every message carries `message_id`, `type`, `occurred_at`, request id and
//! `traceparent` (see [`message`]).

pub mod broker;
pub mod consumer;
pub mod message;
pub mod outbox;
pub mod rpc;
pub mod topology;

pub use broker::Broker;
pub use consumer::{Consumer, Handler, HandlerError};
pub use message::{Incoming, MessageMeta};
pub use outbox::{enqueue, OutboxBatch, OutboxColumns, OutboxRelay, OutboxRow};
pub use rpc::{RpcClient, RpcError, RpcFault, RpcHandler, RpcServer};
pub use topology::QueueSpec;
