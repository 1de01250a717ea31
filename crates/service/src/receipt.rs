//! Receipts as text lines and PDF, from the events that carry everything a receipt shows:
//! the mailer attaches them to e-mails, the order service answers them at
//! `GET /orders/{id}/receipt`. One layout for both.

use contracts::common::ShopBrand;
use contracts::sales::{OrderCompleted, ReturnCompleted};
use platform::pdf::{self, TextLine};

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

/// A sale's receipt, line by line.
pub fn sale_lines(e: &OrderCompleted) -> Vec<TextLine> {
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
    lines
}

pub fn sale_pdf(e: &OrderCompleted) -> Vec<u8> {
    pdf::document(&format!("Receipt #{}", e.order_number), &sale_lines(e))
}

/// A return's refund receipt, line by line.
pub fn refund_lines(e: &ReturnCompleted) -> Vec<TextLine> {
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
    lines
}

pub fn refund_pdf(e: &ReturnCompleted) -> Vec<u8> {
    pdf::document(&format!("Refund #{}", e.order_number), &refund_lines(e))
}
