//! Turns events into queued e-mails. Runs inside the bus consumer's transaction, so the
//! e-mail rows and the inbox record commit together: a redelivered event writes nothing.
//! Payloads carry everything the e-mail needs; nothing is read from other services.

use std::sync::Arc;

use sqlx::PgConnection;
use uuid::Uuid;

use bus::{Handler, HandlerError, Incoming};
use contracts::auth::{InviteCreated, OtpRequested, PasswordResetRequested};
use contracts::common::Recipient;
use contracts::sales::{OrderCompleted, ReturnCompleted};
use contracts::stock::LevelLow;
use contracts::Event;

use crate::email::sender::{announce_failure, mark_failed, Failure};
use crate::email::templates::{Rendered, Template, Templates};
use crate::storage::Storage;

/// The routing keys the mailer's queue is bound to.
pub const BINDINGS: &[&str] = &[
    OtpRequested::TYPE,
    PasswordResetRequested::TYPE,
    InviteCreated::TYPE,
    // The types alone: a sale or return with no receipt to send is routed
    // `...without_receipt` and never comes here.
    OrderCompleted::TYPE,
    ReturnCompleted::TYPE,
    LevelLow::TYPE,
];

pub struct EventMailer {
    pub templates: Arc<Templates>,
    pub storage: Storage,
}

/// An e-mail ready to queue.
struct Outgoing {
    template: Template,
    to: String,
    shop_id: Option<Uuid>,
    rendered: Rendered,
    attachment: Option<(String, Vec<u8>, String)>,
}

/// The one part of a sale or a return the mailer looks at before anything else.
#[derive(serde::Deserialize)]
struct Addressee {
    customer: Option<serde::de::IgnoredAny>,
}

#[async_trait::async_trait]
impl Handler for EventMailer {
    /// A sale or a return with nobody to send a receipt to is not the mailer's (most sales
    /// are: walk-in customers without an address). Those are not routed here
    /// (`OrderCompleted::WITHOUT_RECEIPT`) unless an older order service published them;
    /// this skips those. An unreadable one is the mailer's, to be dead-lettered.
    fn wants(&self, msg: &Incoming) -> bool {
        match msg.message_type.as_str() {
            OrderCompleted::TYPE | ReturnCompleted::TYPE => {
                serde_json::from_slice::<Addressee>(&msg.body).map_or(true, |a| a.customer.is_some())
            }
            _ => true,
        }
    }

    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        let outgoing = match msg.message_type.as_str() {
            OtpRequested::TYPE => {
                let e: OtpRequested = msg.event()?;
                let subject = format!("Your Cashvio code: {}", e.code);
                Some(self.simple(Template::Otp, &e.to, None, subject, &e)?)
            }
            PasswordResetRequested::TYPE => {
                let e: PasswordResetRequested = msg.event()?;
                Some(self.simple(Template::PasswordReset, &e.to, None, "Reset your Cashvio password".into(), &e)?)
            }
            InviteCreated::TYPE => {
                let e: InviteCreated = msg.event()?;
                let subject = format!("You are invited to join {} on Cashvio", e.shop.name);
                Some(self.simple(Template::Invite, &e.to, Some(e.shop.id), subject, &e)?)
            }
            LevelLow::TYPE => {
                let e: LevelLow = msg.event()?;
                let subject = format!("Low stock: {} ({} left)", e.product_name, e.available);
                Some(self.simple(Template::LowStock, &e.owner, Some(e.shop.id), subject, &e)?)
            }
            OrderCompleted::TYPE => {
                let e: OrderCompleted = msg.event()?;
                match &e.customer {
                    Some(to) => Some(self.receipt(&e, to).await?),
                    None => None, // a walk-in sale without an address: nothing to send
                }
            }
            ReturnCompleted::TYPE => {
                let e: ReturnCompleted = msg.event()?;
                match &e.customer {
                    Some(to) => Some(self.refund(&e, to).await?),
                    None => None,
                }
            }
            other => return Err(HandlerError::Permanent(anyhow::anyhow!("the mailer does not handle {other}"))),
        };
        if let Some(out) = outgoing {
            queue(conn, msg, out).await?;
        }
        Ok(())
    }
}

impl EventMailer {
    fn simple<C: serde::Serialize>(
        &self,
        template: Template,
        to: &Recipient,
        shop_id: Option<Uuid>,
        subject: String,
        ctx: &C,
    ) -> Result<Outgoing, HandlerError> {
        let rendered = self.templates.render(template, subject, ctx).map_err(HandlerError::Permanent)?;
        Ok(Outgoing { template, to: to.email.clone(), shop_id, rendered, attachment: None })
    }

    async fn receipt(&self, e: &OrderCompleted, to: &Recipient) -> Result<Outgoing, HandlerError> {
        let subject = format!("Your receipt from {} (#{})", e.shop.name, e.order_number);
        let rendered = self.templates.render(Template::Receipt, subject, e).map_err(HandlerError::Permanent)?;
        let bytes = service::receipt::sale_pdf(e);
        let key = format!("shops/{}/receipts/{}.pdf", e.shop.id, e.order_id);
        self.store(&key, &bytes).await?;
        let filename = format!("receipt-{}.pdf", e.order_number);
        Ok(Outgoing {
            template: Template::Receipt,
            to: to.email.clone(),
            shop_id: Some(e.shop.id),
            rendered,
            attachment: Some((filename, bytes, key)),
        })
    }

    async fn refund(&self, e: &ReturnCompleted, to: &Recipient) -> Result<Outgoing, HandlerError> {
        let subject = format!("Your refund from {} (receipt #{})", e.shop.name, e.order_number);
        let rendered = self.templates.render(Template::Refund, subject, e).map_err(HandlerError::Permanent)?;
        let bytes = service::receipt::refund_pdf(e);
        let key = format!("shops/{}/receipts/{}-refund-{}.pdf", e.shop.id, e.order_id, e.return_id);
        self.store(&key, &bytes).await?;
        let filename = format!("refund-{}.pdf", e.order_number);
        Ok(Outgoing {
            template: Template::Refund,
            to: to.email.clone(),
            shop_id: Some(e.shop.id),
            rendered,
            attachment: Some((filename, bytes, key)),
        })
    }

    /// The PDF in S3 under the shop's receipts folder. The key is derived from the order,
    /// so a retried event overwrites the same object.
    async fn store(&self, key: &str, bytes: &[u8]) -> Result<(), HandlerError> {
        self.storage.put(key, "application/pdf", bytes.to_vec()).await.map_err(HandlerError::Transient)
    }
}

/// Writes the e-mail row (and attachment) in the inbox transaction. An unusable address is
/// recorded as failed at once, with the reason, and does not hold anything up.
async fn queue(conn: &mut PgConnection, msg: &Incoming, out: Outgoing) -> Result<(), HandlerError> {
    let email_id = Uuid::now_v7();
    let valid = out.to.parse::<lettre::Address>().is_ok();
    sqlx::query(
        "insert into emails (email_id, source_message_id, source_type, template, recipient, shop_id, subject,
                             html_body, text_body, sensitive, request_id, traceparent)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(email_id)
    .bind(msg.message_id)
    .bind(&msg.message_type)
    .bind(out.template.name())
    .bind(&out.to)
    .bind(out.shop_id)
    .bind(&out.rendered.subject)
    .bind(&out.rendered.html)
    .bind(&out.rendered.text)
    .bind(out.template.sensitive())
    .bind(&msg.meta.request_id)
    .bind(&msg.meta.traceparent)
    .execute(&mut *conn)
    .await?;
    if let Some((filename, bytes, key)) = out.attachment {
        sqlx::query(
            "insert into email_attachments (attachment_id, email_id, filename, content_type, content, s3_key)
             values ($1, $2, $3, 'application/pdf', $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(email_id)
        .bind(filename)
        .bind(bytes)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    if !valid {
        let reason = format!("invalid recipient address {:?}", out.to);
        mark_failed(conn, email_id, 0, &reason).await?;
        let failure = Failure {
            email_id,
            template: out.template.name(),
            recipient: &out.to,
            attempts: 0,
            error: &reason,
            shop_id: out.shop_id,
        };
        announce_failure(conn, &failure, &msg.meta).await?;
    }
    Ok(())
}
