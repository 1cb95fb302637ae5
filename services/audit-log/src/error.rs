//! The errors of audit-log. `api.rs` maps each one to a gRPC status.

/// Everything that can go wrong in audit-log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A request field that is missing or malformed, with `field` its path in the request.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },

    #[error("entry {id} not found")]
    EntryNotFound { id: String },

    /// A stored row that no longer decodes, which also means the log was changed outside the
    /// service.
    #[error("stored entry {sequence} cannot be read: {reason}")]
    CorruptEntry { sequence: u64, reason: String },

    /// Another writer took the next sequence on every attempt.
    #[error("append gave up after {attempts} attempts: the next sequence was taken each time")]
    AppendConflict { attempts: u32 },

    /// An append whose idempotency key the log already has for an entry of another delivery
    /// or invoice.
    #[error(
        "idempotency key {key:?} belongs to entry {sequence} (invoice {invoice_number}, delivery {delivery_id}), not to this append; send a new key for a new entry"
    )]
    IdempotencyKeyReused {
        key: String,
        sequence: u64,
        invoice_number: String,
        delivery_id: String,
    },

    /// The task writing the append panicked before it replied, so nothing of its transaction
    /// was committed.
    #[error("the append was interrupted before it was stored; retry the append")]
    AppendInterrupted,

    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },

    #[error("cannot connect to the audit-log database: {0}; check database_url or data_dir")]
    Connect(#[source] sea_orm::DbErr),

    #[error("migrating the audit-log database failed: {0}")]
    Migrate(#[source] sea_orm::DbErr),

    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}
