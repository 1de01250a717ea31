//! Small async functions over the `sales` schema, SQL inline and compile-checked.

pub mod cashflow;
pub mod customers;
pub mod orders;
pub mod registers;
pub mod returns;
pub mod shops;
