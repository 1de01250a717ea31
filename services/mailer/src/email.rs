//! E-mail: rendering from events (templates, receipt PDFs), the SMTP transport with
//! XOAUTH2, and the sender that works through `mailer.emails`.

pub mod sender;
pub mod smtp;
pub mod templates;
