//! The stock service: catalog, serialized units, stock levels and the reservation actors.
//!
//! `Application::build(config)` gives a started service (port 0 in tests);
//! `run_until_stopped` serves until shutdown.

pub mod config;
pub mod consumer;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod reservations;
pub mod rpc;
pub mod shards;
pub mod startup;

pub use config::Config;
pub use error::Error;
pub use startup::Application;
