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
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(|sqlite| {
                // WAL lets GetInvoice and ListInvoicesToNotify read while an import writes.
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
            });
        if !invoicer_kit::config::is_sqlite_url(url) {
            options.test_before_acquire_if_idle_for(invoicer_kit::config::DATABASE_PING_AFTER_IDLE);
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use invoicer_test_db::TestDatabase;

    use super::*;

    /// A connection cut while idle in the pool is pinged and replaced before a read uses it.
    /// One cut moments after its last use is handed out without the ping, so reads may fail
    /// until the pool has replaced the cut connections, and then succeed again.
    #[tokio::test]
    async fn cut_connection_replaced_on_postgres() {
        let Some(database) = TestDatabase::postgres("iq_cut_connection").await.unwrap() else {
            eprintln!("skipped: INVOICER_TEST_DATABASE_URL is not set");
            return;
        };
        let url = database.database_url().unwrap();
        let store = Store::connect(&url).await.unwrap();
        assert!(store.get_customer("C-1").await.unwrap().is_none());

        database.end_sessions().await.unwrap();
        tokio::time::sleep(
            invoicer_kit::config::DATABASE_PING_AFTER_IDLE + Duration::from_millis(200),
        )
        .await;
        assert!(store.get_customer("C-1").await.unwrap().is_none());

        // Each cut connection fails one read at most and is then dropped, and the pool keeps
        // at most 10 connections (sqlx's default).
        database.end_sessions().await.unwrap();
        let mut failed = 0;
        for _ in 0..20 {
            if store.get_customer("C-1").await.is_err() {
                failed += 1;
            }
        }
        assert!(failed <= 10, "{failed} of 20 reads failed");
        assert!(store.get_customer("C-1").await.unwrap().is_none());
        database.remove().await.unwrap();
    }
}
