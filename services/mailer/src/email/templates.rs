//! minijinja templates with HTML and plain-text parts, auto-escaping on for `.html`.

use minijinja::Environment;
use serde::Serialize;

/// What a template produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The templates an e-mail can use; the name is stored with each e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Otp,
    PasswordReset,
    Invite,
    Receipt,
    Refund,
    LowStock,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::Otp => "otp",
            Template::PasswordReset => "password_reset",
            Template::Invite => "invite",
            Template::Receipt => "receipt",
            Template::Refund => "refund",
            Template::LowStock => "low_stock",
        }
    }

    /// Mail whose body is a secret (codes, links): the body is dropped once sent.
    pub fn sensitive(self) -> bool {
        matches!(self, Template::Otp | Template::PasswordReset | Template::Invite)
    }
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let sources: &[(&str, &str)] = &[
            ("_layout.html", include_str!("../../templates/_layout.html")),
            ("otp.html", include_str!("../../templates/otp.html")),
            ("otp.txt", include_str!("../../templates/otp.txt")),
            ("password_reset.html", include_str!("../../templates/password_reset.html")),
            ("password_reset.txt", include_str!("../../templates/password_reset.txt")),
            ("invite.html", include_str!("../../templates/invite.html")),
            ("invite.txt", include_str!("../../templates/invite.txt")),
            ("receipt.html", include_str!("../../templates/receipt.html")),
            ("receipt.txt", include_str!("../../templates/receipt.txt")),
            ("refund.html", include_str!("../../templates/refund.html")),
            ("refund.txt", include_str!("../../templates/refund.txt")),
            ("low_stock.html", include_str!("../../templates/low_stock.html")),
            ("low_stock.txt", include_str!("../../templates/low_stock.txt")),
        ];
        for (name, source) in sources {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders both parts of `template` with `context` (the event payload, camelCase).
    pub fn render<C: Serialize>(&self, template: Template, subject: String, context: &C) -> anyhow::Result<Rendered> {
        let mut ctx = serde_json::to_value(context)?;
        if let Some(obj) = ctx.as_object_mut() {
            obj.insert("subject".into(), serde_json::Value::String(subject.clone()));
        }
        let html = self.env.get_template(&format!("{}.html", template.name()))?.render(&ctx)?;
        let text = self.env.get_template(&format!("{}.txt", template.name()))?.render(&ctx)?;
        Ok(Rendered { subject, html, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_text_is_not() {
        let t = Templates::new().unwrap();
        let ctx = serde_json::json!({
            "owner": {"email": "o@example.test", "name": "<b>Owner</b>"},
            "shop": {"id": uuid::Uuid::nil(), "name": "Tom & Jerry's"},
            "productName": "<script>alert(1)</script>", "available": 2, "keepingUnits": 5,
            "productId": uuid::Uuid::nil(), "occurredAt": "2026-01-01T00:00:00Z"
        });
        let r = t.render(Template::LowStock, "Low stock".into(), &ctx).unwrap();
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("Tom &amp; Jerry"), "{}", r.html);
        assert!(r.text.contains("<script>alert(1)</script>"), "plain text is not HTML-escaped");
        assert!(r.text.contains("2 left"));
    }
}
