//! Stock's HTTP errors: one enum, answered as problem+json with stable codes. Database
//! constraints are named once here (`CONSTRAINTS`, through `platform::error::on_constraint`),
//! so a handler's `?` on a query is enough: a taken barcode is a 409, another shop's
//! supplier a 422 naming the field, anything else a logged 500 (503 when the pool is busy).

use axum::response::{IntoResponse, Response};
use platform::error::{on_constraint, Rejection};
use platform::Problem;

use crate::reservations::StockError;

const CONSTRAINTS: &[(&str, Rejection)] = &[
    (
        "products_barcode_key",
        Rejection::Conflict("PRODUCT_BARCODE_TAKEN", "Another product of this shop has that barcode."),
    ),
    ("products_sku_key", Rejection::Conflict("PRODUCT_SKU_TAKEN", "Another product of this shop has that SKU.")),
    ("items_barcode_key", Rejection::Conflict("ITEM_BARCODE_TAKEN", "A unit of this shop already has that barcode.")),
    (
        "categories_name_key",
        Rejection::Conflict("CATEGORY_NAME_TAKEN", "A category with this name already exists here."),
    ),
    // Composite (shop, id) keys: another shop's id and a random one look the same.
    ("products_supplier_fkey", Rejection::Field("supplierId", "no such supplier in this shop")),
    ("products_category_fkey", Rejection::Field("categoryId", "no such category in this shop")),
    ("products_sub_category_fkey", Rejection::Field("subCategoryId", "no such subcategory in this shop")),
    ("products_sub_sub_category_fkey", Rejection::Field("subSubCategoryId", "no such sub-subcategory in this shop")),
    ("movements_supplier_fkey", Rejection::Field("supplierId", "no such supplier in this shop")),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client error decided at the edge (validation, access, not found).
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// The reservation core refused or failed.
    #[error(transparent)]
    Stock(#[from] StockError),
    /// A failure of ours; logged once when answered.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Problem(p)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match on_constraint(&e, CONSTRAINTS) {
            Some(p) => Error::Problem(p),
            None => Error::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        match e {
            Error::Problem(p) => p,
            Error::Stock(s) => s.into(),
            Error::Internal(e) => Problem::internal(&e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
