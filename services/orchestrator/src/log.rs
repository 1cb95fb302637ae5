//! The record the orchestrator writes to the email log for each attempt's outcome.

use invoicer_domain::email::Mailbox;

use crate::model::Delivery;
use crate::upstream::SendResult;

/// One attempt's outcome, as audit-log stores it. The trigger (batch or resend with actor and
/// reason) comes from the delivery.
pub(crate) struct LogRecord<'a> {
    pub delivery: &'a Delivery,
    pub from: &'a Mailbox,
    pub outcome: SendResult,
    pub attachment_size: u64,
    /// When the attempt ended; the log keeps it also when the entry is appended later.
    pub attempted_at: chrono::DateTime<chrono::Utc>,
}

impl LogRecord<'_> {
    /// Returns the key under which audit-log stores this outcome: the delivery id and the
    /// attempt number. Each attempt's outcome is appended once in the normal course, so the
    /// key lets audit-log drop a second append of it. That happens when the append succeeded
    /// but marking the delivery as logged failed, or when another replica appended it first.
    pub(crate) fn idempotency_key(&self) -> String {
        format!("{}/{}", self.delivery.id, self.delivery.attempts)
    }
}
