//! The mailer service: uploads to S3 and every e-mail the platform sends.
//!
//! `Application::build(config)` gives a started service (port 0 in tests);
//! `run_until_stopped` serves until shutdown.

pub mod config;
pub mod consumer;
pub mod domain;
pub mod email;
pub mod http;
pub mod startup;
pub mod storage;

pub use config::Config;
pub use startup::Application;
