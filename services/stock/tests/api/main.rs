//! The stock service through HTTP and RPC against the real PostgreSQL and RabbitMQ.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

mod access;
mod catalog;
mod crash;
mod events;
mod first_clients;
mod hardening;
mod helpers;
mod oversell;
mod references;
mod shards;
mod shell;
mod writer;
