//! The stock service through HTTP and RPC against the real PostgreSQL and RabbitMQ.

mod catalog;
mod crash;
mod events;
mod helpers;
mod oversell;
mod shell;
