//! Sign-up (OTP), sign-in, token refresh, sign-out, password reset and the JWKS.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bus::MessageMeta;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::auth::{OtpRequested, PasswordResetRequested, ShopCreated, UserRegistered};
use contracts::common::{Recipient, ShopBrand};
use platform::auth::{AuthUser, Role};
use platform::http::Json;
use platform::Problem;

use super::{client_ip, AppState};
use crate::crypto;
use crate::domain::{self, Email, Password};
use crate::error::AuthError;
use crate::session::{self, TokenResponse};

pub const OTP_TTL_SECS: f64 = 300.0;
pub const OTP_MAX_ATTEMPTS: i32 = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate_otp))
        .routes(routes!(register))
        .routes(routes!(register_customer))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(jwks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtpRequest {
    email: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtpSent {
    message: &'static str,
    expires_at: DateTime<Utc>,
    resend_after_secs: u64,
}

/// E-mails a 6-digit sign-up code (5 minutes, 5 tries).
#[utoipa::path(post, path = "/auth/otp/generate", tag = "auth", request_body = OtpRequest, responses(
    (status = 201, body = OtpSent), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn generate_otp(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<OtpRequest>,
) -> Result<(StatusCode, Json<OtpSent>), AuthError> {
    let email = Email::parse(&req.email)?;
    let name = domain::name("name", &req.name)?;
    let key = email.normalized();
    s.limiter.hit(&format!("otp-ip:{}", client_ip(&headers)), s.limits.otp_per_ip).await?;
    s.limiter.hit(&format!("otp-email:{key}"), s.limits.otp_per_email).await?;

    let mut tx = s.pool.begin().await?;
    let taken: bool = sqlx::query_scalar("select exists(select 1 from users where lower(email) = $1)")
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
    if taken {
        return Err(AuthError::EmailTaken);
    }
    let resend = s.limits.otp_resend_after.as_secs_f64();
    // Whole seconds left before a resend is allowed (rounded up), if any.
    let wait = sqlx::query_scalar!(
        r#"select ceil(extract(epoch from (last_sent_at + make_interval(secs => $2) - now())))::bigint as "wait!"
             from auth.otps where email = $1 for update"#,
        key,
        resend
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(w) = wait.and_then(|w| u64::try_from(w).ok()).filter(|w| *w > 0) {
        return Err(AuthError::OtpResendTooSoon(w));
    }
    let code = crypto::otp_code();
    // A resend replaces the old code and its attempt count: no stale-row lockout.
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into otps (email, code_hash, name, attempts, expires_at, last_sent_at)
         values ($1, $2, $3, 0, now() + make_interval(secs => $4), now())
         on conflict (email) do update set code_hash = excluded.code_hash, name = excluded.name, attempts = 0,
                expires_at = excluded.expires_at, last_sent_at = excluded.last_sent_at
         returning expires_at",
    )
    .bind(&key)
    .bind(crypto::otp_digest(&key, &code))
    .bind(&name)
    .bind(OTP_TTL_SECS)
    .fetch_one(&mut *tx)
    .await?;
    let event = OtpRequested { to: Recipient { email: email.as_str().to_owned(), name: Some(name) }, code, expires_at };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    tx.commit().await?;
    // 201: a code was created (the first system's clients check for exactly that).
    Ok((
        StatusCode::CREATED,
        Json(OtpSent {
            message: "A code was sent to your e-mail.",
            expires_at,
            resend_after_secs: s.limits.otp_resend_after.as_secs(),
        }),
    ))
}

/// Checks the code inside `tx`. A wrong code's attempt is committed by the caller even though
/// the request fails, so attempts really run out.
async fn check_otp(conn: &mut PgConnection, email_key: &str, code: &str) -> Result<(), AuthError> {
    let row: Option<(Vec<u8>, i32, bool)> =
        sqlx::query_as("select code_hash, attempts, expires_at <= now() from otps where email = $1 for update")
            .bind(email_key)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((hash, attempts, expired)) = row else { return Err(AuthError::OtpExpired) };
    if attempts >= OTP_MAX_ATTEMPTS {
        return Err(AuthError::OtpAttemptsExceeded);
    }
    if expired {
        return Err(AuthError::OtpExpired);
    }
    if !crypto::same(&hash, &crypto::otp_digest(email_key, code.trim())) {
        sqlx::query("update otps set attempts = attempts + 1 where email = $1")
            .bind(email_key)
            .execute(&mut *conn)
            .await?;
        return Err(AuthError::OtpInvalid);
    }
    sqlx::query("delete from otps where email = $1").bind(email_key).execute(&mut *conn).await?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    name: String,
    email: String,
    password: String,
    otp: String,
    /// With `address`, the shop this owner opens. Without both (and no other shop field)
    /// this is a customer sign-up, as the first system's customer app sends it.
    business_name: Option<String>,
    address: Option<String>,
    contact_phone: Option<String>,
    dob: Option<NaiveDate>,
    profile_image: Option<String>,
    contact_number: Option<String>,
    shop_logo: Option<String>,
    shop_banner: Option<String>,
    remember_me: Option<bool>,
}

/// A user who proved their e-mail with a sign-up code.
struct NewUser<'a> {
    email: &'a Email,
    name: &'a str,
    hash: &'a str,
    role: Role,
    image: Option<String>,
    contact: Option<String>,
    dob: Option<NaiveDate>,
}

/// Inserts the user; an e-mail taken meanwhile is a 409 from the unique index, not a race.
async fn insert_user(conn: &mut PgConnection, u: &NewUser<'_>) -> Result<Uuid, AuthError> {
    let user_id = Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, name, password_hash, role, email_verified, profile_image, contact_number, dob)
         values ($1, $2, $3, $4, $5, true, $6, $7, $8)",
    )
    .bind(user_id)
    .bind(u.email.as_str())
    .bind(u.name)
    .bind(u.hash)
    .bind(u.role)
    .bind(&u.image)
    .bind(&u.contact)
    .bind(u.dob)
    .execute(conn)
    .await
    .map_err(unique_email)?;
    Ok(user_id)
}

fn unique_email(e: sqlx::Error) -> AuthError {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("users_email_key") => AuthError::EmailTaken,
        _ => e.into(),
    }
}

/// Shop-owner sign-up: the user, the shop and the owner membership in one transaction. A
/// body with no shop in it signs a customer up instead (`/auth/customer/register`).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 429, body = Problem, description = "Too many attempts from this address or for this account"),
    (status = 201, body = TokenResponse), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn register(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), AuthError> {
    let shop_given = [&req.business_name, &req.address, &req.contact_phone, &req.shop_logo, &req.shop_banner]
        .iter()
        .any(|f| f.is_some());
    if !shop_given {
        let customer = CustomerRegisterRequest {
            name: req.name,
            email: req.email,
            password: req.password,
            otp: req.otp,
            contact_number: req.contact_number,
            profile_image: req.profile_image,
            dob: req.dob,
            remember_me: req.remember_me,
        };
        return sign_up_customer(&s, &headers, customer).await;
    }
    let email = Email::parse(&req.email)?;
    let name = domain::name("name", &req.name)?;
    let business = domain::name("businessName", req.business_name.as_deref().unwrap_or_default())?;
    let address = domain::optional_text("address", req.address.as_deref(), 300)?
        .ok_or_else(|| AuthError::field("address", "required"))?;
    let phone = domain::optional_text("contactPhone", req.contact_phone.as_deref(), 40)?;
    let contact = domain::optional_text("contactNumber", req.contact_number.as_deref(), 40)?;
    let image = domain::optional_text("profileImage", req.profile_image.as_deref(), 500)?;
    let logo = domain::optional_text("shopLogo", req.shop_logo.as_deref(), 500)?;
    let banner = domain::optional_text("shopBanner", req.shop_banner.as_deref(), 500)?;
    let password = Password::parse(&req.password)?;
    let key = email.normalized();
    let hash = crypto::hash_password(password.into_inner()).await?;

    let mut tx = s.pool.begin().await?;
    if let Err(e) = check_otp(&mut tx, &key, &req.otp).await {
        tx.commit().await?; // keep the counted attempt
        return Err(e);
    }
    let user_id = insert_user(
        &mut tx,
        &NewUser {
            email: &email,
            name: &name,
            hash: &hash,
            role: Role::ShopOwner,
            image,
            contact,
            dob: platform::validate::date("dob", req.dob)?,
        },
    )
    .await?;
    let shop_id = Uuid::now_v7();
    sqlx::query(
        "insert into shops (shop_id, business_name, address, contact_phone, shop_logo, shop_banner, owner_id)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(shop_id)
    .bind(&business)
    .bind(&address)
    .bind(&phone)
    .bind(&logo)
    .bind(&banner)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("insert into memberships (shop_id, user_id, role) values ($1, $2, 'SHOP_OWNER')")
        .bind(shop_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update users set default_shop_id = $2 where user_id = $1")
        .bind(user_id)
        .bind(shop_id)
        .execute(&mut *tx)
        .await?;
    let m = MessageMeta::from_headers(&headers);
    let now = Utc::now();
    bus::enqueue(
        &mut tx,
        &UserRegistered {
            user_id,
            email: email.as_str().into(),
            name: name.clone(),
            role: Role::ShopOwner.as_str().into(),
            registered_at: now,
        },
        &m,
    )
    .await?;
    let shop = ShopBrand { id: shop_id, name: business, logo_url: logo, address: Some(address), contact_phone: phone };
    let owner = Recipient { email: email.as_str().into(), name: Some(name) };
    bus::enqueue(
        &mut tx,
        &ShopCreated { shop, owner, owner_id: user_id, currency: "LKR".into(), allow_credit: false, created_at: now },
        &m,
    )
    .await?;
    tx.commit().await?;
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let tokens = session::start(&s.pool, &s.keys, &s.tokens, user_id, req.remember_me.unwrap_or(true), ua).await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerRegisterRequest {
    name: String,
    email: String,
    password: String,
    otp: String,
    contact_number: Option<String>,
    profile_image: Option<String>,
    dob: Option<NaiveDate>,
    remember_me: Option<bool>,
}

/// Customer sign-up (same OTP check, no shop).
#[utoipa::path(post, path = "/auth/customer/register", tag = "auth", request_body = CustomerRegisterRequest, responses(
    (status = 429, body = Problem, description = "Too many attempts from this address or for this account"),
    (status = 201, body = TokenResponse), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn register_customer(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<CustomerRegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), AuthError> {
    sign_up_customer(&s, &headers, req).await
}

async fn sign_up_customer(
    s: &AppState,
    headers: &HeaderMap,
    req: CustomerRegisterRequest,
) -> Result<(StatusCode, Json<TokenResponse>), AuthError> {
    let email = Email::parse(&req.email)?;
    let name = domain::name("name", &req.name)?;
    let contact = domain::optional_text("contactNumber", req.contact_number.as_deref(), 40)?;
    let image = domain::optional_text("profileImage", req.profile_image.as_deref(), 500)?;
    let password = Password::parse(&req.password)?;
    let key = email.normalized();
    let hash = crypto::hash_password(password.into_inner()).await?;
    let mut tx = s.pool.begin().await?;
    if let Err(e) = check_otp(&mut tx, &key, &req.otp).await {
        tx.commit().await?;
        return Err(e);
    }
    let user_id = insert_user(
        &mut tx,
        &NewUser {
            email: &email,
            name: &name,
            hash: &hash,
            role: Role::Customer,
            image,
            contact,
            dob: platform::validate::date("dob", req.dob)?,
        },
    )
    .await?;
    let event = UserRegistered {
        user_id,
        email: email.as_str().into(),
        name,
        role: Role::Customer.as_str().into(),
        registered_at: Utc::now(),
    };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(headers)).await?;
    tx.commit().await?;
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let tokens = session::start(&s.pool, &s.keys, &s.tokens, user_id, req.remember_me.unwrap_or(true), ua).await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// 30-day session when true (default), 7 days otherwise.
    remember_me: Option<bool>,
}

/// Sign in. Unknown e-mail and wrong password answer alike, in the same time.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, AuthError> {
    let key = req.email.trim().to_lowercase();
    s.limiter.hit(&format!("login-ip:{}", client_ip(&headers)), s.limits.login_per_ip).await?;
    s.limiter.hit(&format!("login-email:{key}"), s.limits.login_per_email).await?;
    if req.password.len() > 1024 {
        return Err(AuthError::InvalidCredentials);
    }
    let row = sqlx::query!("select user_id, password_hash, status from auth.users where lower(email) = $1", key)
        .fetch_optional(&s.pool)
        .await?;
    let (user_id, hash, status) = match row {
        Some(r) => (Some(r.user_id), r.password_hash, r.status),
        None => (None, None, String::new()),
    };
    if !crypto::verify_password(req.password, hash).await {
        return Err(AuthError::InvalidCredentials);
    }
    let user_id = user_id.ok_or(AuthError::InvalidCredentials)?;
    if status != "ACTIVE" {
        return Err(AuthError::AccountDisabled);
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    Ok(Json(session::start(&s.pool, &s.keys, &s.tokens, user_id, req.remember_me.unwrap_or(true), ua).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

/// The refresh token from the body, or as a Bearer token.
fn presented_refresh(headers: &HeaderMap, body: Option<RefreshRequest>) -> Option<String> {
    body.and_then(|b| b.refresh_token).filter(|t| !t.is_empty()).or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && !t.contains('.')) // a JWT is not a refresh token
    })
}

/// The body is optional here (the token may come as a Bearer header instead).
fn optional_body(body: &[u8]) -> Result<Option<RefreshRequest>, AuthError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            AuthError::Problem(Problem::bad_request("MALFORMED_JSON", "The body is not valid JSON."))
        } else {
            AuthError::field("body", &e.to_string())
        }
    })
}

/// Rotates the refresh token. A reused (already rotated) token closes its whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 429, body = Problem, description = "Too many attempts from this address or for this account"),
    (status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<TokenResponse>, AuthError> {
    let token = presented_refresh(&headers, optional_body(&body)?).ok_or(AuthError::RefreshInvalid)?;
    Ok(Json(session::refresh(&s.pool, &s.keys, &s.tokens, &token).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    message: &'static str,
}

/// Signs out this session: the one its refresh token belongs to (in the body or as a Bearer
/// token), or the one a Bearer access token names (`sid`), as the first system's clients
/// send it. Answers 201 whether or not there was anything left to end.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 201, body = SignedOut)))]
#[tracing::instrument(skip_all)]
async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    access: Result<AuthUser, Problem>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SignedOut>), AuthError> {
    if let Some(token) = presented_refresh(&headers, optional_body(&body)?) {
        session::revoke_by_token(&s.pool, &token).await?;
    }
    // An access token that no longer verifies has nothing to sign out: no error either.
    if let Ok(AuthUser { user_id, session_id: Some(session_id), .. }) = access {
        let mut tx = s.pool.begin().await?;
        session::revoke_session(&mut tx, user_id.0, session_id, "logout").await?;
        tx.commit().await?;
    }
    Ok((StatusCode::CREATED, Json(SignedOut { message: "Signed out." })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOut {
    sessions: u64,
}

/// Signs out every session of the caller ("log out everywhere").
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", responses((status = 200, body = LoggedOut), (status = 401, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn logout_all(State(s): State<AppState>, user: AuthUser) -> Result<Json<LoggedOut>, AuthError> {
    let mut tx = s.pool.begin().await?;
    let n = session::revoke_all(&mut tx, user.user_id.0, "logout everywhere").await?;
    tx.commit().await?;
    Ok(Json(LoggedOut { sessions: n }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgotRequest {
    email: String,
    /// Sent by the first system's clients; accepted and ignored.
    #[schema(value_type = Option<String>)]
    #[allow(dead_code, reason = "accepted so the first clients' request fits; never used")]
    use_case: Option<serde::de::IgnoredAny>,
    /// Sent by the first system's clients; accepted and ignored.
    #[schema(value_type = Option<String>)]
    #[allow(dead_code, reason = "accepted so the first clients' request fits; never used")]
    role: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    message: &'static str,
}

const RESET_TTL_SECS: f64 = 3_600.0;

/// E-mails a single-use reset link. Answers the same whether or not the account exists.
#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", request_body = ForgotRequest, responses(
    (status = 202, body = Accepted), (status = 422, body = Problem), (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn forgot_password(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<ForgotRequest>,
) -> Result<(StatusCode, Json<Accepted>), AuthError> {
    let email = Email::parse(&req.email)?;
    s.limiter.hit(&format!("otp-ip:{}", client_ip(&headers)), s.limits.otp_per_ip).await?;
    let answer =
        (StatusCode::ACCEPTED, Json(Accepted { message: "If the account exists, a reset link is on its way." }));
    // Per e-mail the brake is silent: answering differently would tell that it exists.
    match s.limiter.hit(&format!("reset-email:{}", email.normalized()), s.limits.otp_per_email).await {
        Err(AuthError::RateLimited(_)) => return Ok(answer),
        other => other?,
    }
    let mut tx = s.pool.begin().await?;
    let user: Option<(Uuid, String, String)> =
        sqlx::query_as("select user_id, email, name from users where lower(email) = $1 and status = 'ACTIVE'")
            .bind(email.normalized())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((user_id, address, name)) = user {
        let token = crypto::random_token();
        let expires_at: DateTime<Utc> = sqlx::query_scalar(
            "insert into one_time_tokens (token_hash, purpose, user_id, expires_at)
             values ($1, 'PASSWORD_RESET', $2, now() + make_interval(secs => $3)) returning expires_at",
        )
        .bind(crypto::digest(&token))
        .bind(user_id)
        .bind(RESET_TTL_SECS)
        .fetch_one(&mut *tx)
        .await?;
        let mut url = s.app_url.join("/reset-password").map_err(anyhow::Error::from)?;
        url.query_pairs_mut().append_pair("token", &token);
        let event = PasswordResetRequested {
            to: Recipient { email: address, name: Some(name) },
            reset_url: url.to_string(),
            expires_at,
        };
        bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    }
    tx.commit().await?;
    Ok(answer)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    token: String,
    password: String,
}

/// Sets a new password with a reset token; every session of the account is closed.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", request_body = ResetRequest, responses(
    (status = 429, body = Problem, description = "Too many attempts from this address or for this account"),
    (status = 200, body = Accepted), (status = 400, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn reset_password(State(s): State<AppState>, Json(req): Json<ResetRequest>) -> Result<Json<Accepted>, AuthError> {
    let password = Password::parse(&req.password)?;
    let hash = crypto::hash_password(password.into_inner()).await?;
    let mut tx = s.pool.begin().await?;
    let user: Option<Uuid> = sqlx::query_scalar(
        "update one_time_tokens set used_at = now()
          where token_hash = $1 and purpose = 'PASSWORD_RESET' and used_at is null and expires_at > now()
         returning user_id",
    )
    .bind(crypto::digest(req.token.trim()))
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let user_id = user.ok_or(AuthError::TokenInvalid)?;
    sqlx::query("update users set password_hash = $2 where user_id = $1")
        .bind(user_id)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    session::revoke_all(&mut tx, user_id, "password reset").await?;
    tx.commit().await?;
    Ok(Json(Accepted { message: "Password changed; sign in again." }))
}

/// The public keys access tokens are signed with.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, description = "JWK set")))]
#[tracing::instrument(skip_all)]
async fn jwks(State(s): State<AppState>) -> Result<impl IntoResponse, AuthError> {
    let set = s.keys.jwks().await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(set)))
}
