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
    /// number and the delivery's state. audit-log drops a second append with the same key,
    /// which comes when the append succeeded but marking the delivery as logged failed, or when
    /// another replica appended it first. The state is part of the key because a delivery can
    /// end without a new attempt, such as a deferred one that fails before its retry sends. It
    /// is the stored state and not `outcome`, because a catch-up round derives the outcome
    /// again from the stored delivery and can tell `sent` from `partially_sent` otherwise.
    pub(crate) fn idempotency_key(&self) -> String {
        let delivery = self.delivery;
        format!(
            "{}/{}/{}",
            delivery.id,
            delivery.attempts,
            delivery.state.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeliveryState, Purpose};

    fn key(delivery: &Delivery, outcome: SendResult) -> String {
        let from = Mailbox {
            name: None,
            address: "billing@company.example".to_owned(),
        };
        let record = LogRecord {
            delivery,
            from: &from,
            outcome,
            attachment_size: 0,
            attempted_at: chrono::Utc::now(),
        };
        record.idempotency_key()
    }

    #[test]
    fn key_names_attempt_and_state() {
        let mut delivery = Delivery::new(
            Delivery::batch_key("INV-1", 1),
            "INV-1",
            1,
            "C-1",
            Purpose::Batch,
        );
        delivery.attempts = 2;
        delivery.state = DeliveryState::Deferred;
        let deferred = key(&delivery, SendResult::Deferred);
        assert_eq!(deferred, format!("{}/2/deferred", delivery.id));

        // A deferred delivery that fails before its retry sends keeps its attempt number.
        delivery.state = DeliveryState::Failed;
        assert_ne!(key(&delivery, SendResult::Failed), deferred);

        // A catch-up round may derive another outcome for the same stored state.
        delivery.state = DeliveryState::Sent;
        assert_eq!(
            key(&delivery, SendResult::Sent),
            key(&delivery, SendResult::PartiallySent)
        );
    }
}
