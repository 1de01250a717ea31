//! Operator commands behind `cashvio-admin`, as a library so tests run them too.

pub mod accounts;
pub mod migrate;
pub mod nginx;
