//! The order service's business rules, with no I/O: typed values, parsing a till's order
//! (either shape) into a checkout, pricing and payment settlement.

pub mod cashflow;
pub mod checkout;
pub mod payment;
pub mod pricing;
pub mod recurring;
pub mod returns;
pub mod types;
