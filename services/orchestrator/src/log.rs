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
