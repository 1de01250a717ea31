//! The access-token extractor against a real JWKS endpoint: every way a token can be
//! wrong answers 401 problem+json; shop role checks answer 403 and come from the service's
//! access source, never from the token's claims; a revoked session or disabled account is 401.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use platform::auth::{Access, AccessDenied, AccessSource, AuthUser, Claims, JwtVerifier, Role, ShopRole};
use platform::http::{Path, Readiness, Shell};
use platform::ids::ShopId;
use platform::ids::UserId;
use platform::metrics::Metrics;
use platform::Problem;
use testkit::jwt::{claims, JwksServer, SigningKey};

/// The test's stand-in for a service's projection: memberships granted by the test, and
/// sessions it revoked.
#[derive(Default)]
struct Grants {
    shops: HashMap<UserId, HashMap<ShopId, ShopRole>>,
    revoked: HashSet<uuid::Uuid>,
}
static GRANTS: LazyLock<Mutex<Grants>> = LazyLock::new(Mutex::default);

struct TestAccess;

#[async_trait::async_trait]
impl AccessSource for TestAccess {
    async fn access(&self, user: UserId, session: Option<uuid::Uuid>, _: &[ShopId]) -> Result<Access, Problem> {
        let g = GRANTS.lock().unwrap();
        if session.is_some_and(|s| g.revoked.contains(&s)) {
            return Err(AccessDenied::SessionRevoked.into());
        }
        Ok(Access { shops: g.shops.get(&user).cloned().unwrap_or_default() })
    }
}

/// Claims whose shops are also granted in the access source.
fn member(role: Role, shops: &[(ShopId, ShopRole)]) -> Claims {
    let c = claims(role, shops, 600);
    GRANTS.lock().unwrap().shops.insert(c.sub, shops.iter().copied().collect());
    c
}

async fn me(user: AuthUser) -> String {
    user.user_id.to_string()
}

async fn owner_only(user: AuthUser, Path(shop): Path<ShopId>) -> Result<&'static str, Problem> {
    user.require_shop_role(shop, ShopRole::ShopOwner)?;
    Ok("owner")
}

async fn staff_or_owner(user: AuthUser, Path(shop): Path<ShopId>) -> Result<&'static str, Problem> {
    user.require_shop_role(shop, ShopRole::ShopStaff)?;
    Ok("member")
}

fn app(jwks: &JwksServer) -> axum::Router {
    let api = OpenApiRouter::new()
        .route("/me", axum::routing::get(me))
        .route("/shops/{shop}/owner", axum::routing::get(owner_only))
        .route("/shops/{shop}/staff", axum::routing::get(staff_or_owner));
    platform::http::router(
        api,
        Shell {
            service: "test",
            metrics: Metrics::new("test"),
            readiness: Readiness::default(),
            verifier: JwtVerifier::new(jwks.config()),
            access: Arc::new(TestAccess),
            body_limit: 1 << 20,
        },
    )
}

async fn call(app: &axum::Router, path: &str, token: Option<&str>) -> (StatusCode, String, serde_json::Value) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, ctype, json)
}

#[tokio::test]
async fn token_checks_answer_401_problem_json() {
    let key = SigningKey::generate("k1");
    let other = SigningKey::generate("k1-impostor");
    let jwks = JwksServer::start(&[&key]).await;
    let app = app(&jwks);

    let valid = key.sign(&claims(Role::Customer, &[], 600));
    let expired = key.sign(&claims(Role::Customer, &[], -600));
    let wrong_signature = other.sign_with_kid(&claims(Role::Customer, &[], 600), "k1");
    let mut wrong_aud = claims(Role::Customer, &[], 600);
    wrong_aud.aud = "someone-else".into();
    let wrong_aud = key.sign(&wrong_aud);
    let mut wrong_iss = claims(Role::Customer, &[], 600);
    wrong_iss.iss = "http://evil.example/auth".into();
    let wrong_iss = key.sign(&wrong_iss);

    let cases: &[(&str, Option<&str>, StatusCode, &str)] = &[
        ("valid", Some(&valid), StatusCode::OK, ""),
        ("missing header", None, StatusCode::UNAUTHORIZED, "AUTH_REQUIRED"),
        ("empty bearer", Some(""), StatusCode::UNAUTHORIZED, "AUTH_REQUIRED"),
        ("garbage", Some("not.a.jwt"), StatusCode::UNAUTHORIZED, "AUTH_INVALID_TOKEN"),
        ("expired", Some(&expired), StatusCode::UNAUTHORIZED, "AUTH_TOKEN_EXPIRED"),
        ("wrong signature", Some(&wrong_signature), StatusCode::UNAUTHORIZED, "AUTH_INVALID_TOKEN"),
        ("wrong audience", Some(&wrong_aud), StatusCode::UNAUTHORIZED, "AUTH_INVALID_TOKEN"),
        ("wrong issuer", Some(&wrong_iss), StatusCode::UNAUTHORIZED, "AUTH_INVALID_TOKEN"),
    ];
    for (name, token, status, code) in cases {
        let (got, ctype, body) = call(&app, "/me", *token).await;
        assert_eq!(got, *status, "case {name}: {body}");
        if !code.is_empty() {
            assert_eq!(ctype, "application/problem+json", "case {name}");
            assert_eq!(body["code"], *code, "case {name}: {body}");
            assert_eq!(body["status"], 401, "case {name}");
        }
    }
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks() {
    let k1 = SigningKey::generate("k1");
    let k2 = SigningKey::generate("k2");
    let jwks = JwksServer::start(&[&k1]).await;
    let app = app(&jwks);

    let (status, _, _) = call(&app, "/me", Some(&k1.sign(&claims(Role::Customer, &[], 600)))).await;
    assert_eq!(status, StatusCode::OK);
    let fetched = jwks.fetches();
    assert_eq!(fetched, 1, "first token fetches the JWKS once");

    // A key auth has not published yet: re-fetched, still unknown, refused.
    let token2 = k2.sign(&claims(Role::Customer, &[], 600));
    let (status, _, body) = call(&app, "/me", Some(&token2)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(jwks.fetches(), fetched + 1, "unknown kid triggers a re-fetch");

    // Auth rotates: k2 is published; the same token now verifies after one more fetch.
    jwks.publish(&k2);
    let (status, _, body) = call(&app, "/me", Some(&token2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwks.fetches(), fetched + 2);

    // Known keys are served from the cache.
    let (status, _, _) = call(&app, "/me", Some(&k1.sign(&claims(Role::Customer, &[], 600)))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks.fetches(), fetched + 2, "known kid needs no fetch");
}

#[tokio::test]
async fn shop_roles_are_checked_per_shop() {
    let key = SigningKey::generate("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let app = app(&jwks);
    let (shop_a, shop_b) = (ShopId::new(), ShopId::new());
    let owner_a = key.sign(&member(Role::ShopOwner, &[(shop_a, ShopRole::ShopOwner)]));
    let staff_a = key.sign(&member(Role::ShopStaff, &[(shop_a, ShopRole::ShopStaff)]));
    let admin = key.sign(&member(Role::Admin, &[]));
    // The claims say owner of A, the access source knows nothing of it: no access.
    let claims_only = key.sign(&claims(Role::ShopOwner, &[(shop_a, ShopRole::ShopOwner)], 600));

    let cases = [
        ("owner A -> owner route A", &owner_a, shop_a, "owner", StatusCode::OK, ""),
        ("owner A -> staff route A", &owner_a, shop_a, "staff", StatusCode::OK, ""),
        ("staff A -> staff route A", &staff_a, shop_a, "staff", StatusCode::OK, ""),
        ("staff A -> owner route A", &staff_a, shop_a, "owner", StatusCode::FORBIDDEN, "SHOP_ROLE_REQUIRED"),
        ("owner A -> owner route B", &owner_a, shop_b, "owner", StatusCode::FORBIDDEN, "SHOP_ACCESS_DENIED"),
        ("staff A -> staff route B", &staff_a, shop_b, "staff", StatusCode::FORBIDDEN, "SHOP_ACCESS_DENIED"),
        ("admin -> staff route A", &admin, shop_a, "staff", StatusCode::FORBIDDEN, "SHOP_ACCESS_DENIED"),
        ("claims only -> staff route A", &claims_only, shop_a, "staff", StatusCode::FORBIDDEN, "SHOP_ACCESS_DENIED"),
    ];
    for (name, token, shop, route, status, code) in cases {
        let (got, ctype, body) = call(&app, &format!("/shops/{shop}/{route}"), Some(token)).await;
        assert_eq!(got, status, "case {name}: {body}");
        if !code.is_empty() {
            assert_eq!(ctype, "application/problem+json", "case {name}");
            assert_eq!(body["code"], code, "case {name}");
        }
    }
    // A malformed shop id is a problem+json 404, never a 500.
    let (got, ctype, _) = call(&app, "/shops/not-a-uuid/owner", Some(&owner_a)).await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");
}

#[tokio::test]
async fn shell_endpoints_answer() {
    let key = SigningKey::generate("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let app = app(&jwks);
    let (status, _, body) = call(&app, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "up");
    let (status, _, body) = call(&app, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/health"].is_object(), "{body}");
    assert!(body["paths"]["/ready"].is_object(), "{body}");
    let (status, ctype, body) = call(&app, "/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");
    assert_eq!(body["code"], "NOT_FOUND");
    // /metrics counts the requests above under their route templates.
    let res = app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("cashvio_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/health\""), "{text}");
    assert!(text.contains("route=\"<unmatched>\""), "{text}");
    assert!(text.contains("cashvio_http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn a_revoked_session_is_401_whatever_the_token_says() {
    let key = SigningKey::generate("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let app = app(&jwks);
    let mut c = member(Role::ShopOwner, &[]);
    let session = uuid::Uuid::new_v4();
    c.sid = Some(session.to_string());
    let token = key.sign(&c);
    let (status, _, _) = call(&app, "/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    GRANTS.lock().unwrap().revoked.insert(session);
    let (status, ctype, body) = call(&app, "/me", Some(&token)).await;
    assert_eq!((status, ctype.as_str()), (StatusCode::UNAUTHORIZED, "application/problem+json"));
    assert_eq!(body["code"], "AUTH_SESSION_REVOKED");
    c.sid = Some("not-a-uuid".into());
    let (status, _, body) = call(&app, "/me", Some(&key.sign(&c))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("AUTH_INVALID_TOKEN")));
}
