//! Storage of customers, contacts and invoice revisions with sea-orm, on SQLite or PostgreSQL.
//! The only module that touches sea-orm entities and migrations.

mod customers;
mod entities;
mod invoices;
mod migration;

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr};
use sea_orm_migration::MigratorTrait;

pub(crate) use invoices::{InvoiceUpsert, ListQuery};

/// How long a SQLite connection waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("stored {subject} cannot be read: {reason}")]
    Corrupt { subject: String, reason: String },
    #[error("cannot encode {subject} as JSON: {source}")]
    Encode {
        subject: String,
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Checks whether the error is a unique-key violation. A concurrent insert of the same key
    /// causes one, and a retry then finds the other row.
    pub(crate) fn is_unique_violation(&self) -> bool {
        let StoreError::Database(error) = self else {
            return false;
        };
        matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
    }
}

/// Whether an upsert created, changed or kept a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// The invoice-query database.
#[derive(Clone)]
pub(crate) struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to `url` and runs pending migrations. For SQLite the file's folder is created
    /// first, because SQLite creates the file but not its folder.
    pub(crate) async fn connect(url: &str) -> Result<Store, StoreError> {
        if let Some(folder) = invoicer_kit::config::sqlite_folder(url) {
            std::fs::create_dir_all(&folder).map_err(|source| StoreError::CreateDataDir {
                path: folder.clone(),
                source,
            })?;
        }
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .test_before_acquire(!invoicer_kit::config::is_sqlite_url(url))
            .map_sqlx_sqlite_opts(|sqlite| {
                // WAL lets GetInvoice and ListInvoicesToNotify read while an import writes.
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
            });
        let db = Database::connect(options).await?;
        migration::Migrator::up(&db, None).await?;
        Ok(Store { db })
    }

    /// `sqlite` or `postgres`, for logs.
    pub(crate) fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            DbBackend::MySql => "mysql",
            _ => "unknown",
        }
    }
}

fn encode_json<T: serde::Serialize>(subject: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode {
        subject: subject.to_owned(),
        source,
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(subject: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        subject: subject.to_owned(),
        reason: error.to_string(),
    })
}
