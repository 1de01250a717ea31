//! The order service through HTTP against the real PostgreSQL and RabbitMQ.

mod helpers;
mod shell;
