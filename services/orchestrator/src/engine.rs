//! The orchestrator's state shared by the batch, the resends, the retry loop and the gRPC
//! server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use invoicer_domain::email::Mailbox;
use invoicer_kit::{Config, Shutdown, WorkGuard};
use tokio::sync::broadcast;

use crate::api::Upstream;
use crate::error::OrchestratorError;
use crate::log_backoff::LogBackoff;
use crate::message::MessageTemplates;
use crate::model::{BatchCounts, BatchStatus, Delivery};
use crate::notifier::EffectiveNotifier;
use crate::retry::RetryPolicy;
use crate::schedule::Schedule;
use crate::store::Store;

/// A progress event of a running batch.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub batch_id: String,
    pub status: BatchStatus,
    pub counts: BatchCounts,
    pub done: u32,
    pub delivery: Option<Delivery>,
    /// Eligible invoices of the batch; 0 until they are listed.
    pub total: u32,
}

/// Settings resolved once at start from the config.
pub(crate) struct Settings {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub message_id_domain: String,
    pub lookback: chrono::Duration,
    pub concurrency: usize,
    pub plan_chunk: usize,
    pub retry: RetryPolicy,
    pub lease_duration: Duration,
    pub timezone: chrono_tz::Tz,
}

impl Settings {
    pub(crate) fn from_config(config: &Config) -> Result<Settings, OrchestratorError> {
        let from = Mailbox::parse(&config.mail.from)
            .map_err(|e| OrchestratorError::invalid("mail.from", e.to_string()))?;
        let reply_to = match &config.mail.reply_to {
            Some(value) => Some(
                Mailbox::parse(value)
                    .map_err(|e| OrchestratorError::invalid("mail.reply_to", e.to_string()))?,
            ),
            None => None,
        };
        let message_id_domain = match &config.mail.message_id_domain {
            Some(domain) => domain.clone(),
            None => from
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_owned())
                .unwrap_or_default(),
        };
        Ok(Settings {
            from,
            reply_to,
            message_id_domain,
            lookback: parse_lookback("batch.lookback", &config.batch.lookback)?,
            concurrency: config.batch.concurrency.max(1),
            plan_chunk: config.batch.plan_chunk.max(1),
            retry: RetryPolicy::from_config(&config.batch)?,
            lease_duration: lease_duration(&config.batch.lease_duration)?,
            timezone: crate::schedule::parse_timezone(config.schedule_timezone())?,
        })
    }
}

/// Parses the lease duration; below one second renewals could not keep up.
pub(crate) fn lease_duration(value: &str) -> Result<Duration, OrchestratorError> {
    let field = "batch.lease_duration";
    let duration = humantime::parse_duration(value.trim()).map_err(|e| {
        OrchestratorError::invalid(
            field,
            format!("invalid duration {value:?} ({e}); use a form such as `30s` or `2m`"),
        )
    })?;
    if duration < Duration::from_secs(1) {
        return Err(OrchestratorError::invalid(
            field,
            format!("{value:?} is shorter than 1s; use at least `1s`"),
        ));
    }
    Ok(duration)
}

/// Parses a lookback such as `30d` or `36h`.
pub(crate) fn parse_lookback(
    field: &'static str,
    value: &str,
) -> Result<chrono::Duration, OrchestratorError> {
    let trimmed = value.trim();
    // humantime's own message for a bare number suggests seconds and milliseconds first.
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OrchestratorError::invalid(
            field,
            format!(
                "{value:?} has no unit; add one, such as `{trimmed}d` for days or `{trimmed}h` for hours"
            ),
        ));
    }
    let duration = humantime::parse_duration(trimmed).map_err(|e| {
        OrchestratorError::invalid(
            field,
            format!("invalid duration {value:?} ({e}); use a form such as `30d` or `36h`"),
        )
    })?;
    if duration > MAX_LOOKBACK {
        return Err(OrchestratorError::invalid(
            field,
            format!("{value:?} reaches back more than 3650 days; give at most `3650d`"),
        ));
    }
    chrono::Duration::from_std(duration)
        .map_err(|_| OrchestratorError::invalid(field, format!("duration {value:?} is too long")))
}

/// Maximum lookback: 3650 days. That covers any invoice still worth sending, and a typo such
/// as `99999d`, which reaches back to the 18th century, is rejected.
const MAX_LOOKBACK: Duration = Duration::from_secs(3650 * 86400);

/// The batch running in this process, if any.
pub(crate) struct RunningBatch {
    pub id: String,
    pub business_date: String,
}

pub(crate) struct Engine {
    pub config: Arc<Config>,
    pub settings: Settings,
    pub schedule: Schedule,
    /// Set when the host begins to stop; batches then attempt no further deliveries.
    pub shutdown: Shutdown,
    pub store: Store,
    pub upstream: Upstream,
    pub templates: MessageTemplates,
    /// The `[notifier]` section of the config file, checked at start.
    pub default_notifier: EffectiveNotifier,
    pub running: Mutex<Option<RunningBatch>>,
    /// Serialises batches and the retry loop so one delivery never has two workers here.
    pub work_lock: tokio::sync::Mutex<()>,
    pub watchers: Mutex<HashMap<String, broadcast::Sender<Progress>>>,
    /// Ids of the deliveries this process is working on, each with the number of guards
    /// (`track`) that hold it. Read for the log of what a shutdown left unfinished, and by the
    /// retry loop, which settles the deliveries leased to this replica that are not in it.
    pub in_flight: Mutex<BTreeMap<String, usize>>,
    /// The deliveries whose attempt in this process ended with an error before it stored the
    /// outcome, by id, with the error. The retry loop counts that attempt when it settles them.
    pub failed_attempts: Mutex<HashMap<String, String>>,
    /// The id after which the next round of `append_unlogged` starts, where the last round
    /// stopped after a page that audit-log rejected in full. `None` starts at the first id.
    pub log_catch_up_after: Mutex<Option<String>>,
    /// The outcomes whose catch-up append audit-log rejected, each waiting for its next try.
    pub log_backoff: LogBackoff,
    /// Wakes the retry loop when a delivery is deferred, so its retry is not late by the
    /// loop's sleep.
    pub retry_wakeup: tokio::sync::Notify,
}

/// One delivery this process works on: the host's drain waits for it, and its id is listed
/// while it lasts.
pub(crate) struct InFlight<'a> {
    engine: &'a Engine,
    id: String,
    _work: WorkGuard,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .engine
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(guards) = in_flight.get_mut(&self.id) {
            *guards -= 1;
            if *guards == 0 {
                in_flight.remove(&self.id);
            }
        }
    }
}

impl Engine {
    pub(crate) fn new(
        config: Arc<Config>,
        store: Store,
        upstream: Upstream,
        shutdown: Shutdown,
    ) -> Result<Engine, OrchestratorError> {
        let schedule_config = &config.batch.schedule;
        let templates = MessageTemplates::new(&config.company.language);
        Ok(Engine {
            shutdown,
            schedule: Schedule::new(&schedule_config.cron, config.schedule_timezone())?,
            settings: Settings::from_config(&config)?,
            default_notifier: EffectiveNotifier::from_config(&config.notifier)?,
            config,
            store,
            upstream,
            templates,
            running: Mutex::new(None),
            work_lock: tokio::sync::Mutex::new(()),
            watchers: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(BTreeMap::new()),
            failed_attempts: Mutex::new(HashMap::new()),
            log_catch_up_after: Mutex::new(None),
            log_backoff: LogBackoff::default(),
            retry_wakeup: tokio::sync::Notify::new(),
        })
    }

    /// Registers the delivery `id` as in flight until the returned guard drops. A delivery
    /// can be tracked twice at once, as a resend does from before it inserts the delivery.
    /// It stays in flight until every guard drops.
    pub(crate) fn track(&self, id: &str) -> InFlight<'_> {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_default() += 1;
        InFlight {
            engine: self,
            id: id.to_owned(),
            _work: self.shutdown.begin_work(),
        }
    }

    /// Returns whether delivery `id` is in flight in this process.
    pub(crate) fn is_in_flight(&self, id: &str) -> bool {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.contains_key(id)
    }

    /// Returns the ids of the deliveries in flight in this process.
    pub(crate) fn in_flight_ids(&self) -> Vec<String> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.keys().cloned().collect()
    }

    /// Chooses the Message-ID of a delivery's next attempt; it is stored before the attempt.
    pub(crate) fn message_id(&self, delivery: &Delivery) -> String {
        format!(
            "{}.{}@{}",
            delivery.id,
            delivery.attempts + 1,
            self.settings.message_id_domain
        )
    }

    pub(crate) fn subscribe(&self, batch_id: &str) -> Option<broadcast::Receiver<Progress>> {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.get(batch_id).map(|sender| sender.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_without_unit_names_the_units() {
        let error = parse_lookback("lookback", "3650").unwrap_err().to_string();
        assert!(
            error.contains("\"3650\" has no unit; add one, such as `3650d` for days"),
            "{error}"
        );
        assert_eq!(
            parse_lookback("lookback", " 30d ").unwrap(),
            chrono::Duration::days(30)
        );
        assert_eq!(
            parse_lookback("lookback", "3650d").unwrap(),
            chrono::Duration::days(3650)
        );
        let error = parse_lookback("lookback", "99999d")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"99999d\" reaches back more than 3650 days; give at most `3650d`"),
            "{error}"
        );
        let error = parse_lookback("lookback", "30 parsecs")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("use a form such as `30d` or `36h`"),
            "{error}"
        );
    }
}
