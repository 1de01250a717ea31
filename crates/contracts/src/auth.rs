//! Events the auth service publishes for the mailer (and others).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::common::{Recipient, ShopBrand};
use crate::Event;

/// A sign-up one-time password to e-mail. The code travels in clear inside the platform
/// (the mailer must put it in the e-mail); the mailer drops the rendered body once sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpRequested {
    pub to: Recipient,
    pub code: String,
    pub expires_at: DateTime<Utc>,
}
impl Event for OtpRequested {
    const TYPE: &'static str = "auth.otp.requested";
    const VERSION: u16 = 1;
}

/// A password reset link to e-mail (single use, expiring).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequested {
    pub to: Recipient,
    pub reset_url: String,
    pub expires_at: DateTime<Utc>,
}
impl Event for PasswordResetRequested {
    const TYPE: &'static str = "auth.password_reset.requested";
    const VERSION: u16 = 1;
}

/// An invitation to join a shop's staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteCreated {
    pub to: Recipient,
    pub shop: ShopBrand,
    /// SHOP_OWNER or SHOP_STAFF.
    pub role: String,
    pub invited_by: String,
    pub accept_url: String,
    pub expires_at: DateTime<Utc>,
}
impl Event for InviteCreated {
    const TYPE: &'static str = "auth.invite.created";
    const VERSION: u16 = 1;
}

/// A new account (shop owner, customer, invited staff, Google sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    /// SHOP_OWNER, SHOP_STAFF, CUSTOMER, ...
    pub role: String,
    pub registered_at: DateTime<Utc>,
}
impl Event for UserRegistered {
    const TYPE: &'static str = "auth.user.registered";
    const VERSION: u16 = 1;
}

/// A shop was created or its brand changed: what other services show and need (the owner's
/// address for low-stock mail, the currency and credit policy for orders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopCreated {
    pub shop: ShopBrand,
    pub owner: Recipient,
    pub owner_id: uuid::Uuid,
    pub currency: String,
    pub allow_credit: bool,
    pub created_at: DateTime<Utc>,
}
impl Event for ShopCreated {
    const TYPE: &'static str = "auth.shop.created";
    const VERSION: u16 = 1;
}

/// A shop membership was added, changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChanged {
    pub shop_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    /// SHOP_OWNER or SHOP_STAFF; null when removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// ACTIVE, SUSPENDED or REMOVED.
    pub status: String,
    pub changed_at: DateTime<Utc>,
}
impl Event for MemberChanged {
    const TYPE: &'static str = "auth.member.changed";
    const VERSION: u16 = 1;
}

/// A session (a refresh-token family) ended: logout, logout everywhere, a reused refresh
/// token, a password reset, a suspended or deleted account. Every service refuses the
/// session's access tokens from then on, without waiting for them to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRevoked {
    pub session_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
}
impl Event for SessionRevoked {
    const TYPE: &'static str = "auth.session.revoked";
    const VERSION: u16 = 1;
}

/// A user's account status changed: ACTIVE, INACTIVE, SUSPENDED or DELETED. Only an ACTIVE
/// account's tokens are honoured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChanged {
    pub user_id: uuid::Uuid,
    pub status: String,
    pub changed_at: DateTime<Utc>,
}
impl Event for UserChanged {
    const TYPE: &'static str = "auth.user.changed";
    const VERSION: u16 = 1;
}
