//! Signing keys and a JWKS server, so tests mint access tokens exactly as the auth service
//! will and services verify them over HTTP as in production.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use platform::auth::{Claims, Role, ShopClaim, ShopRole};
use platform::ids::{ShopId, UserId};

pub const ISSUER: &str = "http://cashvio.test/auth";
pub const AUDIENCE: &str = "cashvio";

/// An Ed25519 signing key with its key id.
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let der = key.to_pkcs8_der().expect("pkcs8 encoding");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: key.verifying_key().to_bytes(),
        }
    }

    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public),
        })
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_with_kid(claims, &self.kid)
    }

    /// Signs with this key but names another key id (a forged or mixed-up token).
    pub fn sign_with_kid(&self, claims: &Claims, kid: &str) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }
}

/// Claims for `role` with the given shop memberships, valid for `ttl_secs` (negative:
/// already expired).
pub fn claims(role: Role, shops: &[(ShopId, ShopRole)], ttl_secs: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: UserId::new(),
        role,
        shops: shops.iter().map(|(id, role)| ShopClaim { id: *id, role: *role }).collect(),
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        exp: now + ttl_secs,
        iat: now - 1,
        sid: None,
    }
}

/// Claims of a given user (a customer whose id the test already knows).
pub fn claims_for(user: uuid::Uuid, role: Role, ttl_secs: i64) -> Claims {
    let mut c = claims(role, &[], ttl_secs);
    c.sub = UserId(user);
    c
}

/// Serves `GET /.well-known/jwks.json` with a key set the test can change, counting fetches.
pub struct JwksServer {
    pub addr: SocketAddr,
    keys: Arc<RwLock<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let set = Arc::new(RwLock::new(keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (s, f) = (set.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let keys = s.read().map(|k| k.clone()).unwrap_or_default();
                    axum::Json(json!({ "keys": keys }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind jwks");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, keys: set, fetches }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/.well-known/jwks.json", self.addr)).expect("url")
    }

    pub fn publish(&self, key: &SigningKey) {
        if let Ok(mut k) = self.keys.write() {
            k.push(key.jwk());
        }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The verifier configuration pointing at this server.
    pub fn config(&self) -> platform::auth::JwtConfig {
        platform::auth::JwtConfig {
            jwks_url: self.url(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks_min_refresh_secs: 0,
        }
    }
}
