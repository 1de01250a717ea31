//! The auth service: users, shops, staff, sign-up and sign-in, tokens and the JWKS.
//!
//! `Application::build(config)` gives a started service (port 0 in tests);
//! `run_until_stopped` serves until shutdown.

pub mod access;
pub mod config;
pub mod consumer;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod google;
pub mod http;
pub mod keys;
pub mod operator;
pub mod ratelimit;
pub mod session;
pub mod startup;

pub use config::Config;
pub use startup::Application;
