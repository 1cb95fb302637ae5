//! Group commit of the writes that end a delivery's steps.
//!
//! Each delivery stores its state before it calls out (`submitting` before the mail server,
//! the outcome before the email log), so a batch of 8 deliveries at a time commits about
//! three transactions per invoice. On SQLite every commit syncs the log to disk and rewrites
//! the pages it touched, and on PostgreSQL every one is a round trip and a log flush of its
//! own. One task per `Store` takes these writes from a queue and commits all the writes
//! waiting there together, in one transaction. A caller still returns only after its write
//! is committed, so nothing calls out before its state is on disk.
//!
//! A write that finds its lease taken over writes nothing, fails alone and leaves the rest of
//! its group as it is. Any other error rolls the group back, and each write of it is then
//! tried again in a transaction of its own, so one bad write costs no other write its
//! commit. A queued write is committed even when its caller stops waiting for it, except
//! one that stores `submitting` (see `Write::stores_submitting`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::{ItemWrites, Store, StoreError};
use crate::model::{Delivery, DeliveryState, Document};

/// Maximum number of writes one transaction commits.
const MAX_GROUP: usize = 64;

/// Capacity of the queue: writes waiting for the committing task before callers wait to add
/// theirs.
const QUEUE: usize = 256;

/// One write of a delivery step.
#[derive(Debug)]
pub(super) enum Write {
    /// `Store::save_delivery`.
    Delivery(Delivery),
    /// `Store::freeze_rendered`: the document and the delivery, in the state the caller set.
    Freeze {
        document: Document,
        delivery: Delivery,
    },
    /// `Store::mark_logged`: the delivery id and the attempt whose outcome was appended.
    Logged { id: String, attempt: u32 },
    /// `Store::flush_writes`: writes nothing, and is done once every write queued before it
    /// is committed, has failed or was dropped (see `Write::stores_submitting`).
    Flush,
}

/// The result of a committed write.
#[derive(Debug)]
pub(super) enum Written {
    Done,
    /// The frozen document of a `Freeze`: the caller's, or the one another replica froze
    /// first.
    Frozen(Document),
}

/// The result of applying a write inside a transaction: `Frozen(None)` when the caller's own
/// document was stored, which `finish` then hands back without copying it.
#[derive(Debug)]
enum Applied {
    Done,
    Frozen(Option<Document>),
}

/// Converts the result of applying `write` into the result its caller gets.
fn finish(write: Write, applied: Result<Applied, StoreError>) -> Result<Written, StoreError> {
    match (applied?, write) {
        (Applied::Frozen(None), Write::Freeze { document, .. }) => Ok(Written::Frozen(document)),
        (Applied::Frozen(Some(stored)), _) => Ok(Written::Frozen(stored)),
        _ => Ok(Written::Done),
    }
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// Counters of the committing task, read by the tests.
#[derive(Debug, Default)]
pub(super) struct CommitCounts {
    /// Writes taken from the queue.
    pub(super) received: AtomicU64,
    /// Transactions committed, groups and single writes alike.
    pub(super) commits: AtomicU64,
    /// Groups rolled back and tried again a write at a time.
    pub(super) retried_groups: AtomicU64,
}

/// The queue of the committing task, cloned with the `Store`. The task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    /// Shared with the task and read by the tests.
    #[cfg_attr(not(test), expect(dead_code))]
    pub(super) counts: Arc<CommitCounts>,
}

impl GroupCommit {
    /// Starts the committing task on `store`, a `Store` without a `GroupCommit`: it writes
    /// directly, and keeps no sender that would keep the task alive.
    pub(super) fn start(store: Store) -> GroupCommit {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let counts = Arc::new(CommitCounts::default());
        tokio::spawn(run(store, queue, counts.clone()));
        GroupCommit { jobs, counts }
    }

    /// Queues `write` and waits until it is committed or has failed.
    pub(super) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Returns how many writes wait in the queue, for tests.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

fn stopped() -> StoreError {
    StoreError::Database(sea_orm::DbErr::Custom(
        "delivery write failed: the orchestrator's committing task stopped, so restart the \
         orchestrator"
            .to_owned(),
    ))
}

async fn run(store: Store, mut queue: mpsc::Receiver<Job>, counts: Arc<CommitCounts>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        counts
            .received
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        group.retain(|job| {
            let abandoned = job.reply.is_closed() && job.write.stores_submitting();
            if abandoned {
                tracing::warn!(delivery_id = job.write.delivery_id().unwrap_or_default(), "caller stopped waiting before `submitting` was stored, so the delivery keeps its earlier state");
            }
            !abandoned
        });
        if group.is_empty() {
            continue;
        }
        if group.len() == 1 {
            let job = group.pop().expect("a group of one");
            reply_alone(&store, job, &counts).await;
            continue;
        }
        match store.write_group(&group).await {
            Ok(results) => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(writes = group.len(), "group of delivery writes committed");
                for (job, applied) in group.into_iter().zip(results) {
                    let _ = job.reply.send(finish(job.write, applied));
                }
            }
            Err(error) => {
                counts.retried_groups.fetch_add(1, Ordering::Relaxed);
                let ids: Vec<&str> = group
                    .iter()
                    .filter_map(|job| job.write.delivery_id())
                    .collect();
                tracing::warn!(%error, writes = group.len(), delivery_ids = ?ids, "group of delivery writes rolled back, writing each in a transaction of its own");
                for job in group {
                    reply_alone(&store, job, &counts).await;
                }
            }
        }
    }
}

/// Commits `job` in a transaction of its own and sends the result to its caller.
async fn reply_alone(store: &Store, job: Job, counts: &CommitCounts) {
    let applied = store.write_alone(&job.write).await;
    if applied.is_ok() && !matches!(job.write, Write::Flush) {
        counts.commits.fetch_add(1, Ordering::Relaxed);
    }
    let _ = job.reply.send(finish(job.write, applied));
}

impl Write {
    /// Returns whether the write stores `submitting`. Such a write is dropped when its caller has
    /// stopped waiting, as a task that is aborted does: nothing would send the message, and a
    /// stored `submitting` becomes `unknown`, which is never retried.
    fn stores_submitting(&self) -> bool {
        match self {
            Write::Delivery(delivery) | Write::Freeze { delivery, .. } => {
                delivery.state == DeliveryState::Submitting
            }
            Write::Logged { .. } | Write::Flush => false,
        }
    }

    fn delivery_id(&self) -> Option<&str> {
        match self {
            Write::Delivery(delivery) | Write::Freeze { delivery, .. } => Some(&delivery.id),
            Write::Logged { id, .. } => Some(id),
            Write::Flush => None,
        }
    }
}

impl Store {
    /// Applies every write of `group` in one transaction and commits it. A lost lease is that
    /// write's result. Any other error rolls the whole group back and is returned.
    async fn write_group(
        &self,
        group: &[Job],
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let transaction = self.db.begin().await?;
        let mut items = ItemWrites::default();
        let mut results = Vec::with_capacity(group.len());
        for job in group {
            match self.apply(&transaction, &job.write, &mut items).await {
                Ok(written) => results.push(Ok(written)),
                Err(error @ StoreError::LeaseLost { .. }) => results.push(Err(error)),
                Err(error) => {
                    transaction.rollback().await?;
                    return Err(error);
                }
            }
        }
        if let Err(error) = items.store(&transaction).await {
            transaction.rollback().await?;
            return Err(error);
        }
        transaction.commit().await?;
        Ok(results)
    }

    /// Commits `write` in a transaction of its own, without the queue.
    pub(super) async fn write_now(&self, write: Write) -> Result<Written, StoreError> {
        let applied = self.write_alone(&write).await;
        finish(write, applied)
    }

    /// Applies `write` in a transaction of its own and commits it. The email log mark is one
    /// statement, so it is committed by itself without `BEGIN` and `COMMIT` around it.
    async fn write_alone(&self, write: &Write) -> Result<Applied, StoreError> {
        match write {
            Write::Logged { id, attempt } => {
                super::mark_logged_in(&self.db, id, *attempt).await?;
                return Ok(Applied::Done);
            }
            Write::Flush => return Ok(Applied::Done),
            Write::Delivery(_) | Write::Freeze { .. } => {}
        }
        let transaction = self.db.begin().await?;
        let mut items = ItemWrites::default();
        let applied = match self.apply(&transaction, write, &mut items).await {
            Ok(written) => items.store(&transaction).await.map(|()| written),
            Err(error) => Err(error),
        };
        match applied {
            Ok(written) => {
                transaction.commit().await?;
                Ok(written)
            }
            Err(error) => {
                transaction.rollback().await?;
                Err(error)
            }
        }
    }

    /// Applies `write` inside `transaction` and adds the batch item it sets to `items`, which
    /// the caller stores before it commits. A `LeaseLost` error comes before the write changed
    /// anything, so the transaction can go on with other writes.
    async fn apply(
        &self,
        transaction: &DatabaseTransaction,
        write: &Write,
        items: &mut ItemWrites,
    ) -> Result<Applied, StoreError> {
        match write {
            Write::Delivery(delivery) => {
                self.write_delivery(transaction, delivery, items).await?;
                Ok(Applied::Done)
            }
            Write::Freeze { document, delivery } => {
                let stored = self
                    .freeze_in(transaction, document, delivery, items)
                    .await?;
                Ok(Applied::Frozen(stored))
            }
            Write::Logged { id, attempt } => {
                super::mark_logged_in(transaction, id, *attempt).await?;
                Ok(Applied::Done)
            }
            Write::Flush => Ok(Applied::Done),
        }
    }
}
