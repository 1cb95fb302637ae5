//! Errors of the invoice-query service. `api.rs` maps each to a gRPC status.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The export as a whole cannot be read, so none of its records were imported.
    #[error("malformed export document: {reason}")]
    MalformedDocument { reason: String },

    #[error(
        "export document exceeds the maximum of {limit} bytes: split it into several \
         UpsertInvoices calls"
    )]
    DocumentTooLarge { limit: usize },

    #[error("invoice {number:?} not found")]
    InvoiceNotFound { number: String },

    #[error("customer {code:?} not found")]
    CustomerNotFound { code: String },

    /// A request field with an invalid value; `field` is the request field's name.
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("import worker failed: {0}")]
    Worker(String),
}
