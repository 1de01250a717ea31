//! `GET /auth/google/login`, `GET /auth/google/callback`, `POST /auth/google/exchange`.
//! Tokens never travel in a URL: the callback hands the client app a one-time code (60 s)
//! that it exchanges for tokens.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bus::MessageMeta;
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::auth::UserRegistered;
use platform::http::{Json, Query};
use platform::Problem;

use super::AppState;
use crate::crypto;
use crate::error::AuthError;
use crate::session::{self, TokenResponse};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(google_login)).routes(routes!(google_callback)).routes(routes!(google_exchange))
}

/// Starts Google sign-in: redirects to the provider with state, PKCE and nonce.
#[utoipa::path(get, path = "/auth/google/login", tag = "auth", responses((status = 302, description = "to Google"), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn google_login(State(s): State<AppState>) -> Result<Response, AuthError> {
    let google = s.google.as_ref().ok_or(AuthError::GoogleDisabled)?;
    let url = google.authorize_url(&s.pool).await?;
    // 302, as the first system answered and its clients expect (axum's `Redirect::to` is 303).
    Ok((StatusCode::FOUND, [(header::LOCATION, url.as_str())]).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

const EXCHANGE_TTL_SECS: f64 = 60.0;

/// Google sends the browser back here; it is redirected to the app with a one-time code.
#[utoipa::path(get, path = "/auth/google/callback", tag = "auth", params(CallbackQuery), responses(
    (status = 302, description = "to the app with a one-time code"), (status = 400, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn google_callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AuthError> {
    let google = s.google.as_ref().ok_or(AuthError::GoogleDisabled)?;
    if let Some(e) = q.error {
        return Err(AuthError::Google(format!("the provider answered {e}")));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(AuthError::Google("code and state are required".into()));
    };
    let who = google.complete(&s.pool, &code, &state).await?;

    let mut tx = s.pool.begin().await?;
    let existing: Option<Uuid> = sqlx::query_scalar("select user_id from users where google_sub = $1 or lower(email) = lower($2) order by (google_sub = $1) desc nulls last limit 1")
        .bind(&who.sub)
        .bind(&who.email)
        .fetch_optional(&mut *tx)
        .await?;
    let user_id = match existing {
        Some(id) => {
            // Link by verified e-mail (first Google sign-in of an existing account).
            sqlx::query(
                "update users set google_sub = $2, email_verified = true where user_id = $1 and google_sub is null",
            )
            .bind(id)
            .bind(&who.sub)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            let name = who.name.clone().unwrap_or_else(|| who.email.split('@').next().unwrap_or("Customer").to_owned());
            sqlx::query(
                "insert into users (user_id, email, name, role, email_verified, google_sub) values ($1, $2, $3, 'CUSTOMER', true, $4)",
            )
            .bind(id)
            .bind(&who.email)
            .bind(&name)
            .bind(&who.sub)
            .execute(&mut *tx)
            .await?;
            let event = UserRegistered {
                user_id: id,
                email: who.email.clone(),
                name,
                role: platform::auth::Role::Customer.as_str().into(),
                registered_at: Utc::now(),
            };
            bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
            id
        }
    };
    let hand_over = crypto::random_token();
    sqlx::query(
        "insert into one_time_tokens (token_hash, purpose, user_id, expires_at)
         values ($1, 'GOOGLE_EXCHANGE', $2, now() + make_interval(secs => $3))",
    )
    .bind(crypto::digest(&hand_over))
    .bind(user_id)
    .bind(EXCHANGE_TTL_SECS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut url = s.app_url.join("/auth/google/complete").map_err(anyhow::Error::from)?;
    url.query_pairs_mut().append_pair("code", &hand_over);
    Ok((StatusCode::FOUND, [(header::LOCATION, url.to_string()), (header::CACHE_CONTROL, "no-store".into())])
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    code: String,
}

/// Trades the one-time code from the callback for tokens (once).
#[utoipa::path(post, path = "/auth/google/exchange", tag = "auth", request_body = ExchangeRequest, responses(
    (status = 429, body = Problem, description = "Too many attempts from this address or for this account"),
    (status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn google_exchange(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<ExchangeRequest>,
) -> Result<Json<TokenResponse>, AuthError> {
    let user: Option<Uuid> = sqlx::query_scalar(
        "update one_time_tokens set used_at = now()
          where token_hash = $1 and purpose = 'GOOGLE_EXCHANGE' and used_at is null and expires_at > now()
         returning user_id",
    )
    .bind(crypto::digest(req.code.trim()))
    .fetch_optional(&s.pool)
    .await?
    .flatten();
    let user_id = user.ok_or(AuthError::TokenInvalid)?;
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    Ok(Json(session::start(&s.pool, &s.keys, &s.tokens, user_id, true, ua).await?))
}
