//! Configuration of the mailer service, from the environment (see `.env.example`).

use std::time::Duration;

use platform::config::{CommonConfig, ConfigError, Env, Secret};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub s3: S3Config,
    pub smtp: SmtpConfig,
    pub delivery: DeliveryConfig,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Empty in production (the SDK's endpoints); the moto stand-in locally.
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    /// Create the bucket at start (local stand-in only).
    pub create_bucket: bool,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub presign_expiry: Duration,
}

/// How the mailer logs in to the SMTP server.
#[derive(Debug, Clone)]
pub enum SmtpAuth {
    /// Gmail: an access token from the OAuth2 token endpoint, obtained with the refresh token.
    Xoauth2 {
        token_url: url::Url,
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
    },
    Plain {
        password: Secret,
    },
    Login {
        password: Secret,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub auth: SmtpAuth,
    /// `Cashvio <no-reply@cashvio.app>`
    pub from: String,
    pub pool_size: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Send attempts per e-mail before it is marked failed.
    pub max_attempts: i32,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// E-mails sent concurrently per batch.
    pub batch_size: i64,
    /// The mailer's event queue (with `.retry` and `.dlq` beside it).
    pub queue: String,
    /// Event deliveries before a message that cannot become an e-mail is dead-lettered.
    pub event_max_attempts: u32,
    pub event_retry_delay: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, "mailer", "MAILER", 3001, "mailer")?;
        let endpoint_url = match env.optional::<String>("AWS_ENDPOINT_URL")? {
            Some(raw) => {
                env.url("AWS_ENDPOINT_URL", &["http", "https"])?; // validates
                Some(raw.trim().trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let s3 = S3Config {
            bucket: env.required("S3_BUCKET")?,
            region: env.or("AWS_REGION", "us-east-1".to_owned())?,
            force_path_style: env.or("S3_FORCE_PATH_STYLE", endpoint_url.is_some())?,
            endpoint_url,
            create_bucket: env.or("S3_CREATE_BUCKET", false)?,
            access_key_id: env.secret("AWS_ACCESS_KEY_ID")?,
            secret_access_key: env.secret("AWS_SECRET_ACCESS_KEY")?,
            session_token: env.secret_optional("AWS_SESSION_TOKEN"),
            presign_expiry: Duration::from_secs(env.or("S3_PRESIGN_EXPIRY_SECS", 300)?),
        };
        let mechanism: String = env.or("SMTP_AUTH", "xoauth2".to_owned())?;
        let auth = match mechanism.to_ascii_lowercase().as_str() {
            "xoauth2" => SmtpAuth::Xoauth2 {
                token_url: env.url("SMTP_OAUTH_TOKEN_URL", &["http", "https"])?,
                client_id: env.required("SMTP_OAUTH_CLIENT_ID")?,
                client_secret: env.secret("SMTP_OAUTH_CLIENT_SECRET")?,
                refresh_token: env.secret("SMTP_OAUTH_REFRESH_TOKEN")?,
            },
            "plain" => SmtpAuth::Plain { password: env.secret("SMTP_PASSWORD")? },
            "login" => SmtpAuth::Login { password: env.secret("SMTP_PASSWORD")? },
            _ => {
                return Err(ConfigError::Invalid {
                    var: "SMTP_AUTH".into(),
                    reason: "must be xoauth2, plain or login".into(),
                })
            }
        };
        let tls: String = env.or("SMTP_TLS", "starttls".to_owned())?;
        let tls = match tls.to_ascii_lowercase().as_str() {
            "none" => SmtpTls::None,
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            _ => {
                return Err(ConfigError::Invalid {
                    var: "SMTP_TLS".into(),
                    reason: "must be none, starttls or tls".into(),
                })
            }
        };
        let from: String = env.required("MAIL_FROM")?;
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid {
                var: "MAIL_FROM".into(),
                reason: "not a mailbox (Name <addr@host>)".into(),
            });
        }
        let smtp = SmtpConfig {
            host: env.required("SMTP_HOST")?,
            port: env.or("SMTP_PORT", 587)?,
            tls,
            username: env.required("SMTP_USERNAME")?,
            auth,
            from,
            pool_size: env.or("SMTP_POOL_SIZE", 4)?,
            timeout: Duration::from_secs(env.or("SMTP_TIMEOUT_SECS", 20)?),
        };
        let delivery = DeliveryConfig {
            max_attempts: env.or("MAIL_MAX_ATTEMPTS", 10)?,
            retry_base: Duration::from_millis(env.or("MAIL_RETRY_BASE_MS", 2_000)?),
            retry_max: Duration::from_secs(env.or("MAIL_RETRY_MAX_SECS", 3_600)?),
            batch_size: env.or("MAIL_BATCH_SIZE", 16)?,
            queue: env.or("MAILER_QUEUE", "mailer.events".to_owned())?,
            event_max_attempts: env.or("MAILER_EVENT_MAX_ATTEMPTS", 5)?,
            event_retry_delay: Duration::from_millis(env.or("MAILER_EVENT_RETRY_DELAY_MS", 5_000)?),
        };
        Ok(Self { common, s3, smtp, delivery })
    }
}
