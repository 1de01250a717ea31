//! The auth service through HTTP against the real PostgreSQL and RabbitMQ (and the local
//! OpenID provider for Google sign-in).
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

mod access;
mod flow;
mod google;
mod helpers;
mod matrix;
mod owner;
mod shell;
