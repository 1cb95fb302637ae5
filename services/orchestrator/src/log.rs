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
    /// Returns the key under which audit-log stores this outcome: the delivery id, the attempt
    /// number and the outcome. audit-log drops a second append with the same key, which comes
    /// when the append succeeded but marking the delivery as logged failed, or when another
    /// replica appended it first. The outcome is part of the key because a delivery can end
    /// without a new attempt, such as a deferred one that fails before its retry sends.
    pub(crate) fn idempotency_key(&self) -> String {
        let outcome = match self.outcome {
            SendResult::Sent => "sent",
            SendResult::PartiallySent => "partially_sent",
            SendResult::Deferred => "deferred",
            SendResult::Failed => "failed",
            SendResult::Unknown => "unknown",
        };
        format!("{}/{}/{outcome}", self.delivery.id, self.delivery.attempts)
    }
}
