//! Test support shared by every crate's integration tests: a fresh, migrated database per
//! test (connected to as each service role), broker isolation by unique names, and
//! Ed25519 signing keys with a JWKS server to mint access tokens.
//!
//! Everything talks to the real PostgreSQL and RabbitMQ (`TEST_DATABASE_URL`,
//! `TEST_AMQP_URL`; defaults are the local ones).

pub mod access;
pub mod events;
pub mod jwt;
pub mod service;

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use platform::config::Secret;

pub fn pg_server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Tests use their own vhost, `cashvio_test`, which `make test` (stack/test-broker.sh) wipes
/// and recreates before every run: tests leave queues behind, and a wiped vhost is one
/// command where deleting queues one by one is minutes.
pub fn amqp_url() -> Secret {
    Secret::new(
        std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/cashvio_test".to_owned()),
    )
}

/// A unique suffix for names of this test's broker objects and databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A database created for one test and migrated like production.
pub struct TestDb {
    pub name: String,
    /// Owner (superuser) pool, for arranging and asserting across schemas.
    pub admin: PgPool,
}

impl TestDb {
    pub async fn new() -> anyhow::Result<Self> {
        let name = unique("cashvio_test");
        let mut server = PgConnection::connect(&pg_server_url()).await.context("connecting to PostgreSQL")?;
        server.execute(format!("create database {name}").as_str()).await?;
        server.close().await?;
        let admin = PgPool::connect(&Self::url_for_role(&name, "postgres")).await?;
        platform::db::MIGRATOR.run(&admin).await.context("migrating the test database")?;
        Ok(Self { name, admin })
    }

    fn url_for_role(db: &str, role: &str) -> String {
        let mut url = url::Url::parse(&pg_server_url()).expect("TEST_DATABASE_URL is a URL");
        let _ = url.set_username(role);
        url.set_path(db);
        url.to_string()
    }

    /// The URL a service role connects with (trust auth locally, no password).
    pub fn url(&self, role: &str) -> Secret {
        Secret::new(Self::url_for_role(&self.name, role))
    }

    /// A pool connected as `role` working in `schema`, as the service would.
    pub fn service_pool(&self, role: &str, schema: &str) -> anyhow::Result<PgPool> {
        platform::db::pool(&self.url(role), schema, 5)
    }
}

impl TestDb {
    /// An owner-role pool working in `schema` (for running a service's operator code).
    pub async fn admin_in(&self, schema: &str) -> PgPool {
        platform::db::pool(&self.url("postgres"), schema, 2).expect("pool")
    }
}
