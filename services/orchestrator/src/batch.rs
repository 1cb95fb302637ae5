//! The batch: find every invoice due for notifying, make or claim its delivery, deliver them
//! concurrently and reconcile the counts.

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{HashSet, VecDeque};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use crate::deliver::{FrozenPdf, Planned, with_write_retries};
use crate::engine::{Engine, Progress, RunningBatch};
use crate::error::{OrchestratorError, catch_panic};
use crate::model::{
    Batch, BatchCounts, BatchItem, BatchStatus, BatchTrigger, Delivery, DeliveryState, Purpose,
};
use crate::notifier::PlanningNotifiers;
use crate::outgoing::Target;
use crate::store::{ItemPageRequest, StoreError};
use crate::upstream::InvoiceSummary;

/// A batch to run: its window and whether to write anything.
#[derive(Debug, Clone)]
pub(crate) struct BatchRequest {
    pub cutoff: DateTime<Utc>,
    pub lookback: chrono::Duration,
    pub dry_run: bool,
    pub trigger: BatchTrigger,
    pub business_date: NaiveDate,
}

/// Most deliveries a batch report lists. Those that do not fit are read a page at a time, so
/// a batch of any size is never held in memory whole.
pub(crate) const REPORT_ITEMS: u64 = 1000;

/// A batch with its counts and the outcomes that need attention.
#[derive(Debug, Clone)]
pub(crate) struct BatchReport {
    pub batch: Batch,
    pub counts: BatchCounts,
    /// The first page of the items not sent or sent with a reason; the whole plan of a dry
    /// run.
    pub items: Vec<BatchItem>,
    /// The start of the next page of those items (`ItemPageRequest::after`), or `None` when
    /// `items` contains them all.
    pub next_after: Option<i64>,
    /// The scheduled batch of that business date had run already; nothing was sent now.
    pub replayed: bool,
}

/// The batch's decision for one invoice it found.
enum Plan {
    /// Sent, failed for good or maybe delivered: not eligible again.
    Settled,
    /// Deferred with a retry time still ahead: counted, not attempted.
    Waiting(Delivery),
    /// Claimed by this batch: deliver it.
    Deliver(Delivery),
    /// No delivery exists yet: the chunk inserts this one and delivers it.
    New(Delivery),
}

/// The reason of a delivery given back untouched because the server was stopping.
pub(crate) const STOPPING_REASON: &str =
    "not attempted: the server was stopping; the next batch or retry sends it";

/// The reason of a delivery given back untouched because its batch failed.
const BATCH_FAILED_REASON: &str =
    "not attempted: the batch failed before this delivery; the next batch or retry sends it";

/// Returns the progress of a running batch, after a chunk was planned or `delivery` ended.
fn running(batch: &Batch, counts: BatchCounts, total: u32, delivery: Option<Delivery>) -> Progress {
    Progress {
        batch_id: batch.id.clone(),
        status: BatchStatus::Running,
        counts,
        done: counts.eligible,
        delivery,
        total,
    }
}

/// One chunk's plan, handed from planning to delivering.
#[derive(Default)]
struct PlannedChunk {
    /// The states of the deliveries waiting for their retry time: counted, not attempted.
    waiting: Vec<DeliveryState>,
    /// The deliveries to attempt, each with what planning found out about it.
    to_deliver: Vec<(Delivery, Planned)>,
    /// The deliveries planned up to this chunk plus the invoices not planned yet, each
    /// counted as one delivery: the batch's total, exact once the last chunk is planned.
    total: u32,
}

impl Engine {
    pub(crate) async fn run_batch(
        &self,
        request: BatchRequest,
    ) -> Result<BatchReport, OrchestratorError> {
        if request.dry_run {
            // A real run would only show the scheduled batch of this date that ran already,
            // so the dry run shows that batch too instead of a plan nothing would carry out.
            if request.trigger == BatchTrigger::Schedule
                && let Some(existing) = self.store.scheduled_batch(request.business_date).await?
            {
                return self.stored_report(existing, true).await;
            }
            return self.plan_batch(&request).await;
        }
        // A manual trigger while a batch runs is rejected, naming that batch. A scheduled one
        // waits for it, and anything waits for a retry round, so no scheduled night is lost.
        if request.trigger == BatchTrigger::Manual
            && let Some(error) = self.already_running()
        {
            return Err(error);
        }
        let _work = self.work_lock.lock().await;
        // A draining host waits for the batch to give back what it did not attempt.
        let _draining = self.shutdown.begin_work();
        let batch = Batch {
            id: uuid::Uuid::now_v7().to_string(),
            business_date: request.business_date,
            trigger: request.trigger,
            status: BatchStatus::Running,
            cutoff: request.cutoff,
            window_start: request.cutoff - request.lookback,
            started_at: Utc::now(),
            finished_at: None,
            error: None,
        };
        if !self.store.insert_batch(&batch).await? {
            // A scheduled batch for this business date exists: a second trigger sends nothing.
            let existing = self.store.scheduled_batch(request.business_date).await?;
            let existing = existing.ok_or_else(|| {
                OrchestratorError::FailedPrecondition(format!(
                    "batch {} could not be stored",
                    batch.id
                ))
            })?;
            tracing::info!(batch_id = %existing.id, business_date = %request.business_date, "scheduled batch already exists; nothing to do");
            return self.stored_report(existing, true).await;
        }
        tracing::info!(batch_id = %batch.id, business_date = %batch.business_date, trigger = batch.trigger.as_str(), cutoff = %batch.cutoff, window_start = %batch.window_start, "batch started");

        let progress = self.register_running(&batch);
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            parent: None,
            "batch.run",
            batch.id = %batch.id,
            batch.trigger = batch.trigger.as_str(),
            batch.business_date = %batch.business_date,
        );
        invoicer_telemetry::link_to_current(&span);
        // Back-to-back batches keep the retry loop from its rounds. So a batch itself appends
        // the outcomes the email log missed, such as while audit-log was down, before its
        // attempts (whose outcomes would replace them) and again before it returns.
        // A panic fails the batch instead of leaving it `running`, and the retry round settles
        // the deliveries it did not end.
        let outcome = catch_panic(
            "batch",
            async {
                self.catch_up_email_log(&batch.id).await;
                let outcome = self.execute(&batch, &progress).await;
                self.catch_up_email_log(&batch.id).await;
                outcome
            }
            .instrument(span),
        )
        .await;
        self.unregister_running(&batch.id);

        let (status, error) = match &outcome {
            Ok(()) => (BatchStatus::Completed, None),
            Err(error) => (BatchStatus::Failed, Some(error.to_string())),
        };
        // Tried again like an outcome, because a batch left `running` keeps its lease renewed
        // for as long as this process runs.
        with_write_retries("storing the end of the batch", &batch.id, || {
            self.store.finish_batch(&batch.id, status, error.clone())
        })
        .await?;
        let batch = self.store.get_batch(&batch.id).await?.unwrap_or(batch);
        let report = self.stored_report(batch, false).await?;
        let counts = report.counts;
        invoicer_telemetry::metrics().record_batch(
            started.elapsed(),
            u64::from(counts.eligible),
            status.as_str(),
        );
        let _ = progress.send(Progress {
            batch_id: report.batch.id.clone(),
            status,
            counts,
            done: counts.eligible,
            delivery: None,
            total: counts.eligible,
        });
        match &error {
            None => {
                tracing::info!(batch_id = %report.batch.id, eligible = counts.eligible, sent = counts.sent, skipped = counts.skipped, failed = counts.failed, deferred = counts.deferred, unknown = counts.unknown, "batch completed")
            }
            Some(error) => {
                tracing::error!(batch_id = %report.batch.id, %error, sent = counts.sent, "batch failed")
            }
        }
        Ok(report)
    }

    /// Reads a stored batch's counts and the first page of its items that need attention.
    async fn stored_report(
        &self,
        batch: Batch,
        replayed: bool,
    ) -> Result<BatchReport, OrchestratorError> {
        let counts = self.store.batch_counts(&batch.id).await?;
        let page = ItemPageRequest {
            after: 0,
            limit: REPORT_ITEMS,
            attention_only: true,
        };
        let page = self.store.batch_items_page(&batch.id, &page).await?;
        Ok(BatchReport {
            batch,
            counts,
            items: page.items,
            next_after: page.next_after,
            replayed,
        })
    }

    /// Runs `append_unlogged` and logs a failure, which the retry loop's next round retries.
    async fn catch_up_email_log(&self, batch_id: &str) {
        if let Err(error) = self.append_unlogged().await {
            tracing::error!(batch_id, %error, "appending missed outcomes to the email log failed; the retry loop tries again");
        }
    }

    fn already_running(&self) -> Option<OrchestratorError> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .as_ref()
            .map(|batch| OrchestratorError::BatchRunning {
                batch_id: batch.id.clone(),
                business_date: batch.business_date.clone(),
            })
    }

    fn register_running(&self, batch: &Batch) -> broadcast::Sender<Progress> {
        let (sender, _) = broadcast::channel(1024);
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(RunningBatch {
            id: batch.id.clone(),
            business_date: batch.business_date.to_string(),
        });
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(batch.id.clone(), sender.clone());
        sender
    }

    fn unregister_running(&self, batch_id: &str) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(batch_id);
    }

    /// Plans and delivers the batch's invoices. Planning runs a chunk ahead of delivering, so
    /// the deliveries in flight do not drain at the end of each chunk while the next one is
    /// planned.
    async fn execute(
        &self,
        batch: &Batch,
        progress: &broadcast::Sender<Progress>,
    ) -> Result<(), OrchestratorError> {
        let summaries = self
            .upstream
            .list_invoices(batch.cutoff, batch.window_start)
            .await?;
        // One planned chunk waits while the one before it is delivered, so at most three are
        // in memory: the one delivering, the one waiting and the one being planned.
        let (chunks, planned) = mpsc::channel(1);
        // A panic in planning ends only planning, so the deliveries in flight still end.
        let (planning, delivering) = futures::join!(
            catch_panic(
                "batch planning",
                self.plan_chunks(batch, &summaries, chunks)
            ),
            self.deliver_planned(batch, planned, progress),
        );
        // A delivering error also ends planning, because the next hand-over fails, so it is
        // returned first.
        if let (Err(_), Err(error)) = (&delivering, &planning) {
            tracing::error!(batch_id = %batch.id, %error, "planning the batch failed too");
        }
        delivering?;
        planning?;
        if self.shutdown.is_triggered() {
            return Err(OrchestratorError::FailedPrecondition(
                "stopped early because the server was stopping; the deliveries not attempted are deferred and due at once, and the invoices not planned yet go out with the next batch".to_owned(),
            ));
        }
        Ok(())
    }

    /// Plans the summaries a chunk at a time and hands each chunk to `chunks`. Stops early when
    /// the server is stopping or the delivering side has ended.
    async fn plan_chunks(
        &self,
        batch: &Batch,
        summaries: &[InvoiceSummary],
        chunks: mpsc::Sender<PlannedChunk>,
    ) -> Result<(), OrchestratorError> {
        let mut planned = 0u32;
        let mut unplanned = summaries.len();
        // Planning a chunk at a time keeps a few chunks' deliveries in memory instead of a
        // whole batch, which can have 100,000. Nothing is delivered before the first chunk is
        // planned, so it has only as many invoices as can be in flight. Planning all 412 of
        // the Chinook export at once took 32 to 46 ms on PostgreSQL on a 2-core machine, in
        // which the render threads idled (docs/benchmarks/batch.md).
        let settings = &self.settings;
        for chunk in growing_chunks(summaries, settings.concurrency, settings.plan_chunk) {
            if self.shutdown.is_triggered() {
                break;
            }
            let mut next = self.plan_chunk(&batch.id, chunk).await?;
            planned +=
                u32::try_from(next.to_deliver.len() + next.waiting.len()).unwrap_or(u32::MAX);
            unplanned -= chunk.len();
            next.total = planned.saturating_add(u32::try_from(unplanned).unwrap_or(u32::MAX));
            if unplanned == 0 {
                let eligible = planned;
                tracing::info!(batch_id = %batch.id, found = summaries.len(), eligible, "batch planned");
            }
            if let Err(refused) = chunks.send(next).await {
                // Delivering ended with an error, which `execute` returns.
                let deliveries = refused
                    .0
                    .to_deliver
                    .into_iter()
                    .map(|(delivery, _)| delivery);
                self.give_back(&batch.id, deliveries).await;
                break;
            }
        }
        Ok(())
    }

    /// Plans a chunk of invoices with `plan_chunk_claiming`. When that fails, the deliveries it
    /// inserted or claimed are deferred, due at once, instead of staying claimed until the
    /// retry loop settles them.
    async fn plan_chunk(
        &self,
        batch_id: &str,
        chunk: &[InvoiceSummary],
    ) -> Result<PlannedChunk, OrchestratorError> {
        let mut claimed = Vec::new();
        let planned = self
            .plan_chunk_claiming(batch_id, chunk, &mut claimed)
            .await;
        if planned.is_err() {
            self.give_back(batch_id, claimed).await;
        }
        planned
    }

    /// Plans a chunk of invoices: inserts the new deliveries in one transaction, claims the
    /// existing ones that are due, and counts those waiting for their retry time. Adds each
    /// delivery it inserts or claims, both leased to this replica, to `claimed`.
    async fn plan_chunk_claiming(
        &self,
        batch_id: &str,
        chunk: &[InvoiceSummary],
        claimed: &mut Vec<Delivery>,
    ) -> Result<PlannedChunk, OrchestratorError> {
        let mut planned = PlannedChunk::default();
        let mut to_deliver = Vec::new();
        let mut fresh = Vec::new();
        let mut decided = Vec::new();
        let mut customer_codes: Vec<&str> = chunk
            .iter()
            .map(|summary| summary.customer_code.as_str())
            .collect();
        customer_codes.sort_unstable();
        customer_codes.dedup();
        let mut notifiers = self.planning_notifiers(&customer_codes).await?;
        // One query for the chunk's existing deliveries instead of one per invoice.
        let revisions: Vec<(&str, u32)> = chunk
            .iter()
            .map(|summary| (summary.number.as_str(), summary.revision))
            .collect();
        let mut existing = self.store.batch_deliveries_of(&revisions).await?;
        // The revisions that had no batch delivery and get all of theirs from this planning.
        let mut new_revisions = HashSet::new();
        for summary in chunk {
            let revision_key = (summary.number.clone(), summary.revision);
            let existing = existing.remove(&revision_key).unwrap_or_default();
            if existing.is_empty() {
                new_revisions.insert(revision_key);
            }
            for plan in self
                .plan(summary, existing, batch_id, &mut notifiers)
                .await?
            {
                match plan {
                    Plan::New(delivery) => fresh.push(delivery),
                    Plan::Deliver(delivery) => {
                        claimed.push(delivery.clone());
                        decided.push(Plan::Deliver(delivery));
                    }
                    other => decided.push(other),
                }
            }
        }
        let inserted = self.store.insert_planned(batch_id, &fresh).await?;
        for (delivery, new) in fresh.into_iter().zip(inserted) {
            if new {
                claimed.push(delivery.clone());
                to_deliver.push(delivery);
                continue;
            }
            // Another runner inserted it between our read and our insert.
            new_revisions.remove(&(delivery.invoice_number.clone(), delivery.invoice_revision));
            if let Some(existing) = self.store.delivery_by_key(&delivery.key).await? {
                let plan = self.plan_existing(existing, batch_id).await?;
                if let Plan::Deliver(delivery) = &plan {
                    claimed.push(delivery.clone());
                }
                decided.push(plan);
            }
        }
        // Another replica may have planned one of these revisions at the same time under
        // another split. Each looks again after its insert has committed, so all but the first
        // to commit find the others' deliveries and read them before sending (ARCHITECTURE.md).
        let looked_up: Vec<(&str, u32)> = new_revisions
            .iter()
            .map(|(number, revision)| (number.as_str(), *revision))
            .collect();
        let stored = self.store.batch_deliveries_of(&looked_up).await?;
        let inserted: HashSet<&str> = to_deliver
            .iter()
            .map(|delivery| delivery.id.as_str())
            .collect();
        for (revision, deliveries) in stored {
            if deliveries
                .iter()
                .any(|delivery| !inserted.contains(delivery.id.as_str()))
            {
                new_revisions.remove(&revision);
            }
        }
        for plan in decided {
            let (delivery, waiting) = match plan {
                Plan::Waiting(delivery) => (delivery, true),
                Plan::Deliver(delivery) => (delivery, false),
                Plan::Settled | Plan::New(_) => continue,
            };
            self.store.record_batch_item(batch_id, &delivery).await?;
            if waiting {
                planned.waiting.push(delivery.state);
            } else {
                to_deliver.push(delivery);
            }
        }
        // One query finds the revisions that have a frozen PDF, so that the others render
        // without a lookup each. A PDF frozen after this query, by a resend, is still the
        // one attached: freezing keeps the first PDF of a revision.
        let revisions: Vec<(&str, u32)> = to_deliver
            .iter()
            .map(|delivery| (delivery.invoice_number.as_str(), delivery.invoice_revision))
            .collect();
        let mut frozen = self.store.frozen_revisions(&revisions).await?;
        planned.to_deliver = to_deliver
            .into_iter()
            .map(|delivery| {
                // Only the first delivery of a revision without a frozen PDF skips the lookup.
                // The others of an invoice sent per To recipient look for the PDF that the
                // first one froze.
                let revision_key = (delivery.invoice_number.clone(), delivery.invoice_revision);
                let notifier = notifiers.get(&delivery.customer_code);
                let new_revision = notifier.is_some() && new_revisions.contains(&revision_key);
                let pdf = if frozen.insert(revision_key) {
                    FrozenPdf::NoneAtPlanning
                } else {
                    FrozenPdf::Unknown
                };
                let planned = Planned {
                    pdf,
                    notifier,
                    new_revision,
                };
                (delivery, planned)
            })
            .collect();
        Ok(planned)
    }

    /// Attempts the planned deliveries, `settings.concurrency` at a time, and reports each
    /// outcome to `progress`. Takes the next chunk when fewer deliveries wait than can be in
    /// flight, and returns when planning has ended and every delivery taken has ended.
    async fn deliver_planned(
        &self,
        batch: &Batch,
        mut chunks: mpsc::Receiver<PlannedChunk>,
        progress: &broadcast::Sender<Progress>,
    ) -> Result<(), OrchestratorError> {
        let mut waiting = VecDeque::new();
        let delivered = self
            .deliver_chunks(batch, &mut chunks, &mut waiting, progress)
            .await;
        if delivered.is_err() {
            // Planning stops at its next hand-over. The deliveries taken but not started go
            // back, so that the next batch or retry round sends them.
            chunks.close();
            while let Ok(chunk) = chunks.try_recv() {
                waiting.extend(chunk.to_deliver);
            }
            let deliveries = waiting.into_iter().map(|(delivery, _)| delivery);
            self.give_back(&batch.id, deliveries).await;
        }
        delivered
    }

    /// Runs `deliver_planned`'s loop. On an error it starts no more deliveries and waits for
    /// the ones in flight before it returns, because one dropped between storing `submitting`
    /// and its outcome would become `unknown`. `waiting` then keeps the ones not started.
    async fn deliver_chunks(
        &self,
        batch: &Batch,
        chunks: &mut mpsc::Receiver<PlannedChunk>,
        waiting: &mut VecDeque<(Delivery, Planned)>,
        progress: &broadcast::Sender<Progress>,
    ) -> Result<(), OrchestratorError> {
        let mut counts = BatchCounts::default();
        let mut total = 0u32;
        let mut in_flight = FuturesUnordered::new();
        let mut planning = true;
        let failure = loop {
            while in_flight.len() < self.settings.concurrency
                && let Some((delivery, planned)) = waiting.pop_front()
            {
                in_flight.push(self.attempt(delivery, planned));
            }
            if !planning && in_flight.is_empty() {
                return Ok(());
            }
            tokio::select! {
                chunk = chunks.recv(), if planning && waiting.len() < self.settings.concurrency => {
                    let Some(chunk) = chunk else {
                        planning = false;
                        continue;
                    };
                    for state in chunk.waiting {
                        counts.add(state);
                    }
                    total = chunk.total;
                    waiting.extend(chunk.to_deliver);
                    let _ = progress.send(running(batch, counts, total, None));
                }
                Some(result) = in_flight.next() => {
                    match self.outcome(batch, result).await {
                        Ok(Some(delivery)) => {
                            counts.add(delivery.state);
                            let _ = progress.send(running(batch, counts, total, Some(delivery)));
                        }
                        Ok(None) => {}
                        Err(error) => break error,
                    }
                }
            }
        };
        // Planning stops at its next hand-over instead of claiming a chunk that would only be
        // given back.
        chunks.close();
        if !in_flight.is_empty() {
            tracing::warn!(batch_id = %batch.id, error = %failure, in_flight = in_flight.len(), "batch failed, so it waits for the deliveries in flight before it ends");
        }
        while let Some(result) = in_flight.next().await {
            match self.outcome(batch, result).await {
                Ok(Some(delivery)) => {
                    counts.add(delivery.state);
                    let _ = progress.send(running(batch, counts, total, Some(delivery)));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(batch_id = %batch.id, %error, "a delivery in flight when the batch failed ended with an error too");
                }
            }
        }
        Err(failure)
    }

    /// Returns the delivery an attempt ended with. For a delivery another replica took over,
    /// it lists the state that replica stored in the batch and returns `None`.
    async fn outcome(
        &self,
        batch: &Batch,
        result: Result<Delivery, OrchestratorError>,
    ) -> Result<Option<Delivery>, OrchestratorError> {
        match result {
            Err(OrchestratorError::Store(StoreError::LeaseLost { id })) => {
                tracing::warn!(batch_id = %batch.id, delivery_id = %id, "delivery left to the replica that took it over");
                if let Some(current) = self.store.get_delivery(&id).await? {
                    self.store.record_batch_item(&batch.id, &current).await?;
                }
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Attempts one claimed delivery of the batch, or gives it back when the server is
    /// stopping. Every delivery here was claimed for this batch, so `save_delivery` stores its
    /// batch item with each state it reaches.
    async fn attempt(
        &self,
        delivery: Delivery,
        planned: Planned,
    ) -> Result<Delivery, OrchestratorError> {
        if self.shutdown.is_triggered() {
            self.postpone(delivery, STOPPING_REASON).await
        } else {
            self.deliver_with(delivery, planned).await
        }
    }

    /// Gives a claimed delivery back untouched when the server is stopping: the other services
    /// of this process may already refuse connections, so attempting it would only defer it
    /// with a misleading reason.
    pub(crate) async fn postpone(
        &self,
        mut delivery: Delivery,
        reason: &str,
    ) -> Result<Delivery, OrchestratorError> {
        delivery.state = DeliveryState::Deferred;
        delivery.next_attempt_at = Some(Utc::now());
        delivery.reason = reason.to_owned();
        self.store.save_delivery(&delivery).await?;
        Ok(delivery)
    }

    /// Defers, due at once, deliveries this batch claimed and will not attempt because it
    /// failed. Stops at the first write that fails and logs it. The retry loop's next round
    /// settles those left (`settle_stranded`).
    async fn give_back(&self, batch_id: &str, deliveries: impl IntoIterator<Item = Delivery>) {
        let mut given_back = 0u32;
        for delivery in deliveries {
            let delivery_id = delivery.id.clone();
            if let Err(error) = self.postpone(delivery, BATCH_FAILED_REASON).await {
                tracing::error!(batch_id, %delivery_id, %error, given_back, "deferring the deliveries the failed batch did not attempt failed; the retry loop settles the rest");
                return;
            }
            given_back += 1;
        }
        if given_back > 0 {
            tracing::warn!(
                batch_id,
                given_back,
                "deliveries the failed batch did not attempt were deferred, due at once"
            );
        }
    }

    /// Finds or creates the invoice revision's batch deliveries (one, or one per To recipient)
    /// and claims them for this batch. `existing` are the revision's batch deliveries, as
    /// `Store::batch_deliveries` lists them.
    async fn plan(
        &self,
        summary: &InvoiceSummary,
        existing: Vec<Delivery>,
        batch_id: &str,
        notifiers: &mut PlanningNotifiers,
    ) -> Result<Vec<Plan>, OrchestratorError> {
        let notifier = self
            .planning_notifier(notifiers, &summary.customer_code)
            .await?;
        let mut plans = Vec::new();
        for target in self.batch_targets(summary, &existing, notifier).await? {
            let plan = match existing.iter().find(|d| d.key == target.key) {
                Some(found) => self.plan_existing(found.clone(), batch_id).await?,
                None => {
                    let mut fresh = new_batch_delivery(summary, &target);
                    fresh.batch_id = Some(batch_id.to_owned());
                    Plan::New(fresh)
                }
            };
            plans.push(plan);
        }
        Ok(plans)
    }

    /// Decides what this batch does with an existing delivery, claiming it when it is due.
    async fn plan_existing(
        &self,
        existing: Delivery,
        batch_id: &str,
    ) -> Result<Plan, OrchestratorError> {
        if existing.state == DeliveryState::Unknown {
            tracing::info!(batch_id, invoice = %existing.invoice_number, delivery_id = %existing.id, message_id = %existing.message_id, "delivery outcome unknown: the mail server may have accepted it, so it is not sent again automatically; resend it by hand if it did not arrive");
        }
        if existing.state.is_settled() {
            return Ok(Plan::Settled);
        }
        let due = existing.next_attempt_at.is_none_or(|at| at <= Utc::now());
        if existing.state == DeliveryState::Deferred && !due {
            return Ok(Plan::Waiting(existing));
        }
        let claimable = [DeliveryState::Skipped, DeliveryState::Deferred];
        if !self
            .store
            .claim_delivery(&existing.id, &claimable, Some(batch_id))
            .await?
        {
            // Someone else is working on it right now.
            return Ok(Plan::Settled);
        }
        let claimed = self.store.get_delivery(&existing.id).await?;
        Ok(claimed.map_or(Plan::Settled, Plan::Deliver))
    }

    /// Plans a dry run: what a batch would do now, with nothing written and nothing sent.
    async fn plan_batch(&self, request: &BatchRequest) -> Result<BatchReport, OrchestratorError> {
        let window_start = request.cutoff - request.lookback;
        let summaries = self
            .upstream
            .list_invoices(request.cutoff, window_start)
            .await?;
        let mut items = Vec::new();
        let mut notifiers = PlanningNotifiers::default();
        for summary in summaries {
            let existing = self
                .store
                .batch_deliveries(&summary.number, summary.revision)
                .await?;
            let notifier = self
                .planning_notifier(&mut notifiers, &summary.customer_code)
                .await?;
            for target in self.batch_targets(&summary, &existing, notifier).await? {
                let mut delivery = match existing.iter().find(|d| d.key == target.key) {
                    Some(found) if found.state.is_settled() => continue,
                    Some(found) => found.clone(),
                    None => new_batch_delivery(&summary, &target),
                };
                let (state, reason) = self.planned_outcome(&mut delivery).await?;
                items.push(BatchItem {
                    delivery,
                    state,
                    reason,
                });
            }
        }
        let batch = Batch {
            id: String::new(),
            business_date: request.business_date,
            trigger: request.trigger,
            status: BatchStatus::Planned,
            cutoff: request.cutoff,
            window_start,
            started_at: Utc::now(),
            finished_at: None,
            error: None,
        };
        Ok(BatchReport {
            batch,
            counts: BatchCounts::from_states(items.iter().map(|item| item.state)),
            items,
            next_after: None,
            replayed: false,
        })
    }

    async fn planned_outcome(
        &self,
        delivery: &mut Delivery,
    ) -> Result<(DeliveryState, String), OrchestratorError> {
        if delivery.state == DeliveryState::Deferred
            && delivery.next_attempt_at.is_some_and(|at| at > Utc::now())
        {
            return Ok((DeliveryState::Deferred, delivery.reason.clone()));
        }
        let invoice = self.upstream.get_invoice(&delivery.invoice_number).await?;
        let corrected = self
            .store
            .sent_before_revision(&invoice.number, delivery.invoice_revision)
            .await?;
        let outgoing = match self
            .batch_outgoing(delivery, &invoice, &Planned::default(), corrected)
            .await?
        {
            Ok(outgoing) => outgoing,
            Err(reason) => return Ok((DeliveryState::Skipped, reason)),
        };
        let recipients = outgoing.recipients;
        delivery.to = recipients.to;
        delivery.cc = recipients.cc;
        delivery.bcc = recipients.bcc;
        delivery.attachment_name = crate::resend::attachment_name(&invoice.number);
        delivery.subject = outgoing.message.subject;
        Ok((DeliveryState::Planned, recipients.problems.join("; ")))
    }
}

/// Splits `items` into a chunk of `first` items, then chunks twice as large as the one before,
/// up to `max` items each.
fn growing_chunks<T>(items: &[T], first: usize, max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut size = first.clamp(1, max);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        size = size.saturating_mul(2).min(max);
        Some(chunk)
    })
}

/// Builds a new batch delivery for one target; a per-To-recipient delivery starts with its
/// recipient.
fn new_batch_delivery(summary: &InvoiceSummary, target: &Target) -> Delivery {
    let mut delivery = Delivery::new(
        target.key.clone(),
        &summary.number,
        summary.revision,
        &summary.customer_code,
        Purpose::Batch,
    );
    delivery.to = target.to.iter().cloned().collect();
    delivery
}

#[cfg(test)]
mod tests {
    use super::growing_chunks;

    fn sizes(count: usize, first: usize, max: usize) -> Vec<usize> {
        let items: Vec<usize> = (0..count).collect();
        let chunks: Vec<&[usize]> = growing_chunks(&items, first, max).collect();
        // Every item once, in order.
        assert_eq!(chunks.concat(), items);
        chunks.iter().map(|chunk| chunk.len()).collect()
    }

    #[test]
    fn chunks_double_from_first_up_to_max() {
        assert_eq!(sizes(412, 16, 500), [16, 32, 64, 128, 172]);
        assert_eq!(
            sizes(2000, 16, 500),
            [16, 32, 64, 128, 256, 500, 500, 500, 4]
        );
        assert_eq!(sizes(10, 16, 500), [10]);
    }

    #[test]
    fn first_chunk_stays_within_max() {
        assert_eq!(sizes(10, 16, 3), [3, 3, 3, 1]);
        assert_eq!(sizes(5, 0, 0), [1, 1, 1, 1, 1]);
        assert_eq!(sizes(0, 16, 500), Vec::<usize>::new());
    }
}
