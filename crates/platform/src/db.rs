//! The PostgreSQL pool. Each service connects as its own role and works in its own
//! schema (`search_path`), so unqualified table names (`outbox`, `inbox`) are its own.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::Secret;

/// The migrations of the whole database, embedded so tests and `cashvio-admin migrate`
/// apply exactly the same files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

pub fn connect_options(url: &Secret, schema: &str) -> anyhow::Result<PgConnectOptions> {
    let opts: PgConnectOptions = url.expose().parse().context("parsing the database URL")?;
    Ok(opts.options([("search_path", schema)]).application_name(schema))
}

/// A lazily connecting pool: a service starts (and answers `/health`) while the database
/// is still coming up; `/ready` tells when it is reachable.
pub fn pool(url: &Secret, schema: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(connect_options(url, schema)?))
}

/// Readiness probe: one round trip.
pub async fn ping(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("select 1").execute(pool).await.context("database ping")?;
    Ok(())
}
