//! Configuration of the auth service, from the environment (see `.env.example`).

use std::time::Duration;

use platform::config::{CommonConfig, ConfigError, Env, Secret};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub tokens: TokenConfig,
    /// Base URL of the client app, for links in e-mails (reset, invite) and the Google hand-over.
    pub app_url: url::Url,
    pub google: Option<GoogleConfig>,
    pub limits: RateLimits,
    /// This service's event queue (the shop-customer projection).
    pub queue: String,
    /// How long its consumer holds a sale for others to join it in one transaction
    /// (`AUTH_QUEUE_LINGER_MS`, default 50): nobody waits on the projection.
    pub queue_linger: Duration,
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_ttl_short: Duration,
    /// A refresh token used again within this long after its rotation gets the same
    /// successor (two tabs refreshing at once); later reuse revokes the family.
    pub refresh_reuse_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// `https://accounts.google.com`; locally the OpenID provider stand-in.
    pub issuer_url: url::Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// This service's callback as registered with Google (through nginx).
    pub redirect_url: url::Url,
}

/// Brute-force brakes. nginx limits per IP in front; these hold per e-mail too.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub login_per_email: u32,
    pub login_per_ip: u32,
    pub otp_per_email: u32,
    pub otp_per_ip: u32,
    pub window: Duration,
    pub otp_resend_after: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, "auth", "AUTH", 3010, "auth")?;
        let tokens = TokenConfig {
            issuer: common.jwt.issuer.clone(),
            audience: common.jwt.audience.clone(),
            access_ttl: Duration::from_secs(env.or("ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_ttl: Duration::from_secs(env.or::<u64>("REFRESH_TOKEN_TTL_DAYS", 30)? * 86_400),
            refresh_ttl_short: Duration::from_secs(env.or::<u64>("REFRESH_TOKEN_TTL_SHORT_DAYS", 7)? * 86_400),
            refresh_reuse_grace: Duration::from_secs(env.or("REFRESH_TOKEN_REUSE_GRACE_SECS", 10)?),
        };
        let google = match env.optional::<String>("GOOGLE_CLIENT_ID")? {
            None => None,
            Some(client_id) => Some(GoogleConfig {
                issuer_url: env.url("GOOGLE_ISSUER_URL", &["http", "https"])?,
                client_id,
                client_secret: env.secret("GOOGLE_CLIENT_SECRET")?,
                redirect_url: env.url("GOOGLE_REDIRECT_URL", &["http", "https"])?,
            }),
        };
        Ok(Self {
            common,
            tokens,
            app_url: env.url_or("AUTH_APP_URL", "http://127.0.0.1:8000", &["http", "https"])?,
            google,
            queue: env.or("AUTH_QUEUE", "auth.events".to_owned())?,
            queue_linger: Duration::from_millis(env.or("AUTH_QUEUE_LINGER_MS", 50)?),
            limits: RateLimits {
                login_per_email: env.or("LOGIN_LIMIT_PER_EMAIL", 10)?,
                login_per_ip: env.or("LOGIN_LIMIT_PER_IP", 50)?,
                otp_per_email: env.or("OTP_LIMIT_PER_EMAIL", 5)?,
                otp_per_ip: env.or("OTP_LIMIT_PER_IP", 20)?,
                window: Duration::from_secs(env.or("AUTH_RATE_WINDOW_SECS", 900)?),
                otp_resend_after: Duration::from_secs(env.or("OTP_RESEND_AFTER_SECS", 60)?),
            },
        })
    }
}
