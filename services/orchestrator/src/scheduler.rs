//! Background work: the nightly schedule with its catch-up after downtime, the retry of
//! deferred deliveries, and the recovery of deliveries a stopped process left in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use invoicer_kit::Shutdown;

use crate::batch::BatchRequest;
use crate::deliver::LogWrite;
use crate::engine::Engine;
use crate::error::{OrchestratorError, catch_panic};
use crate::model::{BatchTrigger, Delivery, DeliveryState};
use crate::schedule::{FireInstant, Schedule};
use crate::store::LeaderLock;
use crate::upstream::SendResult;

/// When `settle_left` appends the email log entry of a delivery it settles as `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogAppend {
    /// Right after storing the state.
    Now,
    /// In the next retry round's `append_unlogged`, because audit-log may not serve yet.
    Later,
}

/// The stored reasons and the log messages of deliveries settled because their worker left
/// them in flight.
struct LeftBehind {
    submitting_reason: &'static str,
    submitting_log: &'static str,
    retry_reason: &'static str,
    retry_log: &'static str,
    /// Whether a `pending` delivery counts the attempt that left it and waits for its retry
    /// under the retry policy, instead of being due at once.
    counts_attempt: bool,
}

/// Deliveries left by a process that stopped.
const ABANDONED: LeftBehind = LeftBehind {
    submitting_reason: "the process stopped while submitting to the mail server; check the server's log before resending",
    submitting_log: "delivery left submitting by a stopped process is now unknown; it is never sent again automatically, only by an explicit resend",
    retry_reason: "the process stopped before sending; retrying",
    retry_log: "delivery left in flight by a stopped process; retrying it now",
    counts_attempt: false,
};

/// Deliveries whose attempt in this process ended with an error before it stored the outcome,
/// such as a write the database rejects. The same error may come back on every attempt, so the
/// attempt counts, and the retries back off and end as `failed` under the retry policy.
const FAILED_ATTEMPT: LeftBehind = LeftBehind {
    submitting_reason: "the attempt ended with an error while submitting to the mail server, before it stored its outcome; check the server's log before resending",
    submitting_log: "delivery left submitting by an attempt that ended with an error is now unknown; it is never sent again automatically, only by an explicit resend",
    retry_reason: "the attempt ended with an error before sending",
    retry_log: "delivery left in flight by an attempt that ended with an error; deferred under the retry policy",
    counts_attempt: true,
};

/// Deliveries leased to this process and left without an attempt that ended with an error: a
/// claim that a failed batch could not give back, or one taken over from a stopped process
/// that could not be settled then.
const UNATTEMPTED_CLAIM: LeftBehind = LeftBehind {
    submitting_reason: "the attempt stopped while submitting to the mail server, before it stored its outcome; check the server's log before resending",
    submitting_log: "delivery left submitting by a stopped attempt is now unknown; it is never sent again automatically, only by an explicit resend",
    retry_reason: "the claim ended without an attempt; retrying",
    retry_log: "delivery claimed but not attempted; retrying it now",
    counts_attempt: false,
};

/// Maximum sleep of the retry loop between two checks for due deferred deliveries and
/// unlogged outcomes.
const RETRY_POLL: Duration = Duration::from_secs(15);
/// The shortest sleep of the retry loop, so a due delivery that a running batch holds does
/// not make it spin.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(500);
const RETRY_BATCH_SIZE: u64 = 100;
/// How often a replica that does not lead the scheduler tries to take the lead.
const LEADER_RETRY: Duration = Duration::from_secs(5);
/// How often the leader checks that it still holds the scheduler's lock.
const LEADER_CHECK: Duration = Duration::from_secs(10);

impl Engine {
    /// Settles what a stopped process left behind: batches it left running are marked
    /// failed, and its in-flight deliveries are settled (see `settle_abandoned`). On SQLite
    /// this process is the only one, so everything in flight was left by a stopped one; on
    /// PostgreSQL only what has no live lease was.
    pub(crate) async fn recover(&self) -> Result<(), OrchestratorError> {
        self.fail_abandoned_batches().await?;
        // The host serves only after this returns, so audit-log, maybe hosted by this process,
        // cannot take the email log entries yet. The first retry round appends them.
        self.settle_abandoned(self.store.is_sqlite(), LogAppend::Later)
            .await
    }

    async fn fail_abandoned_batches(&self) -> Result<(), OrchestratorError> {
        let failed = self
            .store
            .fail_running_batches("the replica running the batch stopped before it ended")
            .await?;
        if failed > 0 {
            tracing::warn!(
                batches = failed,
                "batches left running by a stopped replica marked failed"
            );
        }
        Ok(())
    }

    /// Takes over in-flight deliveries that no live replica works on (`all`: every one) and
    /// settles them (see `settle_left`). One that cannot be settled is logged and stays leased
    /// to this replica, and a later retry round settles it as a claim that was not attempted
    /// (`settle_stranded`).
    pub(crate) async fn settle_abandoned(
        &self,
        all: bool,
        append: LogAppend,
    ) -> Result<(), OrchestratorError> {
        for delivery in self.store.take_over_abandoned(all).await? {
            let delivery_id = delivery.id.clone();
            if let Err(error) = self.settle_left(delivery, &ABANDONED, None, append).await {
                tracing::error!(%delivery_id, %error, "settling a delivery a stopped process left in flight failed; the next retry round tries again");
            }
        }
        Ok(())
    }

    /// Settles the deliveries leased to this replica that no task of this process works on.
    /// Lease renewal would otherwise keep their leases for as long as the process runs. Runs
    /// under `work_lock`, so no batch of this process has a claimed delivery it has not
    /// started yet. A delivery that cannot be settled is logged and left to the next round.
    pub(crate) async fn settle_stranded(&self) -> Result<(), OrchestratorError> {
        // Writes still queued by a task that went away land first, so the list below shows
        // the states they stored.
        self.store.flush_writes().await?;
        for delivery_id in self.stranded_ids().await? {
            // Read again: a task that ended after the list was read stored its last state
            // before it let go of the delivery. No task takes the delivery up again, because
            // batches wait for `work_lock` and a resend tracks only the delivery it inserts.
            let delivery = match self.store.leased_in_flight_delivery(&delivery_id).await {
                Ok(Some(delivery)) => delivery,
                Ok(None) => {
                    self.forget_failed_attempt(&delivery_id);
                    continue;
                }
                Err(error) => {
                    tracing::error!(%delivery_id, %error, "reading a delivery that no task works on failed; the next retry round tries again");
                    continue;
                }
            };
            let failure = self.forget_failed_attempt(&delivery_id);
            let left_by = match &failure {
                Some(_) => &FAILED_ATTEMPT,
                None => &UNATTEMPTED_CLAIM,
            };
            let state = delivery.state;
            let settled = catch_panic(
                "settling a delivery",
                self.settle_left(delivery, left_by, failure.as_deref(), LogAppend::Now),
            )
            .await;
            if let Err(error) = settled {
                tracing::error!(%delivery_id, state = state.as_str(), %error, "settling a delivery that no task works on failed; the next retry round tries again");
                // Kept for the next round, unless another replica has the delivery's lease now.
                if let Some(failure) = failure.filter(|_| !error.is_lease_lost()) {
                    self.failed_attempts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(delivery_id, failure);
                }
            }
        }
        Ok(())
    }

    /// Returns the ids of the in-flight deliveries leased to this replica that no task of this
    /// process works on.
    pub(crate) async fn stranded_ids(&self) -> Result<Vec<String>, OrchestratorError> {
        let listed = self.store.leased_in_flight().await?;
        Ok(listed
            .into_iter()
            .map(|delivery| delivery.id)
            .filter(|id| !self.is_in_flight(id))
            .collect())
    }

    /// Removes `id` from the deliveries whose attempt ended with an error, and returns the
    /// error if it was there.
    pub(crate) fn forget_failed_attempt(&self, id: &str) -> Option<String> {
        self.failed_attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// Settles one in-flight delivery that its worker left. `submitting` may have reached the
    /// mail server, so it becomes `unknown` and is never sent again automatically. `pending`
    /// and `rendered` had sent nothing, so they are deferred (see `LeftBehind::counts_attempt`).
    /// `error` is the error that ended the attempt, when there was one, and goes into the
    /// stored reason.
    async fn settle_left(
        &self,
        mut delivery: Delivery,
        left_by: &LeftBehind,
        error: Option<&str>,
        append: LogAppend,
    ) -> Result<(), OrchestratorError> {
        let with_error = |reason: &str| match error {
            Some(error) => format!("{reason} ({error})"),
            None => reason.to_owned(),
        };
        if delivery.state == DeliveryState::Submitting {
            delivery.state = DeliveryState::Unknown;
            delivery.next_attempt_at = None;
            delivery.retry_since = None;
            delivery.reason = with_error(left_by.submitting_reason);
            self.store.save_delivery(&delivery).await?;
            tracing::warn!(
                invoice = %delivery.invoice_number,
                delivery_id = %delivery.id,
                message_id = %delivery.message_id,
                attempt = delivery.attempts,
                "{}", left_by.submitting_log
            );
            if append == LogAppend::Now {
                self.write_log(&delivery, SendResult::Unknown, 0, Utc::now())
                    .await;
            }
        } else {
            let previous = delivery.state;
            delivery.reason = with_error(left_by.retry_reason);
            if left_by.counts_attempt {
                // As an attempt that a failed call ends before sending: counted, in the email
                // log, and retried under the policy, which fails it once its retries are over.
                delivery.attempts += 1;
                delivery.logged = false;
                // The attempt got no reply, so the retry log does not show an older one.
                delivery.server_reply.clear();
                self.apply_send_result(&mut delivery, SendResult::Deferred);
            } else {
                delivery.state = DeliveryState::Deferred;
                delivery.next_attempt_at = Some(Utc::now());
            }
            self.store.save_delivery(&delivery).await?;
            tracing::warn!(
                invoice = %delivery.invoice_number,
                delivery_id = %delivery.id,
                previous_state = previous.as_str(),
                state = delivery.state.as_str(),
                next_attempt_at = ?delivery.next_attempt_at,
                "{}", left_by.retry_log
            );
        }
        Ok(())
    }

    /// Retries due deferred deliveries and appends outcomes the email log missed. On
    /// PostgreSQL it first takes over the work of replicas whose leases expired, and on both
    /// databases it settles the deliveries this replica's own tasks left in flight.
    async fn retry_due(&self) -> Result<(), OrchestratorError> {
        let Ok(_work) = self.work_lock.try_lock() else {
            // A batch is running; a later round retries what comes due meanwhile.
            return Ok(());
        };
        let _draining = self.shutdown.begin_work();
        if !self.store.is_sqlite() {
            self.fail_abandoned_batches().await?;
            self.settle_abandoned(false, LogAppend::Now).await?;
        }
        // A failure here leaves the stranded deliveries to the next round, and this round
        // goes on with the email log and the due retries.
        if let Err(error) = self.settle_stranded().await {
            tracing::error!(%error, "settling the deliveries that no task works on failed; the next retry round tries again");
        }
        self.append_unlogged().await?;
        if self.shutdown.is_triggered() {
            return Ok(());
        }
        let claimed = self
            .store
            .claim_due_deferred(Utc::now(), RETRY_BATCH_SIZE)
            .await?;
        // Every claimed delivery is attempted even after one fails: returning at once would
        // drop the ones in flight, and one past `submitting` would become `unknown`.
        let mut retries = futures::stream::iter(claimed)
            .map(|delivery| self.retry_one(delivery))
            .buffer_unordered(self.settings.concurrency);
        let mut first_error = None;
        while let Some(result) = retries.next().await {
            match result {
                Err(error) if error.is_lease_lost() => {
                    tracing::warn!(%error, "retry stopped: another replica took the delivery over");
                }
                Err(error) => {
                    tracing::warn!(%error, "retrying a deferred delivery failed, and the round goes on with the others");
                    first_error.get_or_insert(error);
                }
                Ok(_) => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Appends to the email log the outcomes whose append failed, such as while audit-log was
    /// down. The caller holds the work lock, so no batch or retry of this process is between
    /// storing an outcome and appending it. Resends do not take that lock, so the ones in
    /// flight are skipped: each appends its own outcome.
    ///
    /// A round reads the outcomes a page at a time in the order of their ids. It stops when
    /// audit-log is unreachable, and after a page of which audit-log took nothing. The next
    /// round then starts after that page, so outcomes that audit-log rejects every time never
    /// keep the later ones out of the log. A rejected outcome waits before its next try, longer
    /// after each rejection (`LogBackoff`), so it does not add a warning to every round.
    ///
    /// On PostgreSQL another replica may be between storing an outcome and appending it. This
    /// round then sends that outcome a second time, and audit-log keeps one entry of the two
    /// by the delivery id, attempt number and state in the append's idempotency key.
    pub(crate) async fn append_unlogged(&self) -> Result<(), OrchestratorError> {
        let mut after = self
            .log_catch_up_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        loop {
            let unlogged = self
                .store
                .unlogged_deliveries(after.as_deref(), RETRY_BATCH_SIZE)
                .await?;
            let found = unlogged.len();
            let last = unlogged.last().map(|delivery| delivery.id.clone());
            let (mut appended, mut failed) = (0, 0);
            for delivery in unlogged {
                match self.append_missed(&delivery).await? {
                    Some(LogWrite::Done) => appended += 1,
                    // Each further append would wait for its own timeout, so the next retry
                    // round starts again with this page.
                    Some(LogWrite::Unreachable) => {
                        self.resume_log_catch_up_after(after);
                        return Ok(());
                    }
                    Some(LogWrite::Rejected | LogWrite::Failed) => failed += 1,
                    None => {}
                }
            }
            if found < RETRY_BATCH_SIZE as usize {
                return Ok(());
            }
            after = last;
            if appended == 0 {
                if failed > 0 {
                    tracing::warn!(
                        failed,
                        after = after.as_deref().unwrap_or_default(),
                        "no outcome of a page of missed email log entries was appended; the next retry round goes on after it"
                    );
                }
                self.resume_log_catch_up_after(after);
                return Ok(());
            }
        }
    }

    fn resume_log_catch_up_after(&self, after: Option<String>) {
        *self
            .log_catch_up_after
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = after;
    }

    /// Appends the stored outcome of the `listed` delivery, and returns `None` for a delivery
    /// that is in flight in this process, gone or logged by now, or whose outcome audit-log
    /// rejected and that waits for its next try (`LogBackoff`).
    async fn append_missed(
        &self,
        listed: &Delivery,
    ) -> Result<Option<LogWrite>, OrchestratorError> {
        let id = listed.id.as_str();
        if self.is_in_flight(id)
            || self
                .log_backoff
                .is_waiting(id, listed.attempts, Instant::now())
        {
            return Ok(None);
        }
        // Read again after the check: a resend that ended since the list was read has
        // appended its outcome itself.
        let Some(delivery) = self.store.get_delivery(id).await? else {
            self.log_backoff.appended(id);
            return Ok(None);
        };
        if delivery.logged {
            self.log_backoff.appended(id);
            return Ok(None);
        }
        let result = match delivery.state {
            DeliveryState::Sent if delivery.recipients.iter().any(|r| !r.accepted) => {
                SendResult::PartiallySent
            }
            DeliveryState::Sent => SendResult::Sent,
            DeliveryState::Failed => SendResult::Failed,
            DeliveryState::Deferred => SendResult::Deferred,
            _ => SendResult::Unknown,
        };
        let size = self
            .store
            .document(&delivery.invoice_number, delivery.invoice_revision)
            .await?
            .map_or(0, |d| d.content.len() as u64);
        // `updated_at` is when the outcome was stored, right after the attempt.
        let written = self
            .write_log(&delivery, result, size, delivery.updated_at)
            .await;
        match written {
            LogWrite::Rejected => {
                let wait = self
                    .log_backoff
                    .rejected(id, delivery.attempts, Instant::now());
                tracing::info!(invoice = %delivery.invoice_number, delivery_id = %id, wait = %humantime::format_duration(wait), "audit-log rejected the outcome; the catch-up tries it again after the wait");
            }
            // `write_log` forgot the rejections of an appended outcome, and another failure may
            // pass, so the next round tries again.
            LogWrite::Done | LogWrite::Failed | LogWrite::Unreachable => {}
        }
        Ok(Some(written))
    }

    /// Attempts one claimed deferred delivery again, or gives it back when the process is
    /// stopping. Storing the outcome also updates the delivery's item in its batch.
    async fn retry_one(&self, claimed: Delivery) -> Result<(), OrchestratorError> {
        if self.shutdown.is_triggered() {
            self.postpone(claimed, crate::batch::STOPPING_REASON)
                .await?;
        } else {
            tracing::info!(
                invoice = %claimed.invoice_number,
                delivery_id = %claimed.id,
                attempt = claimed.attempts + 1,
                last_reply = %claimed.reason,
                "retrying deferred delivery"
            );
            self.deliver(claimed).await?;
        }
        Ok(())
    }
}

/// Waits for the host's shutdown, then for the deliveries in flight to end, until shortly
/// before the host's grace period ends. What is still in flight then is logged by id. The
/// leases of those deliveries, and of the ones leased here that no task works on, are ended
/// if they have not reached `submitting`, so another replica (or the next start) takes them
/// over at once.
pub(crate) fn spawn_drain_report(engine: Arc<Engine>, grace: Duration, mut shutdown: Shutdown) {
    // Held until the report ends, so the host stops serving only after the leases below are
    // released.
    let work = shutdown.begin_work();
    tokio::spawn(async move {
        let _work = work;
        shutdown.triggered().await;
        let deadline = grace.saturating_sub(Duration::from_secs(1));
        let drained = tokio::time::timeout(deadline, async {
            while !engine.in_flight_ids().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        // Deliveries leased here that no task works on (see `Engine::settle_stranded`) would
        // otherwise keep their leases until they run out.
        let stranded = match engine.stranded_ids().await {
            Ok(stranded) => stranded,
            Err(error) => {
                tracing::error!(%error, "cannot list the deliveries that no task works on; their leases expire on their own");
                Vec::new()
            }
        };
        if drained.is_ok() && stranded.is_empty() {
            tracing::info!("orchestrator drained: no delivery left in flight");
            return;
        }
        let left = engine.in_flight_ids();
        let ids: Vec<String> = left.iter().chain(&stranded).cloned().collect();
        let released = match engine.store.release_leases(&ids).await {
            Ok(released) => released,
            Err(error) => {
                tracing::error!(%error, "cannot release the leases of unfinished deliveries; they expire on their own");
                0
            }
        };
        if drained.is_ok() {
            tracing::info!(
                delivery_ids = %stranded.join(","),
                released,
                "orchestrator drained: no delivery left in flight; the leases of those no task worked on were released for retry"
            );
            return;
        }
        tracing::warn!(
            delivery_ids = %left.join(","),
            stranded_ids = %stranded.join(","),
            released,
            "deliveries still in flight at the end of the grace period; those not yet submitting were released for retry, a submitting one becomes unknown unless it ends first"
        );
    });
}

/// Renews this replica's leases every third of the lease duration, so they expire only when
/// the replica stops renewing them: when it died or hangs.
pub(crate) fn spawn_lease_renewal(engine: Arc<Engine>, mut shutdown: Shutdown) {
    let every = engine.settings.lease_duration / 3;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let renewal = async { Ok(engine.store.renew_leases().await?) };
            if let Err(error) = catch_panic("lease renewal", renewal).await {
                tracing::error!(%error, "renewing delivery leases failed; they expire unless the next renewal succeeds");
            }
        }
        // The leases of deliveries still in flight stay valid until the host's drain ends.
        tracing::debug!("lease renewal stopped");
    });
}

/// Retries deferred deliveries as they come due: the loop sleeps until the earliest retry
/// time (at most `RETRY_POLL`, so unlogged outcomes and deliveries deferred by another
/// process are found too). Its first round runs at start, so retries that came due while the
/// process was down go out at once.
pub(crate) fn spawn_retry_loop(engine: Arc<Engine>, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        loop {
            // A panic ends only this round; the next one runs as usual.
            if let Err(error) = catch_panic("retry round", engine.retry_due()).await {
                tracing::error!(%error, "retrying deferred deliveries failed");
            }
            let wait = match engine.store.next_retry_at().await {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .clamp(MIN_RETRY_WAIT, RETRY_POLL),
                Ok(None) => RETRY_POLL,
                Err(error) => {
                    tracing::error!(%error, "reading the next retry time failed");
                    RETRY_POLL
                }
            };
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = engine.retry_wakeup.notified() => {}
            }
        }
        tracing::debug!("retry loop stopped");
    });
}

/// Runs the batch at each fire instant while this replica leads the scheduler. A replica that
/// does not lead tries again every `LEADER_RETRY`; one that leads checks every
/// `LEADER_CHECK` that it still does. When `catch_up` is set and the last scheduled batch is
/// older than the latest fire instant, that missed batch runs once on taking the lead.
pub(crate) fn spawn_scheduler(
    engine: Arc<Engine>,
    schedule: Schedule,
    catch_up: bool,
    mut shutdown: Shutdown,
) {
    tokio::spawn(async move {
        loop {
            let lock = match engine.store.try_lead().await {
                Ok(Some(lock)) => lock,
                Ok(None) => {
                    tracing::debug!(replica_id = %engine.store.owner(), "another replica leads the scheduler");
                    tokio::select! {
                        _ = shutdown.triggered() => break,
                        _ = tokio::time::sleep(LEADER_RETRY) => continue,
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot take the scheduler's lock; trying again");
                    tokio::select! {
                        _ = shutdown.triggered() => break,
                        _ = tokio::time::sleep(LEADER_RETRY) => continue,
                    }
                }
            };
            tracing::info!(replica_id = %engine.store.owner(), "this replica leads the scheduler");
            // A panic gives up the lead, and the loop tries to take it again after a pause.
            let leading =
                async { Ok(lead(&engine, &schedule, catch_up, lock, &mut shutdown).await) };
            match catch_panic("scheduler", leading).await {
                Ok(Leadership::Stopping) => break,
                Ok(Leadership::Lost) => {
                    tracing::warn!(replica_id = %engine.store.owner(), "scheduler lock lost (its database connection closed); trying to take it again");
                }
                Err(error) => {
                    tracing::error!(replica_id = %engine.store.owner(), %error, "scheduler failed; trying to lead again");
                    tokio::select! {
                        _ = shutdown.triggered() => break,
                        _ = tokio::time::sleep(LEADER_RETRY) => {}
                    }
                }
            }
        }
        tracing::debug!("scheduler stopped");
    });
}

enum Leadership {
    Stopping,
    Lost,
}

async fn lead(
    engine: &Engine,
    schedule: &Schedule,
    catch_up: bool,
    mut lock: LeaderLock,
    shutdown: &mut Shutdown,
) -> Leadership {
    if catch_up && let Err(error) = run_missed(engine, schedule).await {
        tracing::error!(%error, "catch-up batch failed");
    }
    loop {
        let next = match schedule.next_after(Utc::now()) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "schedule stopped");
                shutdown.triggered().await;
                return Leadership::Stopping;
            }
        };
        tracing::info!(at = %next.at, local = %next.local, business_date = %next.business_date, "next batch scheduled");
        let wait = (next.at - Utc::now()).to_std().unwrap_or_default();
        let fire = tokio::time::sleep(wait);
        tokio::pin!(fire);
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return Leadership::Stopping,
                _ = &mut fire => break,
                _ = tokio::time::sleep(LEADER_CHECK) => {
                    if !lock.is_held().await {
                        return Leadership::Lost;
                    }
                }
            }
        }
        run_scheduled(engine, next).await;
    }
}

async fn run_missed(engine: &Engine, schedule: &Schedule) -> Result<(), OrchestratorError> {
    let last = engine.store.latest_scheduled_batch().await?;
    let last_date = last.map(|batch| batch.business_date);
    let Some(missed) = missed_fire(schedule, last_date, Utc::now())? else {
        return Ok(());
    };
    tracing::warn!(missed_business_date = %missed.business_date, last_business_date = ?last_date, "running missed batch after downtime");
    run_scheduled(engine, missed).await;
    Ok(())
}

/// Returns the fire instant to catch up at start-up: the latest one at or before `now`, when the last
/// scheduled batch is for an earlier business date. Several missed nights give one batch,
/// because its window reaches back over the lookback. A new installation (no scheduled batch
/// yet) has missed nothing.
pub(crate) fn missed_fire(
    schedule: &Schedule,
    last_business_date: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Option<FireInstant>, OrchestratorError> {
    let Some(last) = last_business_date else {
        return Ok(None);
    };
    let previous = schedule.previous_at_or_before(now)?;
    Ok((previous.business_date > last).then_some(previous))
}

async fn run_scheduled(engine: &Engine, fire: FireInstant) {
    let request = BatchRequest {
        cutoff: fire.at,
        lookback: engine.settings.lookback,
        dry_run: false,
        trigger: BatchTrigger::Schedule,
        business_date: fire.business_date,
    };
    // A panic ends only this night's batch, and the scheduler goes on to the next one.
    if let Err(error) = catch_panic("scheduled batch", engine.run_batch(request)).await {
        tracing::error!(business_date = %fire.business_date, %error, "scheduled batch failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn missed_nights_caught_up_once() {
        let schedule = Schedule::new("0 2 * * *", "Europe/Berlin").unwrap();
        // Down from the night of 2026-12-01 until 10:00 UTC on 2026-12-04: one batch, for the
        // latest fire instant (02:00 Berlin on 2026-12-04 = 01:00 UTC).
        let missed = missed_fire(
            &schedule,
            Some(date("2026-12-01")),
            utc("2026-12-04T10:00:00Z"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(missed.at, utc("2026-12-04T01:00:00Z"));
        assert_eq!(missed.business_date, date("2026-12-04"));
    }

    #[test]
    fn nothing_missed_when_last_batch_is_latest() {
        let schedule = Schedule::new("0 2 * * *", "Europe/Berlin").unwrap();
        let missed = missed_fire(
            &schedule,
            Some(date("2026-12-04")),
            utc("2026-12-04T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(missed, None);
    }

    #[test]
    fn nothing_missed_before_todays_fire() {
        let schedule = Schedule::new("0 2 * * *", "Europe/Berlin").unwrap();
        // At 00:30 UTC (01:30 Berlin) today's batch is not due yet; yesterday's ran.
        let missed = missed_fire(
            &schedule,
            Some(date("2026-12-03")),
            utc("2026-12-04T00:30:00Z"),
        )
        .unwrap();
        assert_eq!(missed, None);
    }

    #[test]
    fn new_installation_misses_nothing() {
        let schedule = Schedule::new("0 2 * * *", "UTC").unwrap();
        assert_eq!(
            missed_fire(&schedule, None, utc("2026-12-04T10:00:00Z")).unwrap(),
            None
        );
    }
}
