//! Turns events into queued e-mails. Runs inside the bus consumer's transaction, so the
//! e-mail rows and the inbox record commit together: a redelivered event writes nothing.
//! Payloads carry everything the e-mail needs; nothing is read from other services.

use std::sync::Arc;

use sqlx::PgConnection;
use uuid::Uuid;

use bus::{Handler, HandlerError, Incoming};
use contracts::auth::{InviteCreated, OtpRequested, PasswordResetRequested};
use contracts::common::{Recipient, ShopBrand};
use contracts::sales::{OrderCompleted, ReturnCompleted};
use contracts::stock::LevelLow;
use contracts::Event;

use crate::email::pdf::{self, TextLine};
use crate::email::sender::{announce_failure, mark_failed};
use crate::email::templates::{Rendered, Template, Templates};
use crate::storage::Storage;

/// The routing keys the mailer's queue is bound to.
pub const BINDINGS: &[&str] = &[
    OtpRequested::TYPE,
    PasswordResetRequested::TYPE,
    InviteCreated::TYPE,
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

#[async_trait::async_trait]
impl Handler for EventMailer {
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
        let mut lines = header_lines(&e.shop, &format!("Receipt #{}", e.order_number), &e.completed_at.to_rfc3339());
        for l in &e.lines {
            lines.push(TextLine::normal(format!(
                "{}  {} x {}  -{}  = {}",
                l.name, l.quantity, l.unit_price, l.discount, l.line_total
            )));
            if let Some(b) = &l.barcode {
                lines.push(TextLine::normal(format!("    #{b}")));
            }
            if let Some(w) = &l.warranty_until {
                lines.push(TextLine::normal(format!("    warranty until {}", w.format("%Y-%m-%d"))));
            }
        }
        lines.push(TextLine::normal(""));
        lines.push(TextLine::normal(format!("Subtotal: {}", e.subtotal)));
        lines.push(TextLine::normal(format!("Discounts: -{}", e.discount_total)));
        lines.push(TextLine::bold(format!("Total ({}): {}", e.currency, e.total), 12.0));
        for p in &e.payments {
            lines.push(TextLine::normal(format!("Paid by {}: {}", p.method.to_lowercase(), p.amount)));
        }
        lines.push(TextLine::normal(format!("Change: {}", e.change)));
        if let Some(w) = &e.wallet_balance_after {
            lines.push(TextLine::normal(format!("Wallet balance: {w}")));
        }
        let bytes = pdf::document(&format!("Receipt #{}", e.order_number), &lines);
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
        let mut lines =
            header_lines(&e.shop, &format!("Refund for receipt #{}", e.order_number), &e.completed_at.to_rfc3339());
        for l in &e.lines {
            lines.push(TextLine::normal(format!("{}  x {}  = {}", l.name, l.quantity, l.line_total)));
        }
        lines.push(TextLine::normal(""));
        for r in &e.refunds {
            lines.push(TextLine::normal(format!("Refunded to {}: {}", r.method.to_lowercase(), r.amount)));
        }
        lines.push(TextLine::bold(format!("Total refund ({}): {}", e.currency, e.total_refund), 12.0));
        if let Some(w) = &e.wallet_balance_after {
            lines.push(TextLine::normal(format!("Wallet balance: {w}")));
        }
        let bytes = pdf::document(&format!("Refund #{}", e.order_number), &lines);
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

fn header_lines(shop: &ShopBrand, title: &str, when: &str) -> Vec<TextLine> {
    let mut lines = vec![TextLine::bold(shop.name.clone(), 16.0)];
    if let Some(a) = &shop.address {
        lines.push(TextLine::normal(a.clone()));
    }
    if let Some(p) = &shop.contact_phone {
        lines.push(TextLine::normal(p.clone()));
    }
    lines.push(TextLine::normal(""));
    lines.push(TextLine::bold(title.to_owned(), 12.0));
    lines.push(TextLine::normal(when.to_owned()));
    lines.push(TextLine::normal(""));
    lines
}

/// Writes the e-mail row (and attachment) in the inbox transaction. An unusable address is
/// recorded as failed at once, with the reason, and does not hold anything up.
async fn queue(conn: &mut PgConnection, msg: &Incoming, out: Outgoing) -> Result<(), HandlerError> {
    let email_id = Uuid::now_v7();
    let valid = out.to.parse::<lettre::Address>().is_ok();
    sqlx::query(
        "insert into emails (email_id, source_message_id, source_type, template, recipient, shop_id, subject,
                             html_body, text_body, sensitive)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        announce_failure(conn, email_id, out.template.name(), &out.to, 0, &reason, out.shop_id).await?;
    }
    Ok(())
}
