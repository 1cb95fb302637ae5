//! Conversion between entries and table rows.

use std::collections::BTreeSet;

use chrono::DateTime;
use sea_orm::ActiveValue::Set;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{entries, recipients};
use crate::entry::{
    Entry, Mailbox, Outcome, RecipientResult, SendAttempt, Trigger, TriggerKind, address_key,
};
use crate::error::Error;

/// Builds the row of `entry`, appended with the caller's `idempotency_key` if it sent one.
pub(super) fn entry_row(entry: &Entry, idempotency_key: Option<&str>) -> entries::ActiveModel {
    let attempt = &entry.attempt;
    let trigger = &attempt.trigger;
    entries::ActiveModel {
        sequence: Set(to_i64(entry.sequence)),
        id: Set(entry.id.hyphenated().to_string()),
        invoice_number: Set(attempt.invoice_number.clone()),
        invoice_revision: Set(i64::from(attempt.invoice_revision)),
        customer_code: Set(attempt.customer_code.clone()),
        trigger_kind: Set(trigger.kind.as_str().to_owned()),
        batch_id: Set(trigger.batch_id.clone()),
        actor: Set(trigger.actor.clone()),
        reason: Set(trigger.reason.clone()),
        request_id: Set(trigger.request_id.clone()),
        delivery_id: Set(attempt.delivery_id.clone()),
        from_name: Set(attempt.from.name.clone()),
        from_address: Set(attempt.from.address.clone()),
        to_mailboxes: Set(to_json(&attempt.to)),
        cc_mailboxes: Set(to_json(&attempt.cc)),
        bcc_mailboxes: Set(to_json(&attempt.bcc)),
        subject: Set(attempt.subject.clone()),
        message_id: Set(attempt.message_id.clone()),
        attachment_name: Set(attempt.attachment_name.clone()),
        attachment_size: Set(to_i64(attempt.attachment_size)),
        attachment_sha256: Set(attempt.attachment_sha256.clone()),
        recipient_results: Set(to_json(&attempt.recipients)),
        server_reply: Set(attempt.server_reply.clone()),
        outcome: Set(attempt.outcome.as_str().to_owned()),
        detail: Set(attempt.detail.clone()),
        at_unix_ms: Set(entry.at.timestamp_millis()),
        trace_id: Set(attempt.trace_id.clone()),
        destination: Set(attempt.destination.clone()),
        prev_hash: Set(entry.prev_hash.clone()),
        entry_hash: Set(entry.entry_hash.clone()),
        idempotency_key: Set(idempotency_key.map(str::to_owned)),
    }
}

/// Builds one row per distinct (address, role) among the entry's To, Cc and Bcc.
pub(super) fn recipient_rows(entry: &Entry) -> Vec<recipients::ActiveModel> {
    let distinct: BTreeSet<(String, &'static str)> = entry
        .attempt
        .addressed_mailboxes()
        .map(|(mailbox, role)| (address_key(&mailbox.address), role.as_str()))
        .filter(|(address, _)| !address.is_empty())
        .collect();
    distinct
        .into_iter()
        .map(|(address, role)| recipients::ActiveModel {
            entry_sequence: Set(to_i64(entry.sequence)),
            address_lowercase: Set(address),
            role: Set(role.to_owned()),
        })
        .collect()
}

/// Decodes a row. A row that does not decode was changed outside the service.
pub(super) fn entry_from_row(row: entries::Model) -> Result<Entry, Error> {
    let sequence = u64::try_from(row.sequence).unwrap_or(0);
    let corrupt = |reason: String| Error::CorruptEntry { sequence, reason };

    if row.sequence < 1 {
        return Err(corrupt(format!(
            "sequence {} is not positive",
            row.sequence
        )));
    }

    let kind = TriggerKind::parse(&row.trigger_kind)
        .ok_or_else(|| corrupt(format!("unknown trigger_kind {:?}", row.trigger_kind)))?;
    let outcome = Outcome::parse(&row.outcome)
        .ok_or_else(|| corrupt(format!("unknown outcome {:?}", row.outcome)))?;
    let id =
        Uuid::parse_str(&row.id).map_err(|e| corrupt(format!("invalid id {:?}: {e}", row.id)))?;
    let at = DateTime::from_timestamp_millis(row.at_unix_ms)
        .ok_or_else(|| corrupt(format!("at_unix_ms {} out of range", row.at_unix_ms)))?;
    let invoice_revision = u32::try_from(row.invoice_revision).map_err(|_| {
        corrupt(format!(
            "invoice_revision {} out of range",
            row.invoice_revision
        ))
    })?;
    let attachment_size = u64::try_from(row.attachment_size).map_err(|_| {
        corrupt(format!(
            "attachment_size {} is negative",
            row.attachment_size
        ))
    })?;

    let attempt = SendAttempt {
        invoice_number: row.invoice_number,
        invoice_revision,
        customer_code: row.customer_code,
        trigger: Trigger {
            kind,
            batch_id: row.batch_id,
            actor: row.actor,
            reason: row.reason,
            request_id: row.request_id,
        },
        delivery_id: row.delivery_id,
        from: Mailbox {
            name: row.from_name,
            address: row.from_address,
        },
        to: from_json::<Vec<Mailbox>>("to_mailboxes", &row.to_mailboxes).map_err(corrupt)?,
        cc: from_json::<Vec<Mailbox>>("cc_mailboxes", &row.cc_mailboxes).map_err(corrupt)?,
        bcc: from_json::<Vec<Mailbox>>("bcc_mailboxes", &row.bcc_mailboxes).map_err(corrupt)?,
        subject: row.subject,
        message_id: row.message_id,
        attachment_name: row.attachment_name,
        attachment_size,
        attachment_sha256: row.attachment_sha256,
        recipients: from_json::<Vec<RecipientResult>>("recipient_results", &row.recipient_results)
            .map_err(corrupt)?,
        server_reply: row.server_reply,
        outcome,
        detail: row.detail,
        trace_id: row.trace_id,
        destination: row.destination,
    };
    Ok(Entry {
        sequence,
        id,
        at,
        attempt,
        prev_hash: row.prev_hash,
        entry_hash: row.entry_hash,
    })
}

/// Sequences and sizes are below `i64::MAX`: validation caps sizes, and a sequence would need
/// 2^63 appends.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Mailboxes and recipient results are plain structs of strings, numbers and booleans,
    // which serde_json always serializes.
    serde_json::to_string(value).expect("entry lists serialize to JSON")
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|error| format!("invalid JSON in {column}: {error}"))
}
