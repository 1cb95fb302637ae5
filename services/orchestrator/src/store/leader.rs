//! The scheduler's leadership: on PostgreSQL a session-level advisory lock, held on a
//! connection of its own for as long as this replica leads, so exactly one replica fires the
//! nightly batch. On SQLite the one process using the file leads.

use sea_orm::DbBackend;
use sea_orm::sqlx::{self, Connection, PgConnection};

use super::{Store, StoreError};

/// The advisory lock key of the scheduler: the first 8 bytes, big-endian, of
/// SHA-256("invoicer.orchestrator.scheduler"), so other applications sharing the database
/// are unlikely to pick it.
const SCHEDULER_LOCK_KEY: i64 = 0x632c_06ff_6215_c09f;

/// Held leadership; dropping it (or the process dying) releases the lock.
pub(crate) enum LeaderLock {
    Sqlite,
    Postgres(PgConnection),
}

impl Store {
    /// Tries to become the scheduler's leader without waiting; `None` when another replica
    /// leads.
    pub(crate) async fn try_lead(&self) -> Result<Option<LeaderLock>, StoreError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Ok(Some(LeaderLock::Sqlite));
        }
        // Detached from the pool, so the pool never recycles the connection that holds the
        // lock.
        let pool = self.db.get_postgres_connection_pool();
        let mut connection = pool.acquire().await.map_err(StoreError::Lock)?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK_KEY)
            .fetch_one(&mut connection)
            .await
            .map_err(StoreError::Lock)?;
        if locked {
            Ok(Some(LeaderLock::Postgres(connection)))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}

impl LeaderLock {
    /// Checks that the lock is still held: on PostgreSQL that its connection is alive, since
    /// the server drops the lock with the session.
    pub(crate) async fn is_held(&mut self) -> bool {
        match self {
            LeaderLock::Sqlite => true,
            LeaderLock::Postgres(connection) => connection.ping().await.is_ok(),
        }
    }
}
