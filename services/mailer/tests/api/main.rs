//! The mailer through HTTP and the bus, against the real PostgreSQL, RabbitMQ, the moto S3
//! stand-in and the SMTP sink.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

mod access;
mod emails;
mod helpers;
mod shell;
mod upload;
