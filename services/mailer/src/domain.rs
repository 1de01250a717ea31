//! Validated upload inputs and content sniffing. No I/O.

pub mod upload;
