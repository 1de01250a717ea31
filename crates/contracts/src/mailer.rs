//! Events the mailer publishes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// An e-mail gave up after its last attempt (or had an unusable address). Operators alert
/// on it; `POST /mailer/emails/:id/resend` retries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailFailed {
    pub email_id: Uuid,
    pub template: String,
    pub recipient: String,
    pub attempts: i32,
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<Uuid>,
}
impl Event for EmailFailed {
    const TYPE: &'static str = "mailer.email.failed";
    const VERSION: u16 = 1;
}
