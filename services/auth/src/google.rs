//! Google sign-in: OpenID Connect authorization code with PKCE, state and nonce (oauth2
//! crate); the ID token verified against the provider's JWKS (signature, iss, aud, exp,
//! nonce, email_verified). Endpoints come from the issuer's discovery document, so tests use
//! a local provider and production uses Google.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::RwLock;

use crate::config::GoogleConfig;
use crate::error::AuthError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenFields {
    id_token: String,
}
impl ExtraTokenFields for IdTokenFields {}

type IdTokenResponse = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    IdTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// What a verified ID token says about the person.
#[derive(Debug, Clone)]
pub struct Identity {
    pub sub: String,
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    nonce: Option<String>,
    name: Option<String>,
}

pub struct Google {
    config: GoogleConfig,
    http: reqwest::Client,
    discovery: RwLock<Option<Discovery>>,
    keys: RwLock<HashMap<String, DecodingKey>>,
}

const STATE_TTL_SECS: f64 = 600.0;

impl Google {
    pub fn new(config: GoogleConfig) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none()) // oauth2: never follow redirects on the token call
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { config, http, discovery: RwLock::new(None), keys: RwLock::new(HashMap::new()) }
    }

    async fn discovery(&self) -> Result<Discovery, AuthError> {
        if let Some(d) = self.discovery.read().await.clone() {
            return Ok(d);
        }
        let url =
            self.config.issuer_url.as_str().trim_end_matches('/').to_owned() + "/.well-known/openid-configuration";
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("fetching the OpenID discovery document")?
            .json()
            .await
            .context("reading the OpenID discovery document")?;
        *self.discovery.write().await = Some(d.clone());
        Ok(d)
    }

    async fn client(&self) -> Result<(OidcClient, Discovery), AuthError> {
        let d = self.discovery().await?;
        let client = oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.config.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::new(d.authorization_endpoint.clone()).context("authorization endpoint")?)
            .set_token_uri(TokenUrl::new(d.token_endpoint.clone()).context("token endpoint")?)
            .set_redirect_uri(RedirectUrl::from_url(self.config.redirect_url.clone()));
        Ok((client, d))
    }

    /// Where to send the browser; remembers state, PKCE verifier and nonce for the callback.
    pub async fn authorize_url(&self, pool: &PgPool) -> Result<url::Url, AuthError> {
        let (client, _) = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = crate::crypto::random_token();
        let n = nonce.clone();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .add_extra_param("nonce", n)
            .set_pkce_challenge(challenge)
            .url();
        sqlx::query(
            "insert into oauth_states (state, pkce_verifier, nonce, expires_at)
             values ($1, $2, $3, now() + make_interval(secs => $4))",
        )
        .bind(state.secret())
        .bind(verifier.secret())
        .bind(&nonce)
        .bind(STATE_TTL_SECS)
        .execute(pool)
        .await?;
        Ok(url)
    }

    /// The callback: the state must be one we issued (used once), the code is exchanged with
    /// the PKCE verifier, the ID token verified, its nonce ours and its e-mail verified.
    pub async fn complete(&self, pool: &PgPool, code: &str, state: &str) -> Result<Identity, AuthError> {
        let stored: Option<(String, String)> = sqlx::query_as(
            "delete from oauth_states where state = $1 and expires_at > now() returning pkce_verifier, nonce",
        )
        .bind(state)
        .fetch_optional(pool)
        .await?;
        let (verifier, nonce) = stored.ok_or_else(|| AuthError::Google("unknown or expired state".into()))?;
        let (client, discovery) = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| AuthError::Google(format!("code exchange failed: {e}")))?;
        let claims = self.verify(&response.extra_fields().id_token, &discovery).await?;
        if claims.nonce.as_deref() != Some(nonce.as_str()) {
            return Err(AuthError::Google("ID token nonce does not match".into()));
        }
        let verified = match &claims.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        let email = claims.email.clone().ok_or_else(|| AuthError::Google("ID token has no e-mail".into()))?;
        if !verified {
            return Err(AuthError::Google("the Google e-mail is not verified".into()));
        }
        Ok(Identity { sub: claims.sub, email, name: claims.name })
    }

    async fn verify(&self, id_token: &str, d: &Discovery) -> Result<IdClaims, AuthError> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| AuthError::Google(format!("ID token: {e}")))?;
        let kid = header.kid.clone().unwrap_or_default();
        let mut key = self.keys.read().await.get(&kid).cloned();
        if key.is_none() {
            let set: JwkSet = self
                .http
                .get(&d.jwks_uri)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .context("fetching the provider's JWKS")?
                .json()
                .await
                .context("reading the provider's JWKS")?;
            let mut keys = self.keys.write().await;
            for jwk in &set.keys {
                if let (Some(k), Ok(dk)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                    keys.insert(k, dk);
                }
            }
            key = keys.get(&kid).cloned();
        }
        let key = key.ok_or_else(|| AuthError::Google("ID token signed with an unknown key".into()))?;
        if !matches!(header.alg, jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::ES256) {
            return Err(AuthError::Google("unexpected ID token algorithm".into()));
        }
        let mut v = Validation::new(header.alg);
        v.set_audience(&[&self.config.client_id]);
        v.set_issuer(&[&d.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<IdClaims>(id_token, &key, &v)
            .map(|t| t.claims)
            .map_err(|e| AuthError::Google(format!("ID token rejected: {e}")))
    }
}
