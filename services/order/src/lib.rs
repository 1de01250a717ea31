//! The order service: orders, payments, returns, wallets, cashflow and register shifts (schema `sales`).
//!
//! `Application::build(config)` gives a started service (port 0 in tests);
//! `run_until_stopped` serves until shutdown.

pub mod checkout;
pub mod config;
pub mod consumer;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod returns;
pub mod startup;
pub mod stock;
pub mod view;
pub mod wallet;

pub use config::Config;
pub use startup::Application;
