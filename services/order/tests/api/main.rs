//! The order service through HTTP against the real PostgreSQL, RabbitMQ and stock service.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

mod cashflow;
mod checkout;
mod crash;
mod helpers;
mod kms;
mod registers;
mod returns;
mod settings;
mod shell;
mod wallets;
