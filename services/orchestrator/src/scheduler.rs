//! Background work: the nightly schedule with its catch-up after downtime, the retry of
//! deferred deliveries, and the recovery of deliveries a stopped process left in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use invoicer_kit::Shutdown;

use crate::batch::BatchRequest;
use crate::engine::Engine;
use crate::error::OrchestratorError;
use crate::model::{BatchTrigger, DeliveryState};
use crate::schedule::{FireInstant, Schedule};
use crate::upstream::SendResult;

/// How often the retry loop looks for due deferred deliveries and unlogged outcomes.
const RETRY_POLL: Duration = Duration::from_secs(15);
const RETRY_BATCH_SIZE: u64 = 100;

impl Engine {
    /// Settles what a stopped process left behind. `submitting` may have reached the mail
    /// server, so it becomes `unknown` and is never resent automatically; `pending` and
    /// `rendered` had sent nothing and are retried.
    pub(crate) async fn recover(&self) -> Result<(), OrchestratorError> {
        let failed = self
            .store
            .fail_running_batches("the process stopped while the batch was running")
            .await?;
        if failed > 0 {
            tracing::warn!(
                batches = failed,
                "batches left running by a stopped process marked failed"
            );
        }
        let states = [
            DeliveryState::Pending,
            DeliveryState::Rendered,
            DeliveryState::Submitting,
        ];
        for mut delivery in self.store.deliveries_in_states(&states).await? {
            if delivery.state == DeliveryState::Submitting {
                delivery.state = DeliveryState::Unknown;
                delivery.reason = "the process stopped while submitting to the mail server; check the server's log before resending".to_owned();
                self.store.save_delivery(&delivery).await?;
                self.write_log(&delivery, SendResult::Unknown, 0, Utc::now())
                    .await;
            } else {
                delivery.state = DeliveryState::Deferred;
                delivery.next_attempt_at = Some(Utc::now());
                delivery.reason = "the process stopped before sending; retrying".to_owned();
                self.store.save_delivery(&delivery).await?;
            }
            tracing::warn!(invoice = %delivery.invoice_number, delivery_id = %delivery.id, state = delivery.state.as_str(), "recovered interrupted delivery");
        }
        Ok(())
    }

    /// Retries due deferred deliveries and appends outcomes the email log missed.
    async fn retry_due(&self) -> Result<(), OrchestratorError> {
        let Ok(_work) = self.work_lock.try_lock() else {
            return Ok(()); // A batch is running and retries its own deferred deliveries.
        };
        for delivery in self.store.unlogged_deliveries(RETRY_BATCH_SIZE).await? {
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
            self.write_log(&delivery, result, size, delivery.updated_at)
                .await;
        }
        for delivery in self
            .store
            .due_deferred(Utc::now(), RETRY_BATCH_SIZE)
            .await?
        {
            let batch_id = delivery.batch_id.clone();
            if !self
                .store
                .claim_delivery(
                    &delivery.id,
                    &[DeliveryState::Deferred],
                    batch_id.as_deref(),
                )
                .await?
            {
                continue;
            }
            let Some(claimed) = self.store.get_delivery(&delivery.id).await? else {
                continue;
            };
            tracing::debug!(invoice = %claimed.invoice_number, delivery_id = %claimed.id, attempt = claimed.attempts + 1, "retrying deferred delivery");
            let delivered = self.deliver(claimed).await?;
            if let Some(batch_id) = &delivered.batch_id {
                self.store.record_batch_item(batch_id, &delivered).await?;
            }
        }
        Ok(())
    }
}

pub(crate) fn spawn_retry_loop(engine: Arc<Engine>, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(RETRY_POLL) => {}
            }
            if let Err(error) = engine.retry_due().await {
                tracing::error!(%error, "retrying deferred deliveries failed");
            }
        }
        tracing::debug!("retry loop stopped");
    });
}

/// Runs the batch at each fire instant. When `catch_up` is set and the last scheduled batch
/// is older than the latest fire instant, that missed batch runs once at start.
pub(crate) fn spawn_scheduler(
    engine: Arc<Engine>,
    schedule: Schedule,
    catch_up: bool,
    mut shutdown: Shutdown,
) {
    tokio::spawn(async move {
        if catch_up && let Err(error) = run_missed(&engine, &schedule).await {
            tracing::error!(%error, "catch-up batch failed");
        }
        loop {
            let next = match schedule.next_after(Utc::now()) {
                Ok(next) => next,
                Err(error) => {
                    tracing::error!(%error, "schedule stopped");
                    return;
                }
            };
            tracing::info!(at = %next.at, local = %next.local, business_date = %next.business_date, "next batch scheduled");
            let wait = (next.at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            run_scheduled(&engine, next).await;
        }
        tracing::debug!("scheduler stopped");
    });
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
    if let Err(error) = engine.run_batch(request).await {
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
