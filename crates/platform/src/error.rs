//! RFC 9457 problem details with a stable machine `code`, the one error body every
//! Cashvio endpoint answers with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One invalid field of a 422.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A problem+json body. Build with the constructors; services map their own error enums
/// into it. `type` and `title` are derived from `code` and `status` when it is written, so
/// the value stays small enough to travel in a `Result` by value.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub status: u16,
    /// Stable machine-readable code, e.g. `STOCK_INSUFFICIENT`.
    pub code: String,
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

/// The body as written (and documented): RFC 9457's members plus ours.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Problem)]
struct ProblemBody<'a> {
    /// A URI naming the kind of problem (derived from `code`).
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    /// Stable machine-readable code, e.g. `STOCK_INSUFFICIENT`.
    code: &'a str,
    detail: &'a str,
    /// The same text as `detail`: the first Cashvio's clients show `message`.
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ProblemBody {
            type_: format!("https://docs.cashvio.app/problems/{}", self.code.to_ascii_lowercase().replace('_', "-")),
            title: self.status_code().canonical_reason().unwrap_or("Error"),
            status: self.status,
            code: &self.code,
            detail: &self.detail,
            message: &self.detail,
            errors: &self.errors,
            retry_after_secs: self.retry_after_secs,
        }
        .serialize(serializer)
    }
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <ProblemBody<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Problem")
    }
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <ProblemBody<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            code: code.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }
    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut p = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "The request has invalid fields.");
        p.errors = errors;
        p
    }
    /// A 422 about one field.
    pub fn field(field: &str, message: &str) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), message: message.to_owned() }])
    }
    pub fn too_many_requests(code: &str, retry_after_secs: u64) -> Self {
        let mut p = Self::new(StatusCode::TOO_MANY_REQUESTS, code, "Too many requests; try again later.");
        p.retry_after_secs = Some(retry_after_secs);
        p
    }
    pub fn unavailable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// An unexpected failure: logged here once with its cause chain, answered opaquely.
    /// Every database connection busy for the pool's whole acquire timeout is overload, not
    /// a fault: a 503 `SERVICE_BUSY` the client may retry (with its Idempotency-Key).
    pub fn internal(err: &anyhow::Error) -> Self {
        if err.chain().any(|c| matches!(c.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolTimedOut))) {
            tracing::warn!(error = %err, "overloaded: no database connection within the pool's timeout");
            // Not "nothing was done": the wait may have come after a commit. A retry with
            // the same Idempotency-Key is what makes trying again safe.
            let mut p = Self::unavailable("SERVICE_BUSY", "The service is busy. Try again shortly.");
            p.retry_after_secs = Some(1);
            return p;
        }
        tracing::error!(error = ?err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "Something went wrong on our side.")
    }

    pub fn with_field(mut self, field: &str, message: &str) -> Self {
        self.errors.push(FieldError { field: field.to_owned(), message: message.to_owned() });
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry = self.retry_after_secs;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<anyhow::Error> for Problem {
    fn from(err: anyhow::Error) -> Self {
        Problem::internal(&err)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(err: sqlx::Error) -> Self {
        Problem::internal(&anyhow::Error::new(err))
    }
}

/// What a violated database constraint means to the client.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    /// 409 with this code and detail (a unique key: the name or barcode is taken).
    Conflict(&'static str, &'static str),
    /// 422 naming this field (a reference outside the shop, a value out of range).
    Field(&'static str, &'static str),
}

/// The client error behind a database error, if it is a constraint's: the named ones as
/// `table` says; any other foreign key is a 422 `reference` (with composite (shop, id) keys,
/// another shop's id and a random one look the same) and any other check a 422 `value`.
/// Anything else is `None`: the caller's internal error. Each service lists its
/// constraints once and maps every database error through here.
pub fn on_constraint(err: &sqlx::Error, table: &[(&str, Rejection)]) -> Option<Problem> {
    let constraint = err.as_database_error()?.constraint()?;
    let rejection = table.iter().find(|(name, _)| *name == constraint).map(|(_, r)| *r);
    Some(match rejection {
        Some(Rejection::Conflict(code, detail)) => Problem::conflict(code, detail),
        Some(Rejection::Field(field, message)) => Problem::field(field, message),
        None if constraint.ends_with("_fkey") => {
            Problem::field("reference", "refers to something that does not exist in this shop")
        }
        None if constraint.ends_with("_check") => Problem::field("value", &format!("violates {constraint}")),
        None => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_timeout_is_a_retryable_503_and_other_failures_stay_500() {
        let busy = Problem::internal(&anyhow::Error::new(sqlx::Error::PoolTimedOut).context("loading the shop"));
        assert_eq!(busy.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.code, "SERVICE_BUSY");
        assert_eq!(busy.retry_after_secs, Some(1));
        let broken = Problem::internal(&anyhow::Error::new(sqlx::Error::RowNotFound));
        assert_eq!(broken.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(broken.code, "INTERNAL");
    }
}
