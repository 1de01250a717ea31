//! The auth service through HTTP against the real PostgreSQL and RabbitMQ (and the local
//! OpenID provider for Google sign-in).

mod flow;
mod google;
mod helpers;
mod matrix;
mod shell;
