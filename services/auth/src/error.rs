//! The auth service's errors, each with its stable code. Internal failures become an
//! opaque 500, logged once (in `Problem::internal`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use platform::error::FieldError;
use platform::Problem;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("e-mail already registered")]
    EmailTaken,
    #[error("wrong code")]
    OtpInvalid,
    #[error("code expired or never sent")]
    OtpExpired,
    #[error("too many wrong codes")]
    OtpAttemptsExceeded,
    #[error("too soon for another code")]
    OtpResendTooSoon(u64),
    #[error("rate limited")]
    RateLimited(u64),
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("account suspended or inactive")]
    AccountDisabled,
    #[error("refresh token invalid")]
    RefreshInvalid,
    #[error("refresh token reused")]
    RefreshReused,
    #[error("token invalid or expired")]
    TokenInvalid,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str, &'static str),
    #[error("google sign-in failed: {0}")]
    Google(String),
    #[error("google sign-in is not configured")]
    GoogleDisabled,
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Internal(e.into())
    }
}

impl AuthError {
    pub fn field(field: &str, message: &str) -> Self {
        AuthError::Validation(vec![FieldError { field: field.to_owned(), message: message.to_owned() }])
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Problem {
        match e {
            AuthError::Validation(errors) => Problem::validation(errors),
            AuthError::EmailTaken => {
                Problem::conflict("AUTH_EMAIL_TAKEN", "An account with this e-mail already exists.")
            }
            AuthError::OtpInvalid => Problem::bad_request("AUTH_OTP_INVALID", "The code is not right."),
            AuthError::OtpExpired => {
                Problem::bad_request("AUTH_OTP_EXPIRED", "The code has expired; ask for a new one.")
            }
            AuthError::OtpAttemptsExceeded => {
                Problem::bad_request("AUTH_OTP_ATTEMPTS_EXCEEDED", "Too many wrong codes; ask for a new one.")
            }
            AuthError::OtpResendTooSoon(secs) => {
                let mut p = Problem::too_many_requests("AUTH_OTP_RESEND_TOO_SOON", secs);
                p.detail = format!("A code was just sent; ask again in {secs} s.");
                p
            }
            AuthError::RateLimited(secs) => Problem::too_many_requests("RATE_LIMITED", secs),
            AuthError::InvalidCredentials => {
                Problem::unauthorized("AUTH_INVALID_CREDENTIALS", "Wrong e-mail or password.")
            }
            AuthError::AccountDisabled => {
                Problem::forbidden("AUTH_ACCOUNT_DISABLED", "This account is suspended or inactive.")
            }
            AuthError::RefreshInvalid => Problem::unauthorized("AUTH_REFRESH_INVALID", "Sign in again."),
            AuthError::RefreshReused => Problem::unauthorized(
                "AUTH_REFRESH_REUSED",
                "This refresh token was already used; the session is closed. Sign in again.",
            ),
            AuthError::TokenInvalid => {
                Problem::bad_request("AUTH_TOKEN_INVALID", "The link is invalid, used or expired.")
            }
            AuthError::NotFound(what) => Problem::not_found("NOT_FOUND", format!("No such {what}.")),
            AuthError::Forbidden(why) => Problem::forbidden("FORBIDDEN", why),
            AuthError::Conflict(code, detail) => Problem::conflict(code, detail),
            AuthError::Google(why) => Problem::bad_request("AUTH_GOOGLE_FAILED", why),
            AuthError::GoogleDisabled => {
                Problem::new(StatusCode::NOT_FOUND, "AUTH_GOOGLE_DISABLED", "Google sign-in is not configured.")
            }
            AuthError::Problem(p) => p,
            AuthError::Internal(e) => Problem::internal(&e),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
