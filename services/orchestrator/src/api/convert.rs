//! Conversions between proto types and the orchestrator's types.

use invoicer_domain::email::Mailbox;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;

use crate::log::LogRecord;
use crate::model::{
    Batch, BatchCounts, BatchItem, BatchStatus, BatchTrigger, Delivery, DeliveryState, Purpose,
    RecipientOutcome, Role,
};
use crate::upstream::SendResult;

pub(super) fn instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(super) fn mailbox(mailbox: &Mailbox) -> types::Mailbox {
    types::Mailbox {
        name: mailbox.name.clone().unwrap_or_default(),
        address: mailbox.address.clone(),
    }
}

fn role_to_proto(role: Role) -> types::RecipientRole {
    match role {
        Role::To => types::RecipientRole::To,
        Role::Cc => types::RecipientRole::Cc,
        Role::Bcc => types::RecipientRole::Bcc,
    }
}

pub(super) fn recipient_from_proto(result: &types::RecipientResult) -> RecipientOutcome {
    let role = match types::RecipientRole::try_from(result.role) {
        Ok(types::RecipientRole::Cc) => Role::Cc,
        Ok(types::RecipientRole::Bcc) => Role::Bcc,
        _ => Role::To,
    };
    RecipientOutcome {
        address: result.address.clone(),
        role,
        accepted: result.accepted,
        reply_code: result.reply_code,
        reply_text: result.reply_text.clone(),
    }
}

fn recipient_to_proto(outcome: &RecipientOutcome) -> types::RecipientResult {
    types::RecipientResult {
        address: outcome.address.clone(),
        role: role_to_proto(outcome.role).into(),
        accepted: outcome.accepted,
        reply_code: outcome.reply_code,
        reply_text: outcome.reply_text.clone(),
    }
}

fn outcome_to_proto(result: SendResult) -> types::DeliveryOutcome {
    match result {
        SendResult::Sent => types::DeliveryOutcome::Sent,
        SendResult::PartiallySent => types::DeliveryOutcome::PartiallySent,
        SendResult::Deferred => types::DeliveryOutcome::Deferred,
        SendResult::Failed => types::DeliveryOutcome::Failed,
        SendResult::Unknown => types::DeliveryOutcome::Unknown,
    }
}

pub(super) fn log_entry(record: &LogRecord<'_>) -> audit::Entry {
    let delivery = record.delivery;
    let trigger = match delivery.purpose {
        Purpose::Batch => audit::Trigger {
            kind: audit::TriggerKind::Batch.into(),
            batch_id: delivery.batch_id.clone().unwrap_or_default(),
            ..Default::default()
        },
        Purpose::Resend => audit::Trigger {
            kind: audit::TriggerKind::Resend.into(),
            actor: delivery.actor.clone(),
            reason: delivery.resend_reason.clone(),
            request_id: delivery.request_id.clone().unwrap_or_default(),
            ..Default::default()
        },
    };
    audit::Entry {
        invoice_number: delivery.invoice_number.clone(),
        invoice_revision: delivery.invoice_revision,
        customer_code: delivery.customer_code.clone(),
        trigger: Some(trigger),
        delivery_id: delivery.id.clone(),
        from: Some(mailbox(record.from)),
        to: delivery.to.iter().map(mailbox).collect(),
        cc: delivery.cc.iter().map(mailbox).collect(),
        bcc: delivery.bcc.iter().map(mailbox).collect(),
        subject: delivery.subject.clone(),
        message_id: delivery.message_id.clone(),
        attachment_name: delivery.attachment_name.clone(),
        attachment_size: record.attachment_size,
        attachment_sha256: delivery.pdf_sha256.clone(),
        recipients: delivery.recipients.iter().map(recipient_to_proto).collect(),
        server_reply: delivery.server_reply.clone(),
        outcome: outcome_to_proto(record.outcome).into(),
        detail: delivery.reason.clone(),
        trace_id: delivery.trace_id.clone(),
        destination: delivery.destination.clone(),
        at: instant(record.attempted_at),
        ..Default::default()
    }
}

pub(super) fn delivery_state(state: DeliveryState) -> pb::DeliveryState {
    match state {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Rendered => pb::DeliveryState::Rendered,
        DeliveryState::Submitting => pb::DeliveryState::Submitting,
        DeliveryState::Sent => pb::DeliveryState::Sent,
        DeliveryState::Deferred => pb::DeliveryState::Deferred,
        DeliveryState::Failed => pb::DeliveryState::Failed,
        DeliveryState::Skipped => pb::DeliveryState::Skipped,
        DeliveryState::Unknown => pb::DeliveryState::Unknown,
        DeliveryState::Planned => pb::DeliveryState::Planned,
    }
}

pub(super) fn delivery(delivery: &Delivery) -> pb::Delivery {
    pb::Delivery {
        id: delivery.id.clone(),
        key: delivery.key.clone(),
        invoice_number: delivery.invoice_number.clone(),
        invoice_revision: delivery.invoice_revision,
        customer_code: delivery.customer_code.clone(),
        state: delivery_state(delivery.state).into(),
        to: delivery.to.iter().map(mailbox).collect(),
        cc: delivery.cc.iter().map(mailbox).collect(),
        bcc: delivery.bcc.iter().map(mailbox).collect(),
        subject: delivery.subject.clone(),
        attachment_name: delivery.attachment_name.clone(),
        pdf_sha256: delivery.pdf_sha256.clone(),
        message_id: delivery.message_id.clone(),
        reason: delivery.reason.clone(),
        attempts: delivery.attempts,
        next_attempt_at: delivery.next_attempt_at.map(instant).unwrap_or_default(),
        batch_id: delivery.batch_id.clone().unwrap_or_default(),
        recipients: delivery.recipients.iter().map(recipient_to_proto).collect(),
        server_reply: delivery.server_reply.clone(),
        request_id: delivery.request_id.clone().unwrap_or_default(),
        actor: delivery.actor.clone(),
        resend_reason: delivery.resend_reason.clone(),
    }
}

/// Converts a batch item: the delivery as it ended in that batch.
pub(super) fn batch_item(item: &BatchItem) -> pb::Delivery {
    let mut converted = delivery(&item.delivery);
    converted.state = delivery_state(item.state).into();
    converted.reason = item.reason.clone();
    converted
}

pub(super) fn counts(counts: &BatchCounts) -> pb::BatchCounts {
    pb::BatchCounts {
        eligible: counts.eligible,
        sent: counts.sent,
        skipped: counts.skipped,
        failed: counts.failed,
        deferred: counts.deferred,
        unknown: counts.unknown,
        planned: counts.planned,
    }
}

pub(super) fn batch_status(status: BatchStatus) -> pb::BatchStatus {
    match status {
        BatchStatus::Running => pb::BatchStatus::Running,
        BatchStatus::Completed => pb::BatchStatus::Completed,
        BatchStatus::Failed => pb::BatchStatus::Failed,
        BatchStatus::Planned => pb::BatchStatus::Planned,
    }
}

/// Converts a batch with its counts and the items to list.
pub(super) fn batch(batch: &Batch, counts: &BatchCounts, items: &[BatchItem]) -> pb::Batch {
    pb::Batch {
        id: batch.id.clone(),
        business_date: batch.business_date.to_string(),
        status: batch_status(batch.status).into(),
        trigger: match batch.trigger {
            BatchTrigger::Schedule => pb::BatchTrigger::Schedule,
            BatchTrigger::Manual => pb::BatchTrigger::Manual,
        }
        .into(),
        cutoff: instant(batch.cutoff),
        window_start: instant(batch.window_start),
        started_at: instant(batch.started_at),
        finished_at: batch.finished_at.map(instant).unwrap_or_default(),
        counts: Some(self::counts(counts)),
        deliveries: items.iter().map(batch_item).collect(),
        error: batch.error.clone().unwrap_or_default(),
    }
}
