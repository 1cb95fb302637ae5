//! Domain types of the email log: what a caller reports about one send attempt, and the entry
//! that audit-log seals into the hash chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// Kind of event that started the send attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TriggerKind {
    Batch,
    Resend,
}

/// Result of the send attempt, as mail-delivery reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Sent,
    PartiallySent,
    Deferred,
    Failed,
    Unknown,
    Skipped,
}

/// Role of a recipient in the message: To, Cc, Bcc, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecipientRole {
    Unspecified,
    To,
    Cc,
    Bcc,
    None,
}

/// The batch run, or the manual resend with who asked and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trigger {
    pub(crate) kind: TriggerKind,
    pub(crate) batch_id: String,
    pub(crate) actor: String,
    pub(crate) reason: String,
    pub(crate) request_id: String,
}

/// An address with its optional display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mailbox {
    pub(crate) name: String,
    pub(crate) address: String,
}

/// The server's reply to one recipient's `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecipientResult {
    pub(crate) address: String,
    pub(crate) role: RecipientRole,
    pub(crate) accepted: bool,
    /// SMTP reply code, 0 when none was received.
    pub(crate) reply_code: u32,
    pub(crate) reply_text: String,
}

/// Everything a caller reports about one send attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendAttempt {
    pub(crate) invoice_number: String,
    pub(crate) invoice_revision: u32,
    pub(crate) customer_code: String,
    pub(crate) trigger: Trigger,
    pub(crate) delivery_id: String,
    pub(crate) from: Mailbox,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) cc: Vec<Mailbox>,
    pub(crate) bcc: Vec<Mailbox>,
    pub(crate) subject: String,
    pub(crate) message_id: String,
    pub(crate) attachment_name: String,
    /// Size in bytes, at most `i64::MAX` because the databases store a signed 64-bit integer.
    pub(crate) attachment_size: u64,
    pub(crate) attachment_sha256: String,
    pub(crate) recipients: Vec<RecipientResult>,
    pub(crate) server_reply: String,
    pub(crate) outcome: Outcome,
    pub(crate) detail: String,
    pub(crate) trace_id: String,
    pub(crate) destination: String,
}

/// A sealed entry of the log: the attempt plus what audit-log assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Position in the chain, starting at 1.
    pub(crate) sequence: u64,
    pub(crate) id: Uuid,
    /// Millisecond precision, so it survives the RFC 3339 text form unchanged.
    pub(crate) at: DateTime<Utc>,
    pub(crate) attempt: SendAttempt,
    /// `entry_hash` of the previous entry, or 64 zeros for the first.
    pub(crate) prev_hash: String,
    pub(crate) entry_hash: String,
}

impl TriggerKind {
    /// Returns the name stored in the database and hashed into `entry_hash`. Changing it makes
    /// VerifyLog reject every stored entry that uses it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Batch => "batch",
            TriggerKind::Resend => "resend",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<TriggerKind> {
        [TriggerKind::Batch, TriggerKind::Resend]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Sent,
        Outcome::PartiallySent,
        Outcome::Deferred,
        Outcome::Failed,
        Outcome::Unknown,
        Outcome::Skipped,
    ];

    /// Returns the name stored in the database and hashed into `entry_hash`. Changing it makes
    /// VerifyLog reject every stored entry that uses it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::PartiallySent => "partially_sent",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
            Outcome::Skipped => "skipped",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Outcome> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }
}

impl RecipientRole {
    /// Returns the name stored in the database and hashed into `entry_hash`. Changing it makes
    /// VerifyLog reject every stored entry that uses it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecipientRole::Unspecified => "unspecified",
            RecipientRole::To => "to",
            RecipientRole::Cc => "cc",
            RecipientRole::Bcc => "bcc",
            RecipientRole::None => "none",
        }
    }
}

impl SendAttempt {
    /// Checks the fields that proto types cannot enforce. Field paths are those of
    /// `AppendEntryRequest`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.invoice_number.trim().is_empty() {
            return Err(Error::invalid(
                "entry.invoice_number",
                "missing: set the number of the invoice that was sent",
            ));
        }
        if self.trigger.kind == TriggerKind::Batch && self.trigger.batch_id.trim().is_empty() {
            return Err(Error::invalid(
                "entry.trigger.batch_id",
                "missing: a batch trigger must name the batch that sent the invoice",
            ));
        }
        if i64::try_from(self.attachment_size).is_err() {
            return Err(Error::invalid(
                "entry.attachment_size",
                format!(
                    "{} is too large: at most {} bytes",
                    self.attachment_size,
                    i64::MAX
                ),
            ));
        }
        Ok(())
    }

    /// Lists every To, Cc and Bcc mailbox with its role, the set that the recipient filter
    /// matches.
    pub(crate) fn addressed_mailboxes(&self) -> impl Iterator<Item = (&Mailbox, RecipientRole)> {
        let to = self.to.iter().map(|mailbox| (mailbox, RecipientRole::To));
        let cc = self.cc.iter().map(|mailbox| (mailbox, RecipientRole::Cc));
        let bcc = self.bcc.iter().map(|mailbox| (mailbox, RecipientRole::Bcc));
        to.chain(cc).chain(bcc)
    }
}

/// Normalizes an address for the case-insensitive recipient filter.
pub(crate) fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Formats `at` as RFC 3339 UTC with milliseconds, such as `2026-12-04T02:00:00.123Z`.
pub(crate) fn format_at(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Returns the current time cut to whole milliseconds.
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
