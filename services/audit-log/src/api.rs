//! The gRPC face of audit-log: the only module that touches generated proto types. It converts
//! requests to domain types and maps every error to a `tonic::Status` in one match.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use invoicer_kit::status::{internal, invalid_argument};
use invoicer_proto::audit_log::v1 as pb;
use invoicer_proto::types::v1 as types;
use pb::audit_log_service_server::{AuditLogService, AuditLogServiceServer};
use tonic::{Request, Response, Status};

use crate::chain::Verification;
use crate::entry::{
    Entry, Mailbox, Outcome, RecipientResult, RecipientRole, SendAttempt, Trigger, TriggerKind,
    format_at,
};
use crate::error::Error;
use crate::query::ListRequest;
use crate::service::AuditLog;

/// Largest request accepted, in bytes: an entry with the maximum of every field fits easily.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Wraps `log` in the generated server, ready for the host's routes.
pub(crate) fn server(log: AuditLog) -> AuditLogServiceServer<AuditLogApi> {
    AuditLogServiceServer::new(AuditLogApi { log: Arc::new(log) })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

pub(crate) struct AuditLogApi {
    log: Arc<AuditLog>,
}

#[tonic::async_trait]
impl AuditLogService for AuditLogApi {
    async fn append_entry(
        &self,
        request: Request<pb::AppendEntryRequest>,
    ) -> Result<Response<pb::AppendEntryResponse>, Status> {
        let request = request.into_inner();
        crate::validate::append_entry(&request)?;
        let idempotency_key = Some(request.idempotency_key).filter(|key| !key.is_empty());
        let entry = request.entry;
        let attempted_at = attempted_at_from_proto(entry.as_ref().map_or("", |e| e.at.as_str()))
            .map_err(|error| to_status("append entry", error))?;
        let attempt =
            attempt_from_proto(entry).map_err(|error| to_status("append entry", error))?;
        let entry = self
            .log
            .append(attempt, attempted_at, idempotency_key)
            .await
            .map_err(|error| to_status("append entry", error))?;
        Ok(Response::new(pb::AppendEntryResponse {
            entry: Some(entry_to_proto(entry)),
        }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let request = request.into_inner();
        crate::validate::list_entries(&request)?;
        let request = list_request_from_proto(request);
        let page = self
            .log
            .list(&request)
            .await
            .map_err(|error| to_status("list entries", error))?;
        Ok(Response::new(pb::ListEntriesResponse {
            entries: page.entries.into_iter().map(entry_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        let request = request.into_inner();
        crate::validate::get_entry(&request)?;
        let id = request.id;
        let entry = self
            .log
            .get(&id)
            .await
            .map_err(|error| to_status("get entry", error))?;
        Ok(Response::new(pb::GetEntryResponse {
            entry: Some(entry_to_proto(entry)),
        }))
    }

    async fn verify_log(
        &self,
        _request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogResponse>, Status> {
        let verification = self
            .log
            .verify()
            .await
            .map_err(|error| to_status("verify log", error))?;
        Ok(Response::new(verification_to_proto(verification)))
    }
}

/// Maps a domain error to its gRPC status, the only such mapping in the crate. Internal
/// details go to the log, never to the client.
fn to_status(operation: &str, error: Error) -> Status {
    match error {
        Error::InvalidArgument { field, message } => {
            tracing::debug!(%field, %message, "{operation} rejected: invalid argument");
            invalid_argument(&field, message)
        }
        Error::EntryNotFound { id } => Status::not_found(format!(
            "entry {id} not found: pass an id that ListEntries returned"
        )),
        Error::AppendConflict { .. } => {
            tracing::warn!(%error, "{operation} failed");
            Status::aborted(format!("{error}; retry the append"))
        }
        Error::IdempotencyKeyReused { .. } => {
            tracing::warn!(%error, "{operation} rejected");
            Status::already_exists(error.to_string())
        }
        Error::AppendInterrupted => {
            tracing::error!(%error, "{operation} failed");
            Status::unavailable(error.to_string())
        }
        Error::CorruptEntry { .. }
        | Error::DataDir { .. }
        | Error::Connect(_)
        | Error::Migrate(_)
        | Error::Database(_) => {
            tracing::error!(%error, "{operation} failed");
            internal(operation)
        }
    }
}

fn attempt_from_proto(entry: Option<pb::Entry>) -> Result<SendAttempt, Error> {
    let entry =
        entry.ok_or_else(|| Error::invalid("entry", "missing: send the entry to append"))?;
    let trigger = trigger_from_proto(entry.trigger)?;
    let outcome = outcome_from_proto(entry.outcome)?;
    let recipients = entry
        .recipients
        .into_iter()
        .enumerate()
        .map(|(index, result)| recipient_result_from_proto(index, result))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SendAttempt {
        invoice_number: entry.invoice_number,
        invoice_revision: entry.invoice_revision,
        customer_code: entry.customer_code,
        trigger,
        delivery_id: entry.delivery_id,
        from: entry.from.map(mailbox_from_proto).unwrap_or_default(),
        to: entry.to.into_iter().map(mailbox_from_proto).collect(),
        cc: entry.cc.into_iter().map(mailbox_from_proto).collect(),
        bcc: entry.bcc.into_iter().map(mailbox_from_proto).collect(),
        subject: entry.subject,
        message_id: entry.message_id,
        attachment_name: entry.attachment_name,
        attachment_size: entry.attachment_size,
        attachment_sha256: entry.attachment_sha256,
        recipients,
        server_reply: entry.server_reply,
        outcome,
        detail: entry.detail,
        trace_id: entry.trace_id,
        destination: entry.destination,
    })
}

/// Reads the optional attempt time: RFC 3339, not in the future beyond a minute of clock skew.
fn attempted_at_from_proto(text: &str) -> Result<Option<DateTime<Utc>>, Error> {
    const FIELD: &str = "entry.at";
    if text.trim().is_empty() {
        return Ok(None);
    }
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| Error::invalid(FIELD, format!("invalid RFC 3339 instant {text:?}")))?
        .with_timezone(&Utc);
    if at > Utc::now() + chrono::Duration::minutes(1) {
        return Err(Error::invalid(FIELD, format!("{text:?} is in the future")));
    }
    // Millisecond precision, as for entries timed by audit-log.
    Ok(DateTime::from_timestamp_millis(at.timestamp_millis()))
}

fn trigger_from_proto(trigger: Option<pb::Trigger>) -> Result<Trigger, Error> {
    const FIELD: &str = "entry.trigger.kind";
    let trigger = trigger.ok_or_else(|| {
        Error::invalid(
            "entry.trigger",
            "missing: set the trigger with its kind (batch or resend)",
        )
    })?;
    let kind = match pb::TriggerKind::try_from(trigger.kind) {
        Ok(pb::TriggerKind::Batch) => TriggerKind::Batch,
        Ok(pb::TriggerKind::Resend) => TriggerKind::Resend,
        Ok(pb::TriggerKind::Unspecified) => {
            return Err(Error::invalid(
                FIELD,
                "missing: set TRIGGER_KIND_BATCH or TRIGGER_KIND_RESEND",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                FIELD,
                format!(
                    "unknown value {}: use TRIGGER_KIND_BATCH or TRIGGER_KIND_RESEND",
                    trigger.kind
                ),
            ));
        }
    };
    Ok(Trigger {
        kind,
        batch_id: trigger.batch_id,
        actor: trigger.actor,
        reason: trigger.reason,
        request_id: trigger.request_id,
    })
}

fn outcome_from_proto(value: i32) -> Result<Outcome, Error> {
    const FIELD: &str = "entry.outcome";
    match types::DeliveryOutcome::try_from(value) {
        Ok(types::DeliveryOutcome::Sent) => Ok(Outcome::Sent),
        Ok(types::DeliveryOutcome::PartiallySent) => Ok(Outcome::PartiallySent),
        Ok(types::DeliveryOutcome::Deferred) => Ok(Outcome::Deferred),
        Ok(types::DeliveryOutcome::Failed) => Ok(Outcome::Failed),
        Ok(types::DeliveryOutcome::Unknown) => Ok(Outcome::Unknown),
        Ok(types::DeliveryOutcome::Skipped) => Ok(Outcome::Skipped),
        Ok(types::DeliveryOutcome::Unspecified) => Err(Error::invalid(
            FIELD,
            "missing: set the outcome of the send attempt, such as DELIVERY_OUTCOME_SENT",
        )),
        Err(_) => Err(Error::invalid(
            FIELD,
            format!("unknown value {value}: use a DeliveryOutcome such as DELIVERY_OUTCOME_SENT"),
        )),
    }
}

fn recipient_result_from_proto(
    index: usize,
    result: types::RecipientResult,
) -> Result<RecipientResult, Error> {
    let role = match types::RecipientRole::try_from(result.role) {
        Ok(types::RecipientRole::Unspecified) => RecipientRole::Unspecified,
        Ok(types::RecipientRole::To) => RecipientRole::To,
        Ok(types::RecipientRole::Cc) => RecipientRole::Cc,
        Ok(types::RecipientRole::Bcc) => RecipientRole::Bcc,
        Ok(types::RecipientRole::None) => RecipientRole::None,
        Err(_) => {
            return Err(Error::invalid(
                format!("entry.recipients[{index}].role"),
                format!(
                    "unknown value {}: use a RecipientRole such as RECIPIENT_ROLE_TO",
                    result.role
                ),
            ));
        }
    };
    Ok(RecipientResult {
        address: result.address,
        role,
        accepted: result.accepted,
        reply_code: result.reply_code,
        reply_text: result.reply_text,
    })
}

fn mailbox_from_proto(mailbox: types::Mailbox) -> Mailbox {
    Mailbox {
        name: mailbox.name,
        address: mailbox.address,
    }
}

fn list_request_from_proto(request: pb::ListEntriesRequest) -> ListRequest {
    ListRequest {
        invoice_number: request.invoice_number,
        customer_code: request.customer_code,
        recipient: request.recipient,
        since: request.since,
        until: request.until,
        batch_id: request.batch_id,
        page_size: request.page_size,
        page_token: request.page_token,
    }
}

fn entry_to_proto(entry: Entry) -> pb::Entry {
    let attempt = entry.attempt;
    pb::Entry {
        sequence: entry.sequence,
        id: entry.id.hyphenated().to_string(),
        invoice_number: attempt.invoice_number,
        invoice_revision: attempt.invoice_revision,
        customer_code: attempt.customer_code,
        trigger: Some(trigger_to_proto(attempt.trigger)),
        delivery_id: attempt.delivery_id,
        from: Some(mailbox_to_proto(attempt.from)),
        to: attempt.to.into_iter().map(mailbox_to_proto).collect(),
        cc: attempt.cc.into_iter().map(mailbox_to_proto).collect(),
        bcc: attempt.bcc.into_iter().map(mailbox_to_proto).collect(),
        subject: attempt.subject,
        message_id: attempt.message_id,
        attachment_name: attempt.attachment_name,
        attachment_size: attempt.attachment_size,
        attachment_sha256: attempt.attachment_sha256,
        recipients: attempt
            .recipients
            .into_iter()
            .map(recipient_result_to_proto)
            .collect(),
        server_reply: attempt.server_reply,
        outcome: outcome_to_proto(attempt.outcome) as i32,
        detail: attempt.detail,
        at: format_at(entry.at),
        trace_id: attempt.trace_id,
        destination: attempt.destination,
        prev_hash: entry.prev_hash,
        entry_hash: entry.entry_hash,
    }
}

fn trigger_to_proto(trigger: Trigger) -> pb::Trigger {
    let kind = match trigger.kind {
        TriggerKind::Batch => pb::TriggerKind::Batch,
        TriggerKind::Resend => pb::TriggerKind::Resend,
    };
    pb::Trigger {
        kind: kind as i32,
        batch_id: trigger.batch_id,
        actor: trigger.actor,
        reason: trigger.reason,
        request_id: trigger.request_id,
    }
}

fn outcome_to_proto(outcome: Outcome) -> types::DeliveryOutcome {
    match outcome {
        Outcome::Sent => types::DeliveryOutcome::Sent,
        Outcome::PartiallySent => types::DeliveryOutcome::PartiallySent,
        Outcome::Deferred => types::DeliveryOutcome::Deferred,
        Outcome::Failed => types::DeliveryOutcome::Failed,
        Outcome::Unknown => types::DeliveryOutcome::Unknown,
        Outcome::Skipped => types::DeliveryOutcome::Skipped,
    }
}

fn recipient_result_to_proto(result: RecipientResult) -> types::RecipientResult {
    let role = match result.role {
        RecipientRole::Unspecified => types::RecipientRole::Unspecified,
        RecipientRole::To => types::RecipientRole::To,
        RecipientRole::Cc => types::RecipientRole::Cc,
        RecipientRole::Bcc => types::RecipientRole::Bcc,
        RecipientRole::None => types::RecipientRole::None,
    };
    types::RecipientResult {
        address: result.address,
        role: role as i32,
        accepted: result.accepted,
        reply_code: result.reply_code,
        reply_text: result.reply_text,
    }
}

fn mailbox_to_proto(mailbox: Mailbox) -> types::Mailbox {
    types::Mailbox {
        name: mailbox.name,
        address: mailbox.address,
    }
}

fn verification_to_proto(verification: Verification) -> pb::VerifyLogResponse {
    pb::VerifyLogResponse {
        ok: verification.first_bad_sequence.is_none(),
        entries_checked: verification.entries_checked,
        first_bad_sequence: verification.first_bad_sequence.unwrap_or(0),
        message: verification.message,
    }
}
