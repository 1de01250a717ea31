//! Verifying access tokens: JWTs signed by the auth service with an asymmetric key and
//! checked here against its JWKS (fetched, cached, re-fetched when a token names a key
//! id we have not seen). [`AuthUser`] is the axum extractor handlers take.
//!
//! A token says who the caller is (`sub`, `sid`), not what they may do: the extractor asks
//! the service's [`AccessSource`] whether the session and the account are still good and
//! which shops the caller belongs to, with which role. Auth answers from its own tables;
//! every other service from its projection of auth's events (the `service` crate). So a
//! suspended member, a logout or a deleted account stops working everywhere at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::error::Problem;
use crate::ids::{ShopId, UserId};

crate::text_enum! {
    /// Platform-wide role of a user (`auth.users.role`).
    #[derive(Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum Role {
        SuperAdmin => "SUPER_ADMIN",
        Admin => "ADMIN",
        ShopOwner => "SHOP_OWNER",
        ShopStaff => "SHOP_STAFF",
        Customer => "CUSTOMER",
    }
}

crate::text_enum! {
    /// A user's role inside one shop (`auth.memberships.role`). An owner may do everything
    /// staff may.
    #[derive(PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum ShopRole {
        ShopStaff => "SHOP_STAFF",
        ShopOwner => "SHOP_OWNER",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopClaim {
    pub id: ShopId,
    pub role: ShopRole,
}

/// The claims of a Cashvio access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub role: Role,
    #[serde(default)]
    pub shops: Vec<ShopClaim>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Session id, so a session's tokens can be traced and revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub jwks_url: url::Url,
    pub issuer: String,
    pub audience: String,
    /// At most one JWKS fetch per this many seconds for unknown key ids, so a flood of
    /// forged tokens cannot turn into a flood of requests to auth.
    pub jwks_min_refresh_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token names an unknown signing key")]
    UnknownKey,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<TokenError> for Problem {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => Problem::unauthorized("AUTH_TOKEN_EXPIRED", "The access token has expired."),
            TokenError::UnknownKey | TokenError::Invalid(_) => {
                Problem::unauthorized("AUTH_INVALID_TOKEN", "The access token is not valid.")
            }
            TokenError::KeysUnavailable(_) => {
                Problem::unavailable("AUTH_KEYS_UNAVAILABLE", "Tokens cannot be verified right now; try again.")
            }
        }
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

/// Verifies tokens against the JWKS of the auth service. Share one per process.
pub struct JwtVerifier {
    config: JwtConfig,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    refresh: Mutex<()>,
}

impl JwtVerifier {
    pub fn new(config: JwtConfig) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Arc::new(Self { config, http, cache: RwLock::new(KeyCache::default()), refresh: Mutex::new(()) })
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let (key, alg) = match self.key(&kid).await {
            Some(k) => k,
            None => {
                self.refresh_keys().await?;
                self.key(&kid).await.ok_or(TokenError::UnknownKey)?
            }
        };
        if header.alg != alg {
            return Err(TokenError::Invalid("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(alg);
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.cache.read().await.keys.get(kid).cloned()
    }

    /// Fetches the JWKS unless another task just did (then its result is used).
    async fn refresh_keys(&self) -> Result<(), TokenError> {
        let _guard = self.refresh.lock().await;
        let min = Duration::from_secs(self.config.jwks_min_refresh_secs);
        if let Some(at) = self.cache.read().await.fetched_at {
            if at.elapsed() < min {
                return Ok(());
            }
        }
        let set: JwkSet = self
            .http
            .get(self.config.jwks_url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            // Only asymmetric keys: a symmetric "key" in a JWKS would let anyone sign.
            let alg = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        tracing::info!(keys = keys.len(), "fetched JWKS");
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }
}

/// What a caller may do now: their shops and their role in each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub shops: HashMap<ShopId, ShopRole>,
}

/// Where a service learns whether a caller's session and account are still good and which
/// shops they belong to. Never the token's claims.
#[async_trait::async_trait]
pub trait AccessSource: Send + Sync + 'static {
    /// The caller's access; a 401 problem for a revoked session
    /// ([`AccessDenied::SessionRevoked`]) or an account that is not active. `pending` are
    /// the shops the token named when it was issued: never a grant, only a hint that a
    /// membership may still be on its way to a projection (a token issued right after the
    /// shop was created), worth a short wait for.
    async fn access(&self, user: UserId, session: Option<uuid::Uuid>, pending: &[ShopId]) -> Result<Access, Problem>;
}

/// Why a verified token is no longer honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDenied {
    SessionRevoked,
    AccountDisabled,
}

impl From<AccessDenied> for Problem {
    fn from(d: AccessDenied) -> Self {
        match d {
            AccessDenied::SessionRevoked => {
                Problem::unauthorized("AUTH_SESSION_REVOKED", "This session has ended; sign in again.")
            }
            AccessDenied::AccountDisabled => {
                Problem::unauthorized("AUTH_ACCOUNT_DISABLED", "This account is suspended or deleted.")
            }
        }
    }
}

/// The authenticated caller. Taking it as a handler argument makes the route require a
/// valid `Authorization: Bearer` access token of a live session (401 problem+json
/// otherwise); `shops` comes from the service's [`AccessSource`].
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: Role,
    pub shops: HashMap<ShopId, ShopRole>,
    pub session_id: Option<uuid::Uuid>,
}

impl AuthUser {
    /// The caller as the token names them, with what `access` says they may do.
    pub fn new(claims: &Claims, session_id: Option<uuid::Uuid>, access: Access) -> Self {
        Self { user_id: claims.sub, role: claims.role, shops: access.shops, session_id }
    }

    pub fn is_platform_admin(&self) -> bool {
        matches!(self.role, Role::SuperAdmin | Role::Admin)
    }

    /// The caller's role in `shop` if it is at least `min`; 403 otherwise. Platform admins
    /// are not shop members: endpoints that let them in say so with [`Self::require_shop_role_or_admin`].
    pub fn require_shop_role(&self, shop: ShopId, min: ShopRole) -> Result<ShopRole, Problem> {
        match self.shops.get(&shop) {
            Some(role) if *role >= min => Ok(*role),
            Some(_) => {
                Err(Problem::forbidden("SHOP_ROLE_REQUIRED", format!("This needs the {min:?} role in the shop.")))
            }
            None => Err(Problem::forbidden("SHOP_ACCESS_DENIED", "You are not a member of this shop.")),
        }
    }

    /// Like [`Self::require_shop_role`], but platform admins pass too.
    pub fn require_shop_role_or_admin(&self, shop: ShopId, min: ShopRole) -> Result<(), Problem> {
        if self.is_platform_admin() {
            return Ok(());
        }
        self.require_shop_role(shop, min).map(|_| ())
    }

    /// The shop a request acts in: the one named (the caller must be at least its staff), or
    /// the caller's only shop when none is named.
    pub fn acting_shop(&self, named: Option<ShopId>) -> Result<ShopId, Problem> {
        match named {
            Some(shop) => self.require_shop_role(shop, ShopRole::ShopStaff).map(|_| shop),
            None => {
                let mut shops = self.shops.keys();
                match (shops.next(), shops.next()) {
                    (Some(only), None) => Ok(*only),
                    (None, _) => Err(Problem::forbidden("SHOP_ACCESS_DENIED", "You are not a member of any shop.")),
                    (Some(_), Some(_)) => Err(Problem::field("shopId", "required: you belong to several shops")),
                }
            }
        }
    }

    pub fn require_platform_admin(&self) -> Result<(), Problem> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(Problem::forbidden("ADMIN_REQUIRED", "This needs a platform administrator."))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<Arc<JwtVerifier>>()
            .cloned()
            .ok_or_else(|| Problem::internal(&anyhow::anyhow!("JwtVerifier extension missing")))?;
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("AUTH_REQUIRED", "This needs a Bearer access token."))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::unauthorized("AUTH_REQUIRED", "This needs a Bearer access token."))?;
        let claims = verifier.verify(token).await.map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            Problem::from(e)
        })?;
        let session = match claims.sid.as_deref() {
            None => None,
            Some(sid) => {
                Some(uuid::Uuid::parse_str(sid).map_err(|_| Problem::from(TokenError::Invalid("sid".into())))?)
            }
        };
        let source = parts
            .extensions
            .get::<Arc<dyn AccessSource>>()
            .cloned()
            .ok_or_else(|| Problem::internal(&anyhow::anyhow!("AccessSource extension missing")))?;
        let named: Vec<ShopId> = claims.shops.iter().map(|s| s.id).collect();
        let access = source.access(claims.sub, session, &named).await?;
        Ok(AuthUser::new(&claims, session, access))
    }
}
