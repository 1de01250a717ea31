//! Layered configuration: built-in defaults, then a `.env` file (if present, local only),
//! then the process environment. Every variable is documented in `.env.example`.
//!
//! Errors name the variable and never echo a secret's value.

use std::fmt;
use std::str::FromStr;

/// A configuration problem found at start, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(String),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: String, reason: String },
}

/// A value that must never reach a log line. `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself. Call only where it is used (a connection, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads variables with the layering above. Load once at start with [`Env::load`].
#[derive(Debug, Clone, Default)]
pub struct Env {
    _private: (),
}

impl Env {
    /// Loads `.env` from the working directory when it exists (values already in the
    /// environment win), so the process environment is the top layer.
    pub fn load() -> Self {
        // A missing .env is the normal case in production.
        let _ = dotenvy::dotenv();
        Self { _private: () }
    }

    /// An environment without the `.env` layer (tests set variables themselves).
    pub fn process_only() -> Self {
        Self { _private: () }
    }

    fn raw(&self, var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Some(v),
            _ => None,
        }
    }

    pub fn required<T: FromStr>(&self, var: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        let raw = self.raw(var).ok_or_else(|| ConfigError::Missing(var.to_owned()))?;
        parse(var, &raw)
    }

    pub fn optional<T: FromStr>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.raw(var).map(|raw| parse(var, &raw)).transpose()
    }

    pub fn or<T: FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        Ok(self.optional(var)?.unwrap_or(default))
    }

    pub fn secret(&self, var: &str) -> Result<Secret, ConfigError> {
        self.raw(var).map(Secret).ok_or_else(|| ConfigError::Missing(var.to_owned()))
    }

    pub fn secret_optional(&self, var: &str) -> Option<Secret> {
        self.raw(var).map(Secret)
    }

    /// A URL with one of the allowed schemes. The error never repeats the value, since
    /// URLs often carry passwords.
    pub fn url(&self, var: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
        let raw = self.raw(var).ok_or_else(|| ConfigError::Missing(var.to_owned()))?;
        check_url(var, &raw, schemes)
    }

    pub fn url_or(&self, var: &str, default: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
        let raw = self.raw(var).unwrap_or_else(|| default.to_owned());
        check_url(var, &raw, schemes)
    }

    /// A URL that carries credentials (database, broker): kept as a [`Secret`].
    pub fn secret_url(&self, var: &str, schemes: &[&str]) -> Result<Secret, ConfigError> {
        Ok(Secret(self.url(var, schemes)?.to_string()))
    }
}

fn parse<T: FromStr>(var: &str, raw: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    raw.trim().parse::<T>().map_err(|e| ConfigError::Invalid { var: var.to_owned(), reason: e.to_string() })
}

fn check_url(var: &str, raw: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| ConfigError::Invalid { var: var.to_owned(), reason: format!("not a valid URL ({e})") })?;
    if !schemes.is_empty() && !schemes.contains(&url.scheme()) {
        return Err(ConfigError::Invalid {
            var: var.to_owned(),
            reason: format!("scheme must be one of {}", schemes.join(", ")),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::Invalid { var: var.to_owned(), reason: "URL has no host".into() });
    }
    Ok(url)
}

/// Settings every service shares: where to listen, the database, the broker and how to
/// verify tokens. `prefix` is the service's variable prefix (`AUTH`, `STOCK`, ...).
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub service: &'static str,
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub database_schema: String,
    pub database_max_connections: u32,
    pub amqp_url: Secret,
    pub amqp_exchange: String,
    /// `quorum` (default, production) or `classic` (tests, tiny brokers).
    pub amqp_queue_type: String,
    pub jwt: crate::auth::JwtConfig,
    pub shutdown_grace_secs: u64,
}

impl CommonConfig {
    pub fn from_env(
        env: &Env,
        service: &'static str,
        prefix: &str,
        default_port: u16,
        schema: &str,
    ) -> Result<Self, ConfigError> {
        let v = |name: &str| format!("{prefix}_{name}");
        Ok(Self {
            service,
            host: env.or("HOST", "127.0.0.1".to_owned())?,
            port: env.or(&v("PORT"), default_port)?,
            database_url: env.secret_url(&v("DATABASE_URL"), &["postgres", "postgresql"])?,
            database_schema: schema.to_owned(),
            database_max_connections: env.or(&v("DATABASE_MAX_CONNECTIONS"), 10)?,
            amqp_url: env.secret_url("AMQP_URL", &["amqp", "amqps"])?,
            amqp_exchange: env.or("AMQP_EXCHANGE", "cashvio.events".to_owned())?,
            amqp_queue_type: {
                let t: String = env.or("AMQP_QUEUE_TYPE", "quorum".to_owned())?;
                if !matches!(t.as_str(), "quorum" | "classic") {
                    return Err(ConfigError::Invalid {
                        var: "AMQP_QUEUE_TYPE".into(),
                        reason: "must be quorum or classic".into(),
                    });
                }
                t
            },
            jwt: crate::auth::JwtConfig {
                jwks_url: env.url("JWKS_URL", &["http", "https"])?,
                issuer: env.required("JWT_ISSUER")?,
                audience: env.or("JWT_AUDIENCE", "cashvio".to_owned())?,
                jwks_min_refresh_secs: env.or("JWKS_MIN_REFRESH_SECS", 10)?,
            },
            shutdown_grace_secs: env.or("SHUTDOWN_GRACE_SECS", 20)?,
        })
    }
}

/// Exits the process with a one-line message naming what is wrong, instead of a panic
/// backtrace. For `main.rs`.
pub fn exit_on_error<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn bad_url_names_the_variable_not_the_value() {
        let err = check_url("X_URL", "postgres//user:pw@host", &["postgres"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("X_URL"), "{msg}");
        assert!(!msg.contains("pw"), "{msg}");
        let err = check_url("X_URL", "http://host/", &["postgres"]).unwrap_err();
        assert!(err.to_string().contains("scheme"), "{err}");
    }
}
