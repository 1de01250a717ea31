//! The mailer through HTTP and the bus, against the real PostgreSQL, RabbitMQ, the moto S3
//! stand-in and the SMTP sink.

mod emails;
mod helpers;
mod shell;
mod upload;
