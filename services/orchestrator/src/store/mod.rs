//! The orchestrator's database: batches, batch items, deliveries, frozen documents and
//! notifiers. The only module that touches sea-orm entities.

mod commit;
mod entities;
mod leader;
mod leases;
mod migration;
mod notifiers;
mod queue;
#[cfg(test)]
mod tests;

pub(crate) use leader::LeaderLock;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use invoicer_domain::email::Mailbox;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
};
use sea_orm_migration::MigratorTrait;
use serde::{Deserialize, Serialize};

use crate::model::{
    Batch, BatchCounts, BatchItem, BatchStatus, BatchTrigger, Delivery, DeliveryState, Document,
    DocumentFacts, Purpose,
};
use entities::{batch, batch_item, delivery, document};

/// Rows per statement when many are inserted or looked up at once. A delivery row has about
/// 30 columns, so 100 rows stay well below SQLite's limit of 32,766 parameters per statement.
const ROWS_PER_STATEMENT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("scheduler lock: {0}")]
    Lock(sea_orm::SqlxError),
    #[error(
        "delivery {id} is no longer leased to this replica (its lease expired and another replica took it over); this replica stopped working on it"
    )]
    LeaseLost { id: String },
    #[error("stored row {table}.{id} is corrupt: {message}")]
    Corrupt {
        table: &'static str,
        id: String,
        message: String,
    },
}

/// A request for one page of a batch's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemPageRequest {
    /// Item id of the previous page's last item; 0 for the first page.
    pub after: i64,
    /// Items per page.
    pub limit: u64,
    /// Only the items not sent and the ones sent with a reason.
    pub attention_only: bool,
}

/// One page of a batch's items.
#[derive(Debug, Clone)]
pub(crate) struct ItemPage {
    pub items: Vec<BatchItem>,
    /// The `after` of the next page; `None` on the last page.
    pub next_after: Option<i64>,
}

/// Mailboxes are stored as JSON arrays of `{name, address}`.
#[derive(Serialize, Deserialize)]
struct StoredMailbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    address: String,
}

#[derive(Clone)]
pub(crate) struct Store {
    db: DatabaseConnection,
    /// This replica's id, written as the lease owner of the rows it works on.
    owner: String,
    lease: chrono::Duration,
    /// The queue of the task that commits delivery writes in groups; `None` in that task's
    /// own copy of the store, which writes directly.
    commit: Option<commit::GroupCommit>,
}

impl Store {
    /// Connects to `url` and runs the migrations. A SQLite file's folder is created if missing.
    /// `owner` names this replica in the leases it takes, each valid for `lease`.
    pub(crate) async fn open(
        url: &str,
        owner: String,
        lease: std::time::Duration,
    ) -> Result<Store, StoreError> {
        create_sqlite_folder(url)?;
        let mut options = ConnectOptions::new(url.to_owned());
        // On PostgreSQL a connection idle for a second is pinged before use, as in the other
        // stores (`DATABASE_PING_AFTER_IDLE`). A connection cut within that second fails its
        // next statement. A failure before a send ends the attempt and its batch, and the
        // retry loop settles the delivery. The write of an outcome after a send is tried again
        // (`OUTCOME_WRITE_RETRIES`), on a new connection.
        options.sqlx_logging(false).test_before_acquire(false);
        if !invoicer_kit::config::is_sqlite_url(url) {
            options.test_before_acquire_if_idle_for(invoicer_kit::config::DATABASE_PING_AFTER_IDLE);
        }
        if invoicer_kit::config::is_sqlite_url(url) {
            // One writer at a time; busy writers wait instead of failing with SQLITE_BUSY.
            options.max_connections(1);
            // A WAL commit syncs only the log, where the default rollback journal syncs the
            // journal and the database file. `synchronous` stays FULL, so each state change is
            // on disk before the next call out.
            options.map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
            });
        }
        let db = Database::connect(options).await?;
        migration::Migrator::up(&db, None).await?;
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut store = Store {
            db,
            owner,
            lease,
            commit: None,
        };
        store.commit = Some(commit::GroupCommit::start(store.clone()));
        Ok(store)
    }

    /// Returns the lease owner this replica writes.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// Returns whether the database is SQLite, which only one process uses at a time.
    pub(crate) fn is_sqlite(&self) -> bool {
        self.db.get_database_backend() == sea_orm::DbBackend::Sqlite
    }

    pub(crate) async fn insert_batch(&self, batch: &Batch) -> Result<bool, StoreError> {
        let schedule_key =
            (batch.trigger == BatchTrigger::Schedule).then(|| batch.business_date.to_string());
        let row = batch::ActiveModel {
            id: Set(batch.id.clone()),
            business_date: Set(batch.business_date.to_string()),
            trigger: Set(batch.trigger.as_str().to_owned()),
            status: Set(batch.status.as_str().to_owned()),
            schedule_key: Set(schedule_key),
            cutoff: Set(batch.cutoff),
            window_start: Set(batch.window_start),
            started_at: Set(batch.started_at),
            finished_at: Set(batch.finished_at),
            error: Set(batch.error.clone()),
            lease_owner: Set(Some(self.owner.clone())),
            lease_until: Set(Some(Utc::now() + self.lease)),
        };
        // Only a second scheduled batch of one business date can conflict (ids are new).
        let result = batch::Entity::insert(row)
            .on_conflict_do_nothing_on([batch::Column::ScheduleKey])
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0))
    }

    pub(crate) async fn finish_batch(
        &self,
        id: &str,
        status: BatchStatus,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        batch::Entity::update_many()
            .col_expr(batch::Column::Status, Expr::value(status.as_str()))
            .col_expr(batch::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(batch::Column::Error, Expr::value(error))
            .col_expr(
                batch::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .filter(batch::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub(crate) async fn get_batch(&self, id: &str) -> Result<Option<Batch>, StoreError> {
        let row = batch::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?;
        row.map(batch_from_row).transpose()
    }

    pub(crate) async fn scheduled_batch(
        &self,
        business_date: NaiveDate,
    ) -> Result<Option<Batch>, StoreError> {
        let row = batch::Entity::find()
            .filter(batch::Column::ScheduleKey.eq(business_date.to_string()))
            .one(&self.db)
            .await?;
        row.map(batch_from_row).transpose()
    }

    /// Returns the scheduled batch with the latest business date, if any.
    pub(crate) async fn latest_scheduled_batch(&self) -> Result<Option<Batch>, StoreError> {
        let row = batch::Entity::find()
            .filter(batch::Column::ScheduleKey.is_not_null())
            .order_by_desc(batch::Column::BusinessDate)
            .one(&self.db)
            .await?;
        row.map(batch_from_row).transpose()
    }

    /// Batches newest first, starting after `offset` rows.
    pub(crate) async fn list_batches(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<Batch>, StoreError> {
        let rows = batch::Entity::find()
            .order_by_desc(batch::Column::StartedAt)
            .order_by_desc(batch::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(batch_from_row).collect()
    }

    /// Marks batches left running by a process that stopped as failed: on SQLite every
    /// running batch, because one process uses the file, and on PostgreSQL those whose runner
    /// let its lease expire.
    pub(crate) async fn fail_running_batches(&self, error: &str) -> Result<u64, StoreError> {
        let mut update = batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Failed.as_str()),
            )
            .col_expr(batch::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(batch::Column::Error, Expr::value(error))
            .col_expr(
                batch::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .filter(batch::Column::Status.eq(BatchStatus::Running.as_str()));
        if !self.is_sqlite() {
            update = update.filter(
                sea_orm::Condition::any()
                    .add(batch::Column::LeaseUntil.is_null())
                    .add(batch::Column::LeaseUntil.lt(Utc::now())),
            );
        }
        Ok(update.exec(&self.db).await?.rows_affected)
    }

    /// Stores the delivery's state and reason as its item in batch `batch_id`, adding the
    /// item if the batch has none for it yet.
    pub(crate) async fn record_batch_item(
        &self,
        batch_id: &str,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        upsert_batch_item(&self.db, batch_id, delivery).await
    }

    /// Counts the items of batch `batch_id` by the state each ended in.
    pub(crate) async fn batch_counts(&self, batch_id: &str) -> Result<BatchCounts, StoreError> {
        let rows: Vec<(String, i64)> = batch_item::Entity::find()
            .select_only()
            .column(batch_item::Column::State)
            .column_as(Expr::col(batch_item::Column::Id).count(), "count")
            .filter(batch_item::Column::BatchId.eq(batch_id))
            .group_by(batch_item::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts = BatchCounts::default();
        for (state, count) in rows {
            let state = parse_state("or_batch_items", batch_id, &state)?;
            counts.add_many(state, u32::try_from(count).unwrap_or(u32::MAX));
        }
        Ok(counts)
    }

    /// Reads one page of the items of batch `batch_id`, in the order the batch planned them.
    pub(crate) async fn batch_items_page(
        &self,
        batch_id: &str,
        page: &ItemPageRequest,
    ) -> Result<ItemPage, StoreError> {
        let mut query = batch_item::Entity::find()
            .filter(batch_item::Column::BatchId.eq(batch_id))
            .filter(batch_item::Column::Id.gt(page.after))
            .order_by_asc(batch_item::Column::Id)
            .limit(page.limit + 1);
        if page.attention_only {
            query = query.filter(
                Condition::any()
                    .add(batch_item::Column::State.ne(DeliveryState::Sent.as_str()))
                    .add(batch_item::Column::Reason.ne("")),
            );
        }
        let mut rows = query.all(&self.db).await?;
        let next_after = if rows.len() as u64 > page.limit {
            rows.truncate(page.limit as usize);
            rows.last().map(|row| row.id)
        } else {
            None
        };
        let items = self.items_with_deliveries(rows).await?;
        Ok(ItemPage { items, next_after })
    }

    /// Joins batch item rows with their deliveries, in the order of `rows`.
    async fn items_with_deliveries(
        &self,
        rows: Vec<batch_item::Model>,
    ) -> Result<Vec<BatchItem>, StoreError> {
        let mut deliveries = HashMap::with_capacity(rows.len());
        // One query per chunk, kept below the bind-parameter limits of SQLite and PostgreSQL.
        for chunk in rows.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|item| item.delivery_id.as_str()).collect();
            let found = delivery::Entity::find()
                .filter(delivery::Column::Id.is_in(ids))
                .all(&self.db)
                .await?;
            for row in found {
                deliveries.insert(row.id.clone(), delivery_from_row(row)?);
            }
        }
        let mut result = Vec::with_capacity(rows.len());
        for item in rows {
            let Some(delivery) = deliveries.get(&item.delivery_id).cloned() else {
                return Err(corrupt(
                    "or_batch_items",
                    item.id.to_string(),
                    "delivery is missing",
                ));
            };
            let state = parse_state("or_batch_items", &item.id.to_string(), &item.state)?;
            result.push(BatchItem {
                delivery,
                state,
                reason: item.reason,
            });
        }
        Ok(result)
    }

    /// Inserts the delivery unless one with its key exists; returns whether it was inserted.
    /// A new delivery is `pending` and leased to this replica.
    pub(crate) async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        self.insert_leased(&self.db, delivery).await
    }

    /// Inserts new deliveries and their items in batch `batch_id` in one transaction, and
    /// returns for each whether it was inserted. A delivery whose key exists already is left
    /// as it is and gets no item. One commit for a whole chunk of a batch, where a delivery
    /// and an item each committed on their own cost two disk syncs per invoice on SQLite.
    /// The rows go in with a few statements of many rows each, not one statement per row.
    /// Each delivery must have a new id, as [`Delivery::new`] gives it.
    pub(crate) async fn insert_planned(
        &self,
        batch_id: &str,
        deliveries: &[Delivery],
    ) -> Result<Vec<bool>, StoreError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let lease_until = Utc::now() + self.lease;
        let txn = self.db.begin().await?;
        // Each planned delivery has a new id, so a row with that id is one this insert stored,
        // and a delivery whose key another runner stored first has none.
        let mut stored: HashSet<String> = HashSet::with_capacity(deliveries.len());
        for part in deliveries.chunks(ROWS_PER_STATEMENT) {
            let rows = part
                .iter()
                .map(|delivery| {
                    let mut row = delivery_to_row(delivery)?;
                    row.lease_owner = Set(Some(self.owner.clone()));
                    row.lease_until = Set(Some(lease_until));
                    Ok(row)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            delivery::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([delivery::Column::DeliveryKey])
                .exec_without_returning(&txn)
                .await?;

            let ids: Vec<&str> = part.iter().map(|delivery| delivery.id.as_str()).collect();
            let found: Vec<String> = delivery::Entity::find()
                .select_only()
                .column(delivery::Column::Id)
                .filter(delivery::Column::Id.is_in(ids))
                .into_tuple()
                .all(&txn)
                .await?;
            stored.extend(found);
        }
        let inserted: Vec<bool> = deliveries
            .iter()
            .map(|delivery| stored.contains(&delivery.id))
            .collect();
        let new: Vec<&Delivery> = deliveries
            .iter()
            .zip(&inserted)
            .filter(|(_, inserted)| **inserted)
            .map(|(delivery, _)| delivery)
            .collect();
        for part in new.chunks(ROWS_PER_STATEMENT) {
            let rows = part
                .iter()
                .map(|delivery| batch_item_row(batch_id, delivery))
                .collect::<Vec<_>>();
            batch_item::Entity::insert_many(rows)
                .on_conflict(batch_item_on_conflict())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(inserted)
    }

    /// Inserts the delivery, `pending` and leased to this replica, unless one with its key
    /// exists; returns whether it was inserted.
    async fn insert_leased<C: ConnectionTrait>(
        &self,
        db: &C,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut row = delivery_to_row(delivery)?;
        row.lease_owner = Set(Some(self.owner.clone()));
        row.lease_until = Set(Some(Utc::now() + self.lease));
        let result = delivery::Entity::insert(row)
            .on_conflict_do_nothing_on([delivery::Column::DeliveryKey])
            .exec_without_returning(db)
            .await?;
        Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0))
    }

    pub(crate) async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = delivery::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?;
        row.map(delivery_from_row).transpose()
    }

    pub(crate) async fn delivery_by_key(&self, key: &str) -> Result<Option<Delivery>, StoreError> {
        let row = delivery::Entity::find()
            .filter(delivery::Column::DeliveryKey.eq(key))
            .one(&self.db)
            .await?;
        row.map(delivery_from_row).transpose()
    }

    /// Lists every batch delivery of one invoice revision: the per-invoice one and any per To
    /// recipient.
    pub(crate) async fn batch_deliveries(
        &self,
        invoice_number: &str,
        revision: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::InvoiceNumber.eq(invoice_number))
            .filter(delivery::Column::InvoiceRevision.eq(revision as i32))
            .filter(delivery::Column::Purpose.eq(Purpose::Batch.as_str()))
            .order_by_asc(delivery::Column::CreatedAt)
            .all(&self.db)
            .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    /// Lists the batch deliveries of several invoice revisions in one query, by revision, each
    /// list as `batch_deliveries` returns it. Revisions without deliveries are left out.
    pub(crate) async fn batch_deliveries_of(
        &self,
        revisions: &[(&str, u32)],
    ) -> Result<HashMap<(String, u32), Vec<Delivery>>, StoreError> {
        let mut found: HashMap<(String, u32), Vec<Delivery>> = HashMap::new();
        if revisions.is_empty() {
            return Ok(found);
        }
        let rows = delivery::Entity::find()
            .filter(delivery::Column::InvoiceNumber.is_in(invoice_numbers(revisions)))
            .filter(delivery::Column::Purpose.eq(Purpose::Batch.as_str()))
            .order_by_asc(delivery::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let requested: HashSet<(&str, u32)> = revisions.iter().copied().collect();
        for row in rows {
            let key = (row.invoice_number.as_str(), row.invoice_revision as u32);
            if !requested.contains(&key) {
                continue;
            }
            let delivery = delivery_from_row(row)?;
            let key = (delivery.invoice_number.clone(), delivery.invoice_revision);
            found.entry(key).or_default().push(delivery);
        }
        Ok(found)
    }

    /// Returns the Message-ID of the invoice revision's newest `unknown` delivery, which the
    /// mail server may have accepted.
    pub(crate) async fn unknown_message_id(
        &self,
        invoice_number: &str,
        revision: u32,
    ) -> Result<Option<String>, StoreError> {
        let row = delivery::Entity::find()
            .filter(delivery::Column::InvoiceNumber.eq(invoice_number))
            .filter(delivery::Column::InvoiceRevision.eq(revision as i32))
            .filter(delivery::Column::State.eq(DeliveryState::Unknown.as_str()))
            .filter(delivery::Column::MessageId.ne(""))
            .order_by_desc(delivery::Column::UpdatedAt)
            .one(&self.db)
            .await?;
        Ok(row.map(|row| row.message_id))
    }

    pub(crate) async fn delivery_by_request_id(
        &self,
        request_id: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let row = delivery::Entity::find()
            .filter(delivery::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?;
        row.map(delivery_from_row).transpose()
    }

    /// Moves the delivery to `pending` for `batch_id`, leased to this replica, if it is in one of
    /// `from`; returns whether this caller won it. The conditional update is what keeps two
    /// runners off one delivery.
    pub(crate) async fn claim_delivery(
        &self,
        id: &str,
        from: &[DeliveryState],
        batch_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let result = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                Expr::value(DeliveryState::Pending.as_str()),
            )
            .col_expr(
                delivery::Column::BatchId,
                Expr::value(batch_id.map(str::to_owned)),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(Utc::now()))
            .col_expr(
                delivery::Column::LeaseOwner,
                Expr::value(self.owner.clone()),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Utc::now() + self.lease),
            )
            .filter(delivery::Column::Id.eq(id))
            .filter(delivery::Column::State.is_in(from))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Writes every field of the delivery, which this replica must hold the lease of, and
    /// its item in the batch that claimed it (`batch_id`), in one transaction. A delivery in
    /// an end state gives its lease up.
    ///
    /// Both are written at once because no later batch lists a settled delivery again: an
    /// item left at `pending` by a process that died right after the attempt would stay
    /// wrong for good.
    pub(crate) async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.write(commit::Write::Delivery(delivery.clone()))
            .await
            .map(drop)
    }

    /// Commits `write`: through the group commit queue, or directly in the committing task's
    /// own copy of the store.
    async fn write(&self, write: commit::Write) -> Result<commit::Written, StoreError> {
        match &self.commit {
            Some(queue) => queue.write(write).await,
            None => self.write_now(write).await,
        }
    }

    /// Writes the delivery inside `transaction` and adds its batch item to `items`, as
    /// `save_delivery` describes. Returns `LeaseLost` with nothing written or added when this
    /// replica no longer holds the lease.
    async fn write_delivery(
        &self,
        transaction: &DatabaseTransaction,
        delivery: &Delivery,
        items: &mut ItemWrites,
    ) -> Result<(), StoreError> {
        self.update_leased(transaction, delivery).await?;
        items.add(delivery);
        Ok(())
    }

    /// Updates `delivery`'s row if this replica holds its lease, and returns `LeaseLost` with
    /// nothing written otherwise. On PostgreSQL the row stays locked until `transaction` ends.
    async fn update_leased(
        &self,
        transaction: &DatabaseTransaction,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        let mut row = delivery_to_row(delivery)?;
        row.updated_at = Set(Utc::now());
        let in_flight = matches!(
            delivery.state,
            DeliveryState::Pending | DeliveryState::Rendered | DeliveryState::Submitting
        );
        if !in_flight {
            row.lease_owner = Set(None);
            row.lease_until = Set(None);
        }
        // The lease check fences off a replica whose lease expired while it worked: it must
        // not record a state, and above all not `submitting`, for a delivery another replica
        // took over.
        let result = delivery::Entity::update_many()
            .set(row)
            .filter(delivery::Column::Id.eq(&delivery.id))
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .exec(transaction)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::LeaseLost {
                id: delivery.id.clone(),
            });
        }
        Ok(())
    }

    /// Returns the earliest retry time of any deferred delivery.
    pub(crate) async fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = delivery::Entity::find()
            .filter(delivery::Column::State.eq(DeliveryState::Deferred.as_str()))
            .filter(delivery::Column::NextAttemptAt.is_not_null())
            .order_by_asc(delivery::Column::NextAttemptAt)
            .one(&self.db)
            .await?;
        Ok(row.and_then(|row| row.next_attempt_at))
    }

    /// Tells whether a revision of invoice `number` before `revision` was sent, so that
    /// `revision` corrects an invoice the customer has.
    pub(crate) async fn sent_before_revision(
        &self,
        number: &str,
        revision: u32,
    ) -> Result<bool, StoreError> {
        if revision <= 1 {
            return Ok(false);
        }
        let found = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::InvoiceNumber.eq(number))
            .filter(delivery::Column::InvoiceRevision.lt(revision as i32))
            .filter(delivery::Column::State.eq(DeliveryState::Sent.as_str()))
            .into_tuple::<String>()
            .one(&self.db)
            .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` deliveries whose last outcome is not yet in the email log, in the order
    /// of their ids, starting after the id `after`.
    pub(crate) async fn unlogged_deliveries(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let settled: Vec<&str> = [
            DeliveryState::Sent,
            DeliveryState::Failed,
            DeliveryState::Deferred,
            DeliveryState::Unknown,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        let mut query = delivery::Entity::find();
        if let Some(after) = after {
            query = query.filter(delivery::Column::Id.gt(after));
        }
        let rows = query
            .filter(delivery::Column::Logged.eq(false))
            .filter(delivery::Column::State.is_in(settled))
            .filter(delivery::Column::Attempts.gt(0))
            .order_by_asc(delivery::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    /// Marks delivery `id` as logged if its latest attempt is still `attempt`, the one whose
    /// outcome was appended. A later attempt, started by another replica in the meantime,
    /// stays unlogged until its own outcome is appended.
    pub(crate) async fn mark_logged(&self, id: &str, attempt: u32) -> Result<(), StoreError> {
        self.write(commit::Write::Logged {
            id: id.to_owned(),
            attempt,
        })
        .await
        .map(drop)
    }

    /// Returns once every delivery write queued before this call is committed, has failed or
    /// was dropped (a `submitting` write whose caller stopped waiting). What the caller reads
    /// next then shows them.
    pub(crate) async fn flush_writes(&self) -> Result<(), StoreError> {
        self.write(commit::Write::Flush).await.map(drop)
    }

    pub(crate) async fn document(
        &self,
        invoice_number: &str,
        revision: u32,
    ) -> Result<Option<Document>, StoreError> {
        find_document(&self.db, invoice_number, revision).await
    }

    /// Returns the facts kept with the frozen PDF of `revision`, reading no PDF content:
    /// `None` when the revision has no frozen PDF, `Some(None)` when it was frozen before
    /// facts were kept.
    pub(crate) async fn document_facts(
        &self,
        invoice_number: &str,
        revision: u32,
    ) -> Result<Option<Option<DocumentFacts>>, StoreError> {
        let row: Option<Option<String>> = document::Entity::find()
            .select_only()
            .column(document::Column::FactsJson)
            .filter(document::Column::InvoiceNumber.eq(invoice_number))
            .filter(document::Column::InvoiceRevision.eq(revision as i32))
            .into_tuple()
            .one(&self.db)
            .await?;
        let Some(json) = row else {
            return Ok(None);
        };
        Ok(Some(parse_facts(
            invoice_number,
            revision,
            json.as_deref(),
        )?))
    }

    /// Returns which of `revisions` have a frozen PDF, reading no PDF content.
    pub(crate) async fn frozen_revisions(
        &self,
        revisions: &[(&str, u32)],
    ) -> Result<HashSet<(String, u32)>, StoreError> {
        if revisions.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<(String, i32)> = document::Entity::find()
            .select_only()
            .column(document::Column::InvoiceNumber)
            .column(document::Column::InvoiceRevision)
            .filter(document::Column::InvoiceNumber.is_in(invoice_numbers(revisions)))
            .into_tuple()
            .all(&self.db)
            .await?;
        let requested: HashSet<(&str, u32)> = revisions.iter().copied().collect();
        Ok(rows
            .into_iter()
            .map(|(number, revision)| (number, revision as u32))
            .filter(|(number, revision)| requested.contains(&(number.as_str(), *revision)))
            .collect())
    }

    /// Keeps the freshly rendered `document` unless its revision already has one, and writes
    /// `delivery` (as `save_delivery` does, in the state the caller set) with the stored
    /// document's SHA-256 and file name, in one transaction. Returns the stored document: the
    /// first rendering of a revision is the one every send attaches, also when another replica
    /// froze it a moment earlier.
    pub(crate) async fn freeze_rendered(
        &self,
        document: Document,
        delivery: &mut Delivery,
    ) -> Result<Document, StoreError> {
        let write = commit::Write::Freeze {
            document,
            delivery: delivery.clone(),
        };
        let commit::Written::Frozen(frozen) = self.write(write).await? else {
            unreachable!("a freeze is answered with its frozen document");
        };
        delivery.pdf_sha256 = frozen.sha256.clone();
        delivery.attachment_name = frozen.file_name.clone();
        Ok(frozen)
    }

    /// Keeps `document` unless its revision already has one, writes `delivery` with the kept
    /// document's SHA-256 and file name and adds its batch item to `items`. Returns the
    /// document another replica froze first, or `None` when `document` was kept. The
    /// delivery's row is updated first, because its update checks the lease, so a lost lease
    /// fails before anything is written.
    async fn freeze_in(
        &self,
        transaction: &DatabaseTransaction,
        document: &Document,
        delivery: &Delivery,
        items: &mut ItemWrites,
    ) -> Result<Option<Document>, StoreError> {
        let mut delivery = delivery.clone();
        delivery.pdf_sha256 = document.sha256.clone();
        delivery.attachment_name = document.file_name.clone();
        self.update_leased(transaction, &delivery).await?;
        let row = document::ActiveModel {
            invoice_number: Set(document.invoice_number.clone()),
            invoice_revision: Set(document.invoice_revision as i32),
            sha256: Set(document.sha256.clone()),
            file_name: Set(document.file_name.clone()),
            page_count: Set(document.page_count as i32),
            content: Set(document.content.clone()),
            created_at: Set(Utc::now()),
            facts_json: Set(document
                .facts
                .as_ref()
                .map(|facts| serde_json::to_string(facts).expect("facts serialize to JSON"))),
            ..Default::default()
        };
        let inserted = document::Entity::insert(row)
            .on_conflict_do_nothing_on([
                document::Column::InvoiceNumber,
                document::Column::InvoiceRevision,
            ])
            .exec_without_returning(transaction)
            .await?;
        // Only a revision frozen before this render needs reading back, and the delivery
        // then takes that document's SHA-256 and file name.
        let stored = if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            None
        } else {
            let stored = find_document(
                transaction,
                &document.invoice_number,
                document.invoice_revision,
            )
            .await?
            .ok_or_else(|| {
                corrupt(
                    "or_documents",
                    document.invoice_number.clone(),
                    "not found after an insert that found it present",
                )
            })?;
            delivery.pdf_sha256 = stored.sha256.clone();
            delivery.attachment_name = stored.file_name.clone();
            // The update above checked the lease, and a settled state gave it up, so this
            // one must not check it again.
            delivery::Entity::update_many()
                .col_expr(
                    delivery::Column::PdfSha256,
                    Expr::value(delivery.pdf_sha256.clone()),
                )
                .col_expr(
                    delivery::Column::AttachmentName,
                    Expr::value(delivery.attachment_name.clone()),
                )
                .filter(delivery::Column::Id.eq(&delivery.id))
                .exec(transaction)
                .await?;
            Some(stored)
        };
        items.add(&delivery);
        Ok(stored)
    }
}

/// The batch items that the delivery writes of one transaction set. They are stored with one
/// statement just before the commit, instead of one statement per write.
#[derive(Debug, Default)]
struct ItemWrites {
    /// Each item's batch id and delivery id, and its row.
    rows: Vec<((String, String), batch_item::ActiveModel)>,
}

impl ItemWrites {
    /// Adds the item of `delivery` in its batch, if it has one. A later write of the same
    /// item replaces the earlier one, because PostgreSQL rejects a statement that changes a
    /// row twice.
    fn add(&mut self, delivery: &Delivery) {
        let Some(batch_id) = &delivery.batch_id else {
            return;
        };
        let key = (batch_id.clone(), delivery.id.clone());
        self.rows.retain(|(stored, _)| *stored != key);
        self.rows.push((key, batch_item_row(batch_id, delivery)));
    }

    /// Stores the items in `transaction`, adding the ones the batches do not have yet.
    async fn store(self, transaction: &DatabaseTransaction) -> Result<(), StoreError> {
        let rows: Vec<batch_item::ActiveModel> =
            self.rows.into_iter().map(|(_, row)| row).collect();
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            batch_item::Entity::insert_many(part.to_vec())
                .on_conflict(batch_item_on_conflict())
                .exec_without_returning(transaction)
                .await?;
        }
        Ok(())
    }
}

/// Sets `logged` on delivery `id` while its latest attempt is `attempt`.
async fn mark_logged_in<C: ConnectionTrait>(
    db: &C,
    id: &str,
    attempt: u32,
) -> Result<(), StoreError> {
    let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Logged, Expr::value(true))
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::Attempts.eq(attempt))
        .exec(db)
        .await?;
    Ok(())
}

/// Returns the invoice numbers of `revisions`, each once, for an `IN` list: an invoice sent per
/// To recipient has one entry per recipient.
fn invoice_numbers<'a>(revisions: &[(&'a str, u32)]) -> HashSet<&'a str> {
    revisions.iter().map(|(number, _)| *number).collect()
}

async fn find_document<C: ConnectionTrait>(
    db: &C,
    invoice_number: &str,
    revision: u32,
) -> Result<Option<Document>, StoreError> {
    let row = document::Entity::find()
        .filter(document::Column::InvoiceNumber.eq(invoice_number))
        .filter(document::Column::InvoiceRevision.eq(revision as i32))
        .one(db)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // Only a resend of an earlier revision needs the facts, and `document_facts` reports them
    // as corrupt there, so a bad value does not keep the PDF from being sent.
    let facts = parse_facts(
        &row.invoice_number,
        row.invoice_revision as u32,
        row.facts_json.as_deref(),
    )
    .unwrap_or_else(|error| {
        tracing::warn!(invoice = %row.invoice_number, revision = row.invoice_revision, %error, "ignoring the stored facts of a frozen PDF");
        None
    });
    Ok(Some(Document {
        invoice_number: row.invoice_number,
        invoice_revision: row.invoice_revision as u32,
        sha256: row.sha256,
        file_name: row.file_name,
        page_count: row.page_count as u32,
        content: row.content,
        facts: facts.map(Box::new),
    }))
}

/// Inserts the delivery's item in batch `batch_id`, or updates its state and reason if the
/// batch has one. It is one statement, so two replicas recording the same item cannot fail
/// on the table's unique index.
async fn upsert_batch_item<C: ConnectionTrait>(
    db: &C,
    batch_id: &str,
    delivery: &Delivery,
) -> Result<(), StoreError> {
    batch_item::Entity::insert(batch_item_row(batch_id, delivery))
        .on_conflict(batch_item_on_conflict())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Returns the batch item row of `delivery` in batch `batch_id`.
fn batch_item_row(batch_id: &str, delivery: &Delivery) -> batch_item::ActiveModel {
    batch_item::ActiveModel {
        batch_id: Set(batch_id.to_owned()),
        delivery_id: Set(delivery.id.clone()),
        invoice_number: Set(delivery.invoice_number.clone()),
        state: Set(delivery.state.as_str().to_owned()),
        reason: Set(delivery.reason.clone()),
        ..Default::default()
    }
}

/// Returns the clause that turns a batch item insert into an update of the item's state and
/// reason when the batch already has the delivery.
fn batch_item_on_conflict() -> OnConflict {
    OnConflict::columns([batch_item::Column::BatchId, batch_item::Column::DeliveryId])
        .update_columns([batch_item::Column::State, batch_item::Column::Reason])
        .to_owned()
}

fn create_sqlite_folder(url: &str) -> Result<(), StoreError> {
    let Some(folder) = invoicer_kit::config::sqlite_folder(url) else {
        return Ok(());
    };
    std::fs::create_dir_all(&folder).map_err(|source| StoreError::DataDir {
        path: folder.display().to_string(),
        source,
    })
}

fn parse_facts(
    invoice_number: &str,
    revision: u32,
    json: Option<&str>,
) -> Result<Option<DocumentFacts>, StoreError> {
    let Some(json) = json else {
        return Ok(None);
    };
    serde_json::from_str(json).map(Some).map_err(|error| {
        corrupt(
            "or_documents",
            format!("{invoice_number} revision {revision}"),
            format!("facts_json is not valid: {error}"),
        )
    })
}

fn corrupt(table: &'static str, id: String, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        id,
        message: message.into(),
    }
}

fn parse_state(table: &'static str, id: &str, value: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::parse(value)
        .ok_or_else(|| corrupt(table, id.to_owned(), format!("unknown state {value:?}")))
}

fn batch_from_row(row: batch::Model) -> Result<Batch, StoreError> {
    let bad = |message: String| corrupt("or_batches", row.id.clone(), message);
    let business_date = NaiveDate::parse_from_str(&row.business_date, "%Y-%m-%d")
        .map_err(|_| bad(format!("invalid business date {:?}", row.business_date)))?;
    let trigger = BatchTrigger::parse(&row.trigger)
        .ok_or_else(|| bad(format!("unknown trigger {:?}", row.trigger)))?;
    let status = BatchStatus::parse(&row.status)
        .ok_or_else(|| bad(format!("unknown status {:?}", row.status)))?;
    Ok(Batch {
        id: row.id,
        business_date,
        trigger,
        status,
        cutoff: row.cutoff,
        window_start: row.window_start,
        started_at: row.started_at,
        finished_at: row.finished_at,
        error: row.error,
    })
}

fn mailboxes_to_json(mailboxes: &[Mailbox]) -> Result<String, StoreError> {
    let stored: Vec<StoredMailbox> = mailboxes
        .iter()
        .map(|m| StoredMailbox {
            name: m.name.clone(),
            address: m.address.clone(),
        })
        .collect();
    serde_json::to_string(&stored)
        .map_err(|e| corrupt("or_deliveries", String::new(), e.to_string()))
}

fn mailboxes_from_json(id: &str, json: &str) -> Result<Vec<Mailbox>, StoreError> {
    let stored: Vec<StoredMailbox> = serde_json::from_str(json)
        .map_err(|e| corrupt("or_deliveries", id.to_owned(), e.to_string()))?;
    Ok(stored
        .into_iter()
        .map(|m| Mailbox {
            name: m.name,
            address: m.address,
        })
        .collect())
}

fn delivery_to_row(d: &Delivery) -> Result<delivery::ActiveModel, StoreError> {
    let recipients = serde_json::to_string(&d.recipients)
        .map_err(|e| corrupt("or_deliveries", d.id.clone(), e.to_string()))?;
    let accepted = serde_json::to_string(&d.accepted)
        .map_err(|e| corrupt("or_deliveries", d.id.clone(), e.to_string()))?;
    let requested = d
        .requested
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| corrupt("or_deliveries", d.id.clone(), e.to_string()))?;
    Ok(delivery::ActiveModel {
        id: Set(d.id.clone()),
        delivery_key: Set(d.key.clone()),
        invoice_number: Set(d.invoice_number.clone()),
        invoice_revision: Set(d.invoice_revision as i32),
        customer_code: Set(d.customer_code.clone()),
        purpose: Set(d.purpose.as_str().to_owned()),
        request_id: Set(d.request_id.clone()),
        state: Set(d.state.as_str().to_owned()),
        to_json: Set(mailboxes_to_json(&d.to)?),
        cc_json: Set(mailboxes_to_json(&d.cc)?),
        bcc_json: Set(mailboxes_to_json(&d.bcc)?),
        subject: Set(d.subject.clone()),
        attachment_name: Set(d.attachment_name.clone()),
        pdf_sha256: Set(d.pdf_sha256.clone()),
        message_id: Set(d.message_id.clone()),
        reason: Set(d.reason.clone()),
        attempts: Set(d.attempts as i32),
        next_attempt_at: Set(d.next_attempt_at),
        batch_id: Set(d.batch_id.clone()),
        recipients_json: Set(recipients),
        server_reply: Set(d.server_reply.clone()),
        destination: Set(d.destination.clone()),
        actor: Set(d.actor.clone()),
        resend_reason: Set(d.resend_reason.clone()),
        trace_id: Set(d.trace_id.clone()),
        logged: Set(d.logged),
        created_at: Set(d.created_at),
        updated_at: Set(d.updated_at),
        retry_since: Set(d.retry_since),
        accepted_json: Set(accepted),
        requested_json: Set(requested),
        // The lease columns belong to `claim` and `release`; writing a delivery keeps them.
        ..Default::default()
    })
}

fn delivery_from_row(row: delivery::Model) -> Result<Delivery, StoreError> {
    let state = parse_state("or_deliveries", &row.id, &row.state)?;
    let purpose = Purpose::parse(&row.purpose).ok_or_else(|| {
        corrupt(
            "or_deliveries",
            row.id.clone(),
            format!("unknown purpose {:?}", row.purpose),
        )
    })?;
    let recipients = serde_json::from_str(&row.recipients_json)
        .map_err(|e| corrupt("or_deliveries", row.id.clone(), e.to_string()))?;
    let accepted = serde_json::from_str(&row.accepted_json)
        .map_err(|e| corrupt("or_deliveries", row.id.clone(), e.to_string()))?;
    let requested = row
        .requested_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt("or_deliveries", row.id.clone(), e.to_string()))?;
    Ok(Delivery {
        to: mailboxes_from_json(&row.id, &row.to_json)?,
        cc: mailboxes_from_json(&row.id, &row.cc_json)?,
        bcc: mailboxes_from_json(&row.id, &row.bcc_json)?,
        id: row.id,
        key: row.delivery_key,
        invoice_number: row.invoice_number,
        invoice_revision: row.invoice_revision as u32,
        customer_code: row.customer_code,
        purpose,
        request_id: row.request_id,
        state,
        subject: row.subject,
        attachment_name: row.attachment_name,
        pdf_sha256: row.pdf_sha256,
        message_id: row.message_id,
        reason: row.reason,
        attempts: row.attempts as u32,
        next_attempt_at: row.next_attempt_at,
        batch_id: row.batch_id,
        recipients,
        server_reply: row.server_reply,
        destination: row.destination,
        actor: row.actor,
        resend_reason: row.resend_reason,
        trace_id: row.trace_id,
        logged: row.logged,
        created_at: row.created_at,
        updated_at: row.updated_at,
        retry_since: row.retry_since,
        accepted,
        requested,
    })
}
