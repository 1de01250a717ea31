//! Message metadata and its AMQP encoding: `message_id` and `type` as AMQP properties,
//! `occurred_at`, version, request id and `traceparent` as headers.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::protocol::basic::AMQPProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use uuid::Uuid;

use crate::consumer::HandlerError;

pub const H_OCCURRED_AT: &str = "occurred_at";
pub const H_VERSION: &str = "version";
pub const H_REQUEST_ID: &str = "x-request-id";
pub const H_TRACEPARENT: &str = "traceparent";

/// Request context a message carries from the HTTP request that caused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
}

impl MessageMeta {
    /// The context of an HTTP request (its `x-request-id`, which the service's request-id
    /// layer guarantees, and its `traceparent`), for the messages it causes.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self { request_id: text(H_REQUEST_ID), traceparent: text(H_TRACEPARENT) }
    }
}

/// A handler's extractor: `meta: MessageMeta` is the request's context.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for MessageMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// A message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: Uuid,
    pub message_type: String,
    pub version: u16,
    pub occurred_at: DateTime<Utc>,
    pub meta: MessageMeta,
    pub body: Vec<u8>,
}

impl Outgoing {
    pub fn properties(&self) -> AMQPProperties {
        let mut headers = FieldTable::default();
        headers.insert(H_OCCURRED_AT.into(), AMQPValue::LongString(self.occurred_at.to_rfc3339().into()));
        headers.insert(H_VERSION.into(), AMQPValue::ShortUInt(self.version));
        if let Some(r) = &self.meta.request_id {
            headers.insert(H_REQUEST_ID.into(), AMQPValue::LongString(r.clone().into()));
        }
        if let Some(t) = &self.meta.traceparent {
            headers.insert(H_TRACEPARENT.into(), AMQPValue::LongString(t.clone().into()));
        }
        let ts = u64::try_from(self.occurred_at.timestamp()).unwrap_or(0);
        AMQPProperties::default()
            .with_message_id(ShortString::from(self.message_id.to_string()))
            .with_type(ShortString::from(self.message_type.clone()))
            .with_content_type("application/json".into())
            .with_delivery_mode(2) // persistent
            .with_timestamp(ts)
            .with_headers(headers)
    }
}

/// A received message with its metadata decoded.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: Uuid,
    pub message_type: String,
    pub version: u16,
    pub occurred_at: Option<DateTime<Utc>>,
    pub meta: MessageMeta,
    pub body: Vec<u8>,
    pub routing_key: String,
    pub redelivered: bool,
    /// 1 for the first delivery; counted from `x-death` for retries.
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct Malformed(pub String);

impl Incoming {
    pub fn from_delivery(d: &Delivery, queue: &str) -> Result<Self, Malformed> {
        let p = &d.properties;
        let message_id = p
            .message_id()
            .as_ref()
            .ok_or_else(|| Malformed("no message_id".into()))
            .and_then(|s| Uuid::parse_str(s.as_str()).map_err(|e| Malformed(format!("message_id: {e}"))))?;
        let message_type = p.kind().as_ref().map(|k| k.to_string()).unwrap_or_else(|| d.routing_key.to_string());
        let headers = p.headers().as_ref();
        let text = |name: &str| headers.and_then(|h| h.inner().get(name)).and_then(as_string);
        let version = headers
            .and_then(|h| h.inner().get(H_VERSION))
            .and_then(as_u64)
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(1);
        Ok(Self {
            message_id,
            message_type,
            version,
            occurred_at: text(H_OCCURRED_AT)
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc)),
            meta: MessageMeta { request_id: text(H_REQUEST_ID), traceparent: text(H_TRACEPARENT) },
            body: d.data.clone(),
            routing_key: d.routing_key.to_string(),
            redelivered: d.redelivered,
            attempt: rejected_count(headers, queue).saturating_add(1),
        })
    }

    /// Decodes the JSON body.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// Decodes the event `E` this message carries, the one way every consumer reads events.
    /// Fields `E` does not know are ignored (a newer producer may add optional ones); a message
    /// of another type, a version newer than `E::VERSION`, or a body that does not parse can
    /// never succeed, so it is a permanent failure: dead-lettered at once with the reason.
    pub fn event<E: contracts::Event>(&self) -> Result<E, HandlerError> {
        if self.message_type != E::TYPE {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "expected a {} message, got {}",
                E::TYPE,
                self.message_type
            )));
        }
        if self.version > E::VERSION {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "{} version {} is newer than this consumer understands ({})",
                self.message_type,
                self.version,
                E::VERSION
            )));
        }
        self.json().map_err(|e| {
            HandlerError::Permanent(anyhow::anyhow!("undecodable {} v{}: {e}", self.message_type, self.version))
        })
    }
}

pub(crate) fn as_string(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

pub(crate) fn as_u64(v: &AMQPValue) -> Option<u64> {
    match v {
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

/// How many times this message was rejected from `queue`, from the broker's `x-death`
/// header (one entry per queue and reason, with a running count).
fn rejected_count(headers: Option<&FieldTable>, queue: &str) -> u32 {
    let Some(AMQPValue::FieldArray(deaths)) = headers.and_then(|h| h.inner().get("x-death")) else {
        return 0;
    };
    deaths
        .as_slice()
        .iter()
        .filter_map(|d| match d {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        })
        .filter(|t| {
            t.inner().get("queue").and_then(as_string).as_deref() == Some(queue)
                && t.inner().get("reason").and_then(as_string).as_deref() == Some("rejected")
        })
        .filter_map(|t| t.inner().get("count").and_then(as_u64))
        .map(|c| u32::try_from(c).unwrap_or(u32::MAX))
        .sum()
}
