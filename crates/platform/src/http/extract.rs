//! `Json`, `Query` and `Path` extractors whose rejections are problem+json: a malformed
//! body is a 400, a body that does not fit the type (unknown field, wrong type) a 422,
//! never axum's plain-text answers. A NUL character anywhere in a JSON string, the query or
//! the path is a 422 here, once for every service: PostgreSQL cannot store it in text, so
//! it would otherwise surface as a 500 from whichever query met it first.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{FieldError, Problem};

#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        // Read once (within the body limit), look for NUL, then let axum's extractor decode
        // the same bytes so every other rejection stays as it was.
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| Problem::from(JsonRejection::from(e)))?;
        if json_has_nul(&bytes) {
            return Err(nul_refused("body"));
        }
        let axum::Json(value) =
            axum::Json::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state).await?;
        Ok(Json(value))
    }
}

/// A JSON body that may be left out: an empty body is `None`, anything else is read as
/// [`Json`] (with its rejections). For the first system's clients, which send some
/// requests without a body (`DELETE /stock/items/{id}`).
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| Problem::from(JsonRejection::from(e)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        let Json(value) = Json::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state).await?;
        Ok(OptionalJson(Some(value)))
    }
}

/// Whether a JSON text holds a `\u0000` escape inside a string (a raw NUL is not valid JSON
/// and fails to parse anyway). Escapes are followed, so `"\\u0000"` (a backslash, then the
/// text u0000) is not one.
pub(crate) fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

fn uri_has_nul(text: &str) -> bool {
    text.contains('\0') || text.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn nul_refused(field: &str) -> Problem {
    Problem::validation(vec![FieldError { field: field.to_owned(), message: "must not contain NUL characters".into() }])
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        if parts.uri.query().is_some_and(uri_has_nul) {
            return Err(nul_refused("query"));
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        if uri_has_nul(parts.uri.path()) {
            return Err(nul_refused("path"));
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// serde's message names the field for unknown/missing fields; pull it out for `errors`.
fn field_of(message: &str) -> String {
    named_field(message).map_or_else(|| "body".to_owned(), str::to_owned)
}

/// The field an "unknown field `x`" or "missing field `x`" message names (its other
/// messages quote values, as in "invalid type: integer `41000`").
fn named_field(message: &str) -> Option<&str> {
    let at = ["unknown field `", "missing field `"].iter().find_map(|p| message.find(p).map(|i| i + p.len()))?;
    message.get(at..)?.split('`').next().filter(|s| !s.is_empty())
}

/// The JSON path of the field a body failed on (`items[0].customPrice`): where serde was
/// when it failed (an unknown field's path already ends in it), and for a missing field,
/// that field under it.
fn json_path(path: &str, message: &str) -> String {
    let at = if path == "." { "" } else { path };
    match (at, named_field(message)) {
        ("", Some(name)) => name.to_owned(),
        (at, Some(name)) if at != name && !at.ends_with(&format!(".{name}")) => format!("{at}.{name}"),
        ("", None) => "body".to_owned(),
        (at, _) => at.to_owned(),
    }
}

/// A body that does not fit its type: a 422 naming the field by its JSON path.
fn data_error(e: &(dyn std::error::Error + 'static)) -> Problem {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(p) = c.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let inner = p.inner().to_string();
            let field = json_path(&p.path().to_string(), &inner);
            return Problem::validation(vec![FieldError { message: format!("{field}: {inner}"), field }]);
        }
        cause = c.source();
    }
    let msg = e.to_string();
    Problem::validation(vec![FieldError { field: field_of(&msg), message: msg }])
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => data_error(&e),
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

#[cfg(test)]
mod tests {
    use super::{json_has_nul, uri_has_nul, Json};
    use crate::error::Problem;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Body {
        name: String,
        brought_price: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
        shop: Option<Shop>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Item {
        product_id: uuid::Uuid,
        quantity: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Shop {
        id: uuid::Uuid,
    }

    async fn refused(json: &str) -> Problem {
        let req = axum::http::Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(json.to_owned()))
            .expect("request");
        match <Json<Body> as axum::extract::FromRequest<()>>::from_request(req, &()).await {
            Ok(v) => panic!("accepted {json}: {:?}", v.0),
            Err(p) => p,
        }
    }

    #[tokio::test]
    async fn a_422_names_the_field_by_its_json_path_never_by_its_value() {
        let item = r#"{"productId":"01a201eb-7752-7365-8abe-f42d8dee4539","quantity":1}"#;
        let cases = [
            (r#"{"name":"x","broughtPrice":41000}"#.to_owned(), "broughtPrice"),
            (r#"{"name":7}"#.to_owned(), "name"),
            (r#"{}"#.to_owned(), "name"),
            (r#"{"name":"x","colour":"red"}"#.to_owned(), "colour"),
            (format!(r#"{{"name":"x","items":[{item},{{"productId":"nope","quantity":1}}]}}"#), "items[1].productId"),
            (format!(r#"{{"name":"x","items":[{item},{{"quantity":"2"}}]}}"#), "items[1].quantity"),
            (r#"{"name":"x","items":[{"quantity":1}]}"#.to_owned(), "items[0].productId"),
            (format!(r#"{{"name":"x","items":[{item},{{"extra":1}}]}}"#), "items[1].extra"),
            (r#"{"name":"x","shop":{"id":"01a201eb-7752-7365-8abe-f42d8dee4539","x":1}}"#.to_owned(), "shop.x"),
            (r#""text""#.to_owned(), "body"),
        ];
        for (json, field) in cases {
            let p = refused(&json).await;
            assert_eq!(p.status, 422, "{json}");
            assert_eq!(p.code, "VALIDATION_FAILED", "{json}");
            assert_eq!(p.errors.first().map(|e| e.field.as_str()), Some(field), "{json}: {:?}", p.errors);
        }
    }

    #[test]
    fn nul_is_found_in_json_strings_and_uris_and_nowhere_else() {
        assert!(json_has_nul(br#"{"name":"a\u0000b"}"#));
        assert!(json_has_nul(br#"["\u0000"]"#));
        assert!(!json_has_nul(br#"{"name":"a\\u0000b"}"#), "an escaped backslash, then text");
        assert!(json_has_nul(br#"{"name":"a\\\u0000b"}"#), "a backslash, then a NUL");
        assert!(!json_has_nul(br#"{"n":"\u0001 \u1000"}"#));
        assert!(uri_has_nul("search=a%00b"));
        assert!(!uri_has_nul("search=a%2500b"), "a percent sign, then 00");
        assert!(!uri_has_nul("search=100"));
    }
}
