//! Storage of the log with sea-orm, on SQLite or PostgreSQL. The only module that touches
//! entities, SQL and migrations. It offers no update and no delete.

// sea-orm's derive macros declare `pub` items in these private modules.
#[allow(unreachable_pub)]
mod entries;
mod migration;
#[allow(unreachable_pub)]
mod recipients;
mod rows;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sea_orm::sea_query::Query;
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    SqlErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::chain::GENESIS_PREV_HASH;
use crate::entry::Entry;
use crate::error::Error;
use crate::query::PageQuery;

/// Key of the PostgreSQL advisory lock that serializes appends across processes: the ASCII
/// bytes of `al_entry` read as a big-endian integer.
const APPEND_LOCK_KEY: i64 = 0x616c_5f65_6e74_7279;

/// Attempts at an append whose sequence another writer took in the meantime.
const MAX_APPEND_ATTEMPTS: u32 = 5;

/// Position of the next entry: its sequence and the `entry_hash` it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainTip {
    pub(crate) next_sequence: u64,
    pub(crate) prev_hash: String,
}

/// Maximum number of entries one append transaction writes. It keeps the `INSERT` of a group
/// well inside SQLite's limit on bound values, because an entry row binds about 25.
const MAX_GROUP: usize = 64;

/// Builds an entry for the chain tip it is given.
type Seal = Box<dyn Fn(ChainTip) -> Entry + Send + Sync>;

/// One append: the entry it seals, and the caller's idempotency key if it sent one.
struct Append {
    seal: Seal,
    idempotency_key: Option<String>,
}

/// An append waiting for the writer lock, with the channel that carries its result.
struct Queued {
    append: Append,
    reply: oneshot::Sender<Result<Entry, Error>>,
}

/// The log's database.
pub(crate) struct Store {
    db: DatabaseConnection,
    /// Appends waiting for the writer lock.
    queue: Mutex<Vec<Queued>>,
    /// Lock that serializes appends within this process. A group whose caller went away goes
    /// on being written after the lock is released, so the database's own lock is what
    /// serializes appends in every case, also across processes.
    writer: tokio::sync::Mutex<()>,
}

impl Store {
    /// Connects to `url`, creating the folder of a SQLite file when it is missing.
    pub(crate) async fn connect(url: &str) -> Result<Store, Error> {
        if let Some(folder) = invoicer_kit::config::sqlite_folder(url) {
            std::fs::create_dir_all(&folder).map_err(|source| Error::DataDir {
                path: folder.display().to_string(),
                source,
            })?;
        }
        let mut options = ConnectOptions::new(url);
        options.sqlx_logging(false).test_before_acquire(false);
        // WAL lets readers go on while an append commits.
        options.map_sqlx_sqlite_opts(|sqlite| sqlite.journal_mode(SqliteJournalMode::Wal));
        if !invoicer_kit::config::is_sqlite_url(url) {
            options.test_before_acquire_if_idle_for(invoicer_kit::config::DATABASE_PING_AFTER_IDLE);
        }
        let db = Database::connect(options).await.map_err(Error::Connect)?;
        Ok(Store {
            db,
            queue: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Applies the pending migrations.
    pub(crate) async fn migrate(&self) -> Result<(), Error> {
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(Error::Migrate)
    }

    /// `sqlite` or `postgres`, for the start-up log.
    pub(crate) fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// Appends the entry that `seal` builds for the current chain tip. Appends run one at a
    /// time, so no two entries get the same sequence and the chain never forks.
    ///
    /// Appends that arrive while another is being written wait and are then written together,
    /// in one transaction and one disk sync, each sealed on the entry before it. Under load
    /// this turns one commit per entry into one per group.
    ///
    /// When an entry was appended with `idempotency_key` before, nothing is appended and that
    /// entry is returned.
    pub(crate) async fn append(
        &self,
        idempotency_key: Option<String>,
        seal: impl Fn(ChainTip) -> Entry + Send + Sync + 'static,
    ) -> Result<Entry, Error> {
        let (reply, answer) = oneshot::channel();
        lock(&self.queue).push(Queued {
            append: Append {
                seal: Box::new(seal),
                idempotency_key,
            },
            reply,
        });
        {
            let _writer = self.writer.lock().await;
            // An earlier holder of the lock may have written this append already. The queue
            // then contains only later appends, or none.
            let group = take_group(&mut lock(&self.queue));
            if !group.is_empty() {
                // On a task of its own, so that a caller that goes away (its client hung up)
                // does not cut short the appends of the others in its group.
                let _ = tokio::spawn(write_group(self.db.clone(), group)).await;
            }
        }
        answer.await.map_err(|_| Error::AppendInterrupted)?
    }

    /// Reads one page of entries matching `query.filter`, newest first, at most `limit` of them.
    pub(crate) async fn list(&self, query: &PageQuery, limit: u64) -> Result<Vec<Entry>, Error> {
        let filter = &query.filter;
        let mut select = entries::Entity::find();
        if let Some(number) = &filter.invoice_number {
            select = select.filter(entries::Column::InvoiceNumber.eq(number));
        }
        if let Some(code) = &filter.customer_code {
            select = select.filter(entries::Column::CustomerCode.eq(code));
        }
        if let Some(batch_id) = &filter.batch_id {
            select = select.filter(entries::Column::BatchId.eq(batch_id));
        }
        if let Some(since) = filter.since_unix_ms {
            select = select.filter(entries::Column::AtUnixMs.gte(since));
        }
        if let Some(until) = filter.until_unix_ms {
            select = select.filter(entries::Column::AtUnixMs.lt(until));
        }
        if let Some(address) = &filter.recipient {
            let sequences = Query::select()
                .column(recipients::Column::EntrySequence)
                .from(recipients::Entity)
                .and_where(recipients::Column::AddressLowercase.eq(address))
                .to_owned();
            select = select.filter(entries::Column::Sequence.in_subquery(sequences));
        }
        if let Some(before) = query.before_sequence {
            let before = i64::try_from(before).unwrap_or(i64::MAX);
            select = select.filter(entries::Column::Sequence.lt(before));
        }
        let models = select
            .order_by_desc(entries::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?;
        models.into_iter().map(rows::entry_from_row).collect()
    }

    pub(crate) async fn get(&self, id: Uuid) -> Result<Option<Entry>, Error> {
        let model = entries::Entity::find()
            .filter(entries::Column::Id.eq(id.hyphenated().to_string()))
            .one(&self.db)
            .await?;
        model.map(rows::entry_from_row).transpose()
    }

    /// Reads up to `limit` entries after `after_sequence` in chain order, each decoded on its own
    /// so one unreadable row does not hide the others.
    pub(crate) async fn entries_after(
        &self,
        after_sequence: u64,
        limit: u64,
    ) -> Result<Vec<Result<Entry, Error>>, Error> {
        let after = i64::try_from(after_sequence).unwrap_or(i64::MAX);
        let models = entries::Entity::find()
            .filter(entries::Column::Sequence.gt(after))
            .order_by_asc(entries::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(models.into_iter().map(rows::entry_from_row).collect())
    }
}

/// Locks the queue, also when another holder panicked.
fn lock(queue: &Mutex<Vec<Queued>>) -> MutexGuard<'_, Vec<Queued>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the oldest waiting appends, at most `MAX_GROUP`, and drops those whose caller went
/// away before they were written.
fn take_group(queue: &mut Vec<Queued>) -> Vec<Queued> {
    queue.retain(|queued| !queued.reply.is_closed());
    let count = queue.len().min(MAX_GROUP);
    queue.drain(..count).collect()
}

/// Writes a group of appends and replies to each caller. When the group's transaction fails
/// for a reason other than a taken sequence, each append whose caller still waits is tried
/// alone, so that an entry the database rejects fails only its own caller.
async fn write_group(db: DatabaseConnection, group: Vec<Queued>) {
    let appends: Vec<&Append> = group.iter().map(|queued| &queued.append).collect();
    let result = append_all(&db, &appends).await;
    match result {
        Ok(entries) => {
            for (queued, entry) in group.into_iter().zip(entries) {
                let _ = queued.reply.send(Ok(entry));
            }
        }
        Err(Error::AppendConflict { attempts }) => {
            for queued in group {
                let _ = queued.reply.send(Err(Error::AppendConflict { attempts }));
            }
        }
        Err(error) if group.len() == 1 => {
            if let Some(queued) = group.into_iter().next() {
                let _ = queued.reply.send(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(entries = group.len(), %error, "appending a group of entries failed; appending them one at a time");
            for queued in group {
                if queued.reply.is_closed() {
                    continue;
                }
                let result = append_all(&db, &[&queued.append])
                    .await
                    .map(|mut entries| entries.remove(0));
                let _ = queued.reply.send(result);
            }
        }
    }
}

/// Appends one entry per append, in order, in one transaction, and returns them in the order
/// of `appends`. An append whose idempotency key the log already has, or that repeats the key
/// of an earlier append of the group, gets that entry instead (see `reuse_stored_entries`).
async fn append_all(db: &DatabaseConnection, appends: &[&Append]) -> Result<Vec<Entry>, Error> {
    match append_new(db, appends).await {
        Err(Error::Database(error)) if is_duplicate_idempotency_key(&error) => {
            reuse_stored_entries(db, appends, error).await
        }
        other => other,
    }
}

/// Appends one entry per append in one transaction, retrying when another writer took the
/// next sequence in the meantime.
async fn append_new(db: &DatabaseConnection, appends: &[&Append]) -> Result<Vec<Entry>, Error> {
    for attempt in 1..=MAX_APPEND_ATTEMPTS {
        match try_append(db, appends).await {
            Ok(entries) => return Ok(entries),
            Err(error) if is_duplicate_idempotency_key(&error) => return Err(error.into()),
            Err(error) if is_unique_violation(&error) => {
                tracing::debug!(attempt, %error, "next sequence taken by another writer, retrying append");
            }
            Err(error) => return Err(error.into()),
        }
    }
    tracing::warn!(
        attempts = MAX_APPEND_ATTEMPTS,
        "append gave up: the next sequence was taken each time"
    );
    Err(Error::AppendConflict {
        attempts: MAX_APPEND_ATTEMPTS,
    })
}

/// Returns the entries of a group whose insert failed on an idempotency key. An append whose
/// key the log has gets the stored entry. One that repeats the key of an earlier append in
/// the group gets that append's entry. The rest are appended together, so a key sent again
/// costs the group one more transaction, not one per append. Returns `error` when no key of
/// the group is stored or repeated.
async fn reuse_stored_entries(
    db: &DatabaseConnection,
    appends: &[&Append],
    error: DbErr,
) -> Result<Vec<Entry>, Error> {
    let keys: Vec<&str> = appends
        .iter()
        .filter_map(|append| append.idempotency_key.as_deref())
        .collect();
    let mut known: HashMap<String, Entry> = HashMap::new();
    for row in entries::Entity::find()
        .filter(entries::Column::IdempotencyKey.is_in(keys))
        .all(db)
        .await?
    {
        if let Some(key) = row.idempotency_key.clone() {
            known.insert(key, rows::entry_from_row(row)?);
        }
    }
    // Each append gets a stored entry, its own new entry, or the new entry of the first
    // append of the group with its key.
    enum Source<'a> {
        Stored(&'a str),
        New(usize),
        Repeat(usize),
    }
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    let mut new_appends: Vec<&Append> = Vec::new();
    let mut sources = Vec::with_capacity(appends.len());
    for append in appends {
        let key = append.idempotency_key.as_deref();
        let source = match key {
            Some(key) if known.contains_key(key) => Source::Stored(key),
            Some(key) if first_with_key.contains_key(key) => Source::Repeat(first_with_key[key]),
            _ => {
                if let Some(key) = key {
                    first_with_key.insert(key, new_appends.len());
                }
                new_appends.push(append);
                Source::New(new_appends.len() - 1)
            }
        };
        sources.push(source);
    }
    if new_appends.len() == appends.len() {
        return Err(error.into());
    }

    // Checked before anything is written, because an error here makes `write_group` append
    // each one alone, and an append without a key written now would then be written twice.
    for (append, source) in appends.iter().zip(&sources) {
        match source {
            Source::Stored(key) => {
                let stored = &known[*key];
                check_same_entry(append, key, stored)?;
                tracing::info!(
                    idempotency_key = %key,
                    sequence = stored.sequence,
                    invoice = %stored.attempt.invoice_number,
                    delivery_id = %stored.attempt.delivery_id,
                    "append sent again with the key of a stored entry; returning that entry"
                );
            }
            // A repeat that names another entry fails alone when `write_group` appends it
            // after the first one, as a stored key does.
            Source::Repeat(first) if !same_entry(&probe(append), &probe(new_appends[*first])) => {
                return Err(error.into());
            }
            Source::New(_) | Source::Repeat(_) => {}
        }
    }
    // Fewer appends than before, so this recursion ends. Another writer may have stored one
    // of their keys in the meantime, and the call then returns that one's stored entry.
    let written = if new_appends.is_empty() {
        Vec::new()
    } else {
        Box::pin(append_all(db, &new_appends)).await?
    };
    Ok(sources
        .into_iter()
        .map(|source| match source {
            Source::Stored(key) => known[key].clone(),
            Source::New(index) | Source::Repeat(index) => written[index].clone(),
        })
        .collect())
}

/// Checks that `stored`, the entry appended with `key`, is of the delivery and invoice that
/// `append` names.
fn check_same_entry(append: &Append, key: &str, stored: &Entry) -> Result<(), Error> {
    if same_entry(&probe(append), stored) {
        return Ok(());
    }
    let found = &stored.attempt;
    Err(Error::IdempotencyKeyReused {
        key: key.to_owned(),
        sequence: stored.sequence,
        invoice_number: found.invoice_number.clone(),
        delivery_id: found.delivery_id.clone(),
    })
}

/// Seals `append` on an empty chain, to read what it would append.
fn probe(append: &Append) -> Entry {
    (append.seal)(ChainTip {
        next_sequence: 1,
        prev_hash: GENESIS_PREV_HASH.to_owned(),
    })
}

/// Checks whether two entries are of the same delivery and invoice. The rest may differ: the
/// time, the chain fields, and the outcome, which a caller that appends late may derive again
/// from what it stored.
fn same_entry(requested: &Entry, found: &Entry) -> bool {
    requested.attempt.delivery_id == found.attempt.delivery_id
        && requested.attempt.invoice_number == found.attempt.invoice_number
}

async fn try_append(db: &DatabaseConnection, appends: &[&Append]) -> Result<Vec<Entry>, DbErr> {
    let transaction = begin_append(db).await?;
    let mut tip = chain_tip(&transaction).await?;
    let mut entries = Vec::with_capacity(appends.len());
    for append in appends {
        let entry = (append.seal)(tip);
        tip = ChainTip {
            next_sequence: entry.sequence + 1,
            prev_hash: entry.entry_hash.clone(),
        };
        entries.push(entry);
    }
    let rows = entries
        .iter()
        .zip(appends)
        .map(|(entry, append)| rows::entry_row(entry, append.idempotency_key.as_deref()));
    entries::Entity::insert_many(rows)
        .exec_without_returning(&transaction)
        .await?;
    let recipients: Vec<_> = entries.iter().flat_map(rows::recipient_rows).collect();
    if !recipients.is_empty() {
        recipients::Entity::insert_many(recipients)
            .exec_without_returning(&transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(entries)
}

/// Opens the append transaction with the database's write lock already held: `BEGIN
/// IMMEDIATE` on SQLite, a transaction-scoped advisory lock on PostgreSQL.
async fn begin_append(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let backend = db.get_database_backend();
    let options = TransactionOptions {
        sqlite_transaction_mode: (backend == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let transaction = db.begin_with_options(options).await?;
    if backend == DbBackend::Postgres {
        let lock = Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [APPEND_LOCK_KEY.into()],
        );
        transaction.execute_raw(lock).await?;
    }
    Ok(transaction)
}

async fn chain_tip(transaction: &DatabaseTransaction) -> Result<ChainTip, DbErr> {
    let last: Option<(i64, String)> = entries::Entity::find()
        .select_only()
        .column(entries::Column::Sequence)
        .column(entries::Column::EntryHash)
        .order_by_desc(entries::Column::Sequence)
        .into_tuple()
        .one(transaction)
        .await?;
    let tip = match last {
        Some((sequence, entry_hash)) => ChainTip {
            next_sequence: u64::try_from(sequence).unwrap_or(0) + 1,
            prev_hash: entry_hash,
        },
        None => ChainTip {
            next_sequence: 1,
            prev_hash: GENESIS_PREV_HASH.to_owned(),
        },
    };
    Ok(tip)
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Checks whether `error` violates the unique index on the idempotency key. PostgreSQL's
/// message names the index and SQLite's names the column, and both contain `idempotency_key`.
fn is_duplicate_idempotency_key(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("idempotency_key")
    )
}
