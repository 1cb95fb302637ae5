//! The orchestrator's state shared by the batch, the resends, the retry loop and the gRPC
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use invoicer_domain::email::Mailbox;
use invoicer_kit::{Config, Shutdown};
use tokio::sync::broadcast;

use crate::api::Upstream;
use crate::error::OrchestratorError;
use crate::message::MessageTemplates;
use crate::model::{BatchCounts, BatchStatus, Delivery};
use crate::notifier::EffectiveNotifier;
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
    pub max_attempts: u32,
    pub retry_base: Duration,
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
            max_attempts: config.batch.max_attempts.max(1),
            retry_base: Duration::from_secs(config.batch.retry_base_secs.max(1)),
            timezone: crate::schedule::parse_timezone(config.schedule_timezone())?,
        })
    }
}

/// Parses a lookback such as `30d` or `36h`.
pub(crate) fn parse_lookback(
    field: &'static str,
    value: &str,
) -> Result<chrono::Duration, OrchestratorError> {
    let duration = humantime::parse_duration(value.trim()).map_err(|e| {
        OrchestratorError::invalid(
            field,
            format!("invalid duration {value:?} ({e}); use a form such as `30d` or `36h`"),
        )
    })?;
    chrono::Duration::from_std(duration)
        .map_err(|_| OrchestratorError::invalid(field, format!("duration {value:?} is too long")))
}

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
}

impl Engine {
    pub(crate) fn new(
        config: Arc<Config>,
        store: Store,
        upstream: Upstream,
        shutdown: Shutdown,
    ) -> Result<Engine, OrchestratorError> {
        let schedule_config = &config.batch.schedule;
        Ok(Engine {
            shutdown,
            schedule: Schedule::new(&schedule_config.cron, config.schedule_timezone())?,
            settings: Settings::from_config(&config)?,
            default_notifier: EffectiveNotifier::from_config(&config.notifier)?,
            config,
            store,
            upstream,
            templates: MessageTemplates::new(),
            running: Mutex::new(None),
            work_lock: tokio::sync::Mutex::new(()),
            watchers: Mutex::new(HashMap::new()),
        })
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

    /// When a deferred delivery is tried again: the base delay, doubled per earlier attempt.
    pub(crate) fn next_attempt_at(&self, attempts: u32) -> chrono::DateTime<Utc> {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        let delay = self.settings.retry_base.saturating_mul(factor);
        Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1))
    }

    pub(crate) fn subscribe(&self, batch_id: &str) -> Option<broadcast::Receiver<Progress>> {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.get(batch_id).map(|sender| sender.subscribe())
    }
}
