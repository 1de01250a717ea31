//! The order service through HTTP against the real PostgreSQL and RabbitMQ.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

mod helpers;
mod shell;
