//! Auth operator commands: the first super admin (never a public endpoint) and signing-key
//! rotation. Auth owns its tables, so these are its library's functions.

pub use cashvio_auth::operator::{create_super_admin, rotate_signing_key};
