//! The SMTP side: one pooled lettre transport, logging in with XOAUTH2 (Gmail) using an
//! access token from the OAuth2 token endpoint, cached until shortly before it expires and
//! refreshed when the server answers 535; or PLAIN/LOGIN for other providers.

use std::time::{Duration, Instant};

use anyhow::Context;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use tokio::sync::Mutex;

use crate::config::{SmtpAuth, SmtpConfig, SmtpTls};

/// Why a send failed, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connection refused, timeouts, 4xx: try again later.
    #[error("temporary: {0}")]
    Temporary(String),
    /// 5xx for this message (bad recipient): trying again will not help.
    #[error("permanent: {0}")]
    Permanent(String),
}

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

pub struct Smtp {
    config: SmtpConfig,
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
    /// The transport and the access token it was built with.
    transport: Mutex<Option<(String, AsyncSmtpTransport<Tokio1Executor>)>>,
}

impl Smtp {
    pub fn new(config: SmtpConfig) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { config, http, token: Mutex::new(None), transport: Mutex::new(None) }
    }

    pub fn from_address(&self) -> &str {
        &self.config.from
    }

    /// An access token for XOAUTH2, from the cache unless `force` or near expiry.
    async fn access_token(&self, force: bool) -> Result<String, SendError> {
        let SmtpAuth::Xoauth2 { token_url, client_id, client_secret, refresh_token } = &self.config.auth else {
            return Err(SendError::Permanent("not an XOAUTH2 configuration".into()));
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if !force && Instant::now() < t.refresh_at {
                return Ok(t.token.clone());
            }
        }
        // The auth URL is unused for the refresh grant; oauth2 wants one set anyway.
        let client = BasicClient::new(ClientId::new(client_id.clone()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(token_url.clone()))
            .set_token_uri(TokenUrl::from_url(token_url.clone()));
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| SendError::Temporary(format!("refreshing the SMTP access token: {e}")))?;
        let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3_600));
        // Refresh a minute early (or at half-life for short tokens).
        let margin = Duration::from_secs(60).min(lifetime / 2);
        let token = response.access_token().secret().clone();
        *cached = Some(CachedToken { token: token.clone(), refresh_at: Instant::now() + lifetime - margin });
        tracing::info!(expires_in = lifetime.as_secs(), "obtained SMTP access token");
        Ok(token)
    }

    fn build_transport(&self, secret: String) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let c = &self.config;
        let mut builder = match c.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            SmtpTls::StartTls | SmtpTls::Tls => {
                let params = TlsParameters::new(c.host.clone()).map_err(|e| SendError::Permanent(e.to_string()))?;
                let tls = if c.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) };
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host).tls(tls)
            }
        };
        let mechanism = match c.auth {
            SmtpAuth::Xoauth2 { .. } => Mechanism::Xoauth2,
            SmtpAuth::Plain { .. } => Mechanism::Plain,
            SmtpAuth::Login { .. } => Mechanism::Login,
        };
        builder = builder
            .port(c.port)
            .credentials(Credentials::new(c.username.clone(), secret))
            .authentication(vec![mechanism])
            .timeout(Some(c.timeout))
            .pool_config(PoolConfig::new().max_size(c.pool_size));
        Ok(builder.build())
    }

    async fn transport(&self, force_new_token: bool) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let secret = match &self.config.auth {
            SmtpAuth::Xoauth2 { .. } => self.access_token(force_new_token).await?,
            SmtpAuth::Plain { password } | SmtpAuth::Login { password } => password.expose().to_owned(),
        };
        let mut slot = self.transport.lock().await;
        if let Some((built_with, t)) = slot.as_ref() {
            if *built_with == secret {
                return Ok(t.clone());
            }
        }
        let t = self.build_transport(secret.clone())?;
        *slot = Some((secret, t.clone()));
        Ok(t)
    }

    /// Sends one message; returns the server's answer (kept as the provider message id).
    pub async fn send(&self, message: Message) -> Result<String, SendError> {
        let transport = self.transport(false).await?;
        match transport.send(message.clone()).await {
            Ok(response) => Ok(response.message().collect::<Vec<_>>().join(" ")),
            Err(e) if is_auth_rejected(&e) && matches!(self.config.auth, SmtpAuth::Xoauth2 { .. }) => {
                // The token was revoked or expired early: one fresh token, one more try.
                tracing::warn!("SMTP refused the access token; refreshing it");
                let transport = self.transport(true).await?;
                transport.send(message).await.map(|r| r.message().collect::<Vec<_>>().join(" ")).map_err(classify)
            }
            Err(e) => Err(classify(e)),
        }
    }
}

fn is_auth_rejected(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_some_and(|code| code.to_string() == "535") || e.to_string().contains("535")
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let text = format!("{e}");
    // A permanent answer about the message itself (550 no such user, 553 bad address); an
    // auth failure is our configuration, not the message: retry so the fix takes effect.
    if e.is_permanent() && !is_auth_rejected(&e) {
        SendError::Permanent(text)
    } else {
        SendError::Temporary(text)
    }
}

/// Builds the MIME message: text and HTML alternatives, plus attachments.
pub fn message(
    from: &str,
    to: &str,
    email_id: uuid::Uuid,
    subject: &str,
    text: &str,
    html: &str,
    attachments: Vec<(String, String, Vec<u8>)>,
) -> anyhow::Result<Message> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart};
    let builder = Message::builder()
        .from(from.parse().context("from address")?)
        .to(to.parse().context("recipient address")?)
        .subject(subject)
        .message_id(Some(format!("<{email_id}@cashvio.mailer>")));
    let body = MultiPart::alternative_plain_html(text.to_owned(), html.to_owned());
    let message = if attachments.is_empty() {
        builder.multipart(body)?
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for (filename, content_type, bytes) in attachments {
            let ct = ContentType::parse(&content_type).context("attachment content type")?;
            mixed = mixed.singlepart(Attachment::new(filename).body(bytes, ct));
        }
        builder.multipart(mixed)?
    };
    Ok(message)
}
