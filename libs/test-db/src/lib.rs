//! Databases for tests: a SQLite folder in a temporary directory, or a fresh PostgreSQL
//! database on the server named by `INVOICER_TEST_DATABASE_URL`, dropped when the test ends.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, Database};

/// URL of an existing PostgreSQL database from which each test creates and drops its own.
pub const POSTGRES_URL_VARIABLE: &str = "INVOICER_TEST_DATABASE_URL";

#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("cannot create a temporary folder: {0}")]
    TempDir(#[from] std::io::Error),
    #[error(
        "{POSTGRES_URL_VARIABLE}={url:?} is not a URL such as postgres://postgres@127.0.0.1:5432/test"
    )]
    InvalidUrl { url: String },
    #[error("PostgreSQL at {POSTGRES_URL_VARIABLE}: {0}")]
    Database(#[from] sea_orm::DbErr),
}

pub enum TestDatabase {
    Sqlite {
        folder: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        folder: tempfile::TempDir,
    },
}

impl TestDatabase {
    pub fn sqlite() -> Result<TestDatabase, TestDbError> {
        Ok(TestDatabase::Sqlite {
            folder: tempfile::tempdir()?,
        })
    }

    /// Creates a fresh database for `test`. Returns `None`, after a skip line on stderr, when
    /// `INVOICER_TEST_DATABASE_URL` is unset.
    pub async fn postgres(test: &str) -> Result<Option<TestDatabase>, TestDbError> {
        let Some(admin_url) = std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            // Written to stderr directly, because the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "{test} on PostgreSQL skipped: set {POSTGRES_URL_VARIABLE} (such as postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            return Ok(None);
        };
        let name = format!("invoicer_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let url = with_database_name(&admin_url, &name)?;
        Ok(Some(TestDatabase::Postgres {
            admin_url,
            name,
            url,
            folder: tempfile::tempdir()?,
        }))
    }

    /// Returns a folder for the test's files (the SQLite files, or the outbox on PostgreSQL).
    pub fn folder(&self) -> &Path {
        match self {
            TestDatabase::Sqlite { folder } | TestDatabase::Postgres { folder, .. } => {
                folder.path()
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.folder().join("data")
    }

    /// Returns the shared database URL on PostgreSQL; `None` on SQLite, where each service keeps its
    /// own file in the data folder.
    pub fn database_url(&self) -> Option<String> {
        match self {
            TestDatabase::Sqlite { .. } => None,
            TestDatabase::Postgres { url, .. } => Some(url.clone()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDatabase::Postgres { .. })
    }

    /// Ends every session on the PostgreSQL database but the one that ends them, as a server
    /// restart would. Does nothing on SQLite.
    pub async fn end_sessions(&self) -> Result<(), TestDbError> {
        let TestDatabase::Postgres { url, .. } = self else {
            return Ok(());
        };
        let admin = Database::connect(url.as_str()).await?;
        admin
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await?;
        admin.close().await?;
        Ok(())
    }

    /// Drops the PostgreSQL database; the temporary folder goes with `self`.
    pub async fn remove(mut self) -> Result<(), TestDbError> {
        if let TestDatabase::Postgres {
            admin_url, name, ..
        } = &mut self
            && !name.is_empty()
        {
            let name = std::mem::take(name);
            drop_database(admin_url, &name).await?;
        }
        Ok(())
    }
}

/// A test that panics never reaches `remove`, so dropping the value drops the database too.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        if name.is_empty() {
            return;
        }
        let (admin_url, name) = (admin_url.clone(), std::mem::take(name));
        // A thread of its own, because `drop` may run on a runtime thread, where `block_on` panics.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(drop_database(&admin_url, &name))
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop a test database on {POSTGRES_URL_VARIABLE}"
            );
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), TestDbError> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// `url` with its database name replaced by `name`.
fn with_database_name(url: &str, name: &str) -> Result<String, TestDbError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let Some(authority_start) = base.find("://").map(|i| i + 3) else {
        return Err(TestDbError::InvalidUrl {
            url: url.to_owned(),
        });
    };
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaced() {
        assert_eq!(
            with_database_name("postgres://u@h:5432/test?sslmode=disable", "x").unwrap(),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database_name("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
    }

    #[test]
    fn url_without_scheme_rejected() {
        assert!(with_database_name("localhost/test", "x").is_err());
    }
}
