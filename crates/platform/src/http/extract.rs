//! `Json`, `Query` and `Path` extractors whose rejections are problem+json: a malformed
//! body is a 400, a body that does not fit the type (unknown field, wrong type) a 422,
//! never axum's plain-text answers.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{FieldError, Problem};

#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// serde's message names the field for unknown/missing fields; pull it out for `errors`.
fn field_of(message: &str) -> String {
    message.split('`').nth(1).filter(|s| !s.is_empty()).map(str::to_owned).unwrap_or_else(|| "body".to_owned())
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                let msg = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_else(|| e.body_text());
                Problem::validation(vec![FieldError { field: field_of(&msg), message: msg }])
            }
            JsonRejection::JsonSyntaxError(_) => Problem::bad_request("MALFORMED_JSON", "The body is not valid JSON."),
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send JSON with Content-Type: application/json.",
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "The body is too large.")
            }
            other => Problem::bad_request("BAD_REQUEST", other.body_text()),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        let msg = r.body_text();
        Problem::validation(vec![FieldError { field: field_of(&msg), message: msg }])
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => {
                Problem::not_found("NOT_FOUND", format!("No such resource ({}).", e.body_text()))
            }
            other => Problem::bad_request("BAD_REQUEST", other.body_text()),
        }
    }
}
