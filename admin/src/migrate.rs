//! Creates the database if it is missing and applies the migrations.

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use platform::config::{ConfigError, Env, Secret};

/// The service roles and the variables holding their connection URLs.
pub const SERVICE_ROLES: &[(&str, &str)] = &[
    ("cashvio_auth", "AUTH_DATABASE_URL"),
    ("cashvio_stock", "STOCK_DATABASE_URL"),
    ("cashvio_order", "ORDER_DATABASE_URL"),
    ("cashvio_mailer", "MAILER_DATABASE_URL"),
];

#[derive(Debug)]
pub struct MigrateConfig {
    /// The owner (migration) role's URL.
    pub database_url: Secret,
    /// (role, password) for roles whose service URL carries a password.
    pub role_passwords: Vec<(String, Secret)>,
}

impl MigrateConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env.secret_url("DATABASE_URL", &["postgres", "postgresql"])?;
        let mut role_passwords = Vec::new();
        for (role, var) in SERVICE_ROLES {
            if let Some(url) = env.optional::<String>(var)? {
                let parsed = url::Url::parse(&url).map_err(|e| ConfigError::Invalid {
                    var: (*var).to_owned(),
                    reason: format!("not a valid URL ({e})"),
                })?;
                if let Some(pw) = parsed.password() {
                    if parsed.username() == *role {
                        role_passwords.push(((*role).to_owned(), Secret::new(pw)));
                    }
                }
            }
        }
        Ok(Self { database_url, role_passwords })
    }
}

/// Creates the database named in `url` when it does not exist (connecting to the server's
/// `postgres` database to do so).
pub async fn create_database_if_missing(url: &Secret) -> anyhow::Result<()> {
    let opts: PgConnectOptions = url.expose().parse().context("parsing DATABASE_URL")?;
    let name = opts.get_database().unwrap_or("cashvio").to_owned();
    let mut admin = opts.clone().database("postgres").connect().await.context("connecting to the postgres database")?;
    let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        match admin.execute(format!("create database \"{quoted}\"").as_str()).await {
            Ok(_) => {}
            // Another migrator created it between our check and now.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    admin.close().await?;
    Ok(())
}

pub async fn run(config: &MigrateConfig) -> anyhow::Result<()> {
    create_database_if_missing(&config.database_url).await?;
    let mut conn = PgConnection::connect(config.database_url.expose()).await.context("connecting as the owner role")?;
    platform::db::MIGRATOR.run(&mut conn).await.context("applying migrations")?;
    for (role, password) in &config.role_passwords {
        // Identifiers come from our fixed list; the password is passed as a literal, as
        // ALTER ROLE does not take bind parameters.
        let literal = password.expose().replace('\'', "''");
        conn.execute(format!("alter role {role} password '{literal}'").as_str())
            .await
            .with_context(|| format!("setting the password of {role}"))?;
    }
    conn.close().await?;
    Ok(())
}
