//! The hash chain: the canonical serialization that `entry_hash` covers, and the check that
//! `VerifyLog` runs over the stored entries.
//!
//! `entry_hash` is the lowercase hex SHA-256 of these bytes (format version 1):
//!
//! ```text
//! invoicer.audit_log.entry.v1\n
//! <name>:<length>:<value>\n      one record per field, in the order below
//! ```
//!
//! `<length>` is the byte length of the UTF-8 `<value>` in decimal, so a value may contain any
//! character, `:` and newlines included, without making two entries serialize alike. Numbers
//! are decimal, booleans `true`/`false`, enums their database names (`batch`, `sent`, `cc`, ...),
//! `id` the lowercase hyphenated UUID and `at` RFC 3339 UTC with milliseconds. A list writes
//! `<list>.count` first, then the fields of item `i` as `<list>.<i>.<field>`.
//!
//! The fields, in order:
//!
//! - `sequence`, `id`, `at`, `invoice_number`, `invoice_revision`, `customer_code`
//! - `trigger.kind`, `trigger.batch_id`, `trigger.actor`, `trigger.reason`, `trigger.request_id`
//! - `delivery_id`, `from.name`, `from.address`
//! - the lists `to`, `cc` and `bcc`, each item with `name` and `address`
//! - `subject`, `message_id`, `attachment_name`, `attachment_size`, `attachment_sha256`
//! - the list `recipients`, each item with `address`, `role`, `accepted`, `reply_code`,
//!   `reply_text`
//! - `server_reply`, `outcome`, `detail`, `trace_id`, `destination`, `prev_hash`
//!
//! NOTE: the chain shows a changed, inserted or removed entry, but not a removal of the newest
//! entries, nor a rewrite that recomputes every later hash; keeping the latest `entry_hash`
//! outside the database would catch both.

use sha2::{Digest, Sha256};

use crate::entry::{Entry, Mailbox, RecipientResult, format_at};

/// `prev_hash` of the first entry.
pub(crate) const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

const FORMAT_HEADER: &str = "invoicer.audit_log.entry.v1\n";

/// Computes `entry_hash` from every field of `entry` except `entry_hash` itself.
pub(crate) fn entry_hash(entry: &Entry) -> String {
    hex::encode(Sha256::digest(canonical_bytes(entry)))
}

/// Serializes `entry` into the bytes that `entry_hash` covers, as the module documentation
/// describes them.
pub(crate) fn canonical_bytes(entry: &Entry) -> Vec<u8> {
    let attempt = &entry.attempt;
    let trigger = &attempt.trigger;
    let mut out = Canonical {
        bytes: FORMAT_HEADER.as_bytes().to_vec(),
    };

    out.field("sequence", &entry.sequence.to_string());
    out.field("id", &entry.id.hyphenated().to_string());
    out.field("at", &format_at(entry.at));
    out.field("invoice_number", &attempt.invoice_number);
    out.field("invoice_revision", &attempt.invoice_revision.to_string());
    out.field("customer_code", &attempt.customer_code);
    out.field("trigger.kind", trigger.kind.as_str());
    out.field("trigger.batch_id", &trigger.batch_id);
    out.field("trigger.actor", &trigger.actor);
    out.field("trigger.reason", &trigger.reason);
    out.field("trigger.request_id", &trigger.request_id);
    out.field("delivery_id", &attempt.delivery_id);
    out.mailbox("from", &attempt.from);
    out.mailboxes("to", &attempt.to);
    out.mailboxes("cc", &attempt.cc);
    out.mailboxes("bcc", &attempt.bcc);
    out.field("subject", &attempt.subject);
    out.field("message_id", &attempt.message_id);
    out.field("attachment_name", &attempt.attachment_name);
    out.field("attachment_size", &attempt.attachment_size.to_string());
    out.field("attachment_sha256", &attempt.attachment_sha256);
    out.recipient_results(&attempt.recipients);
    out.field("server_reply", &attempt.server_reply);
    out.field("outcome", attempt.outcome.as_str());
    out.field("detail", &attempt.detail);
    out.field("trace_id", &attempt.trace_id);
    out.field("destination", &attempt.destination);
    out.field("prev_hash", &entry.prev_hash);
    out.bytes
}

struct Canonical {
    bytes: Vec<u8>,
}

impl Canonical {
    fn field(&mut self, name: &str, value: &str) {
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(b':');
        self.bytes
            .extend_from_slice(value.len().to_string().as_bytes());
        self.bytes.push(b':');
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(b'\n');
    }

    fn mailbox(&mut self, prefix: &str, mailbox: &Mailbox) {
        self.field(&format!("{prefix}.name"), &mailbox.name);
        self.field(&format!("{prefix}.address"), &mailbox.address);
    }

    fn mailboxes(&mut self, list: &str, mailboxes: &[Mailbox]) {
        self.field(&format!("{list}.count"), &mailboxes.len().to_string());
        for (index, mailbox) in mailboxes.iter().enumerate() {
            self.mailbox(&format!("{list}.{index}"), mailbox);
        }
    }

    fn recipient_results(&mut self, results: &[RecipientResult]) {
        self.field("recipients.count", &results.len().to_string());
        for (index, result) in results.iter().enumerate() {
            let prefix = format!("recipients.{index}");
            self.field(&format!("{prefix}.address"), &result.address);
            self.field(&format!("{prefix}.role"), result.role.as_str());
            self.field(
                &format!("{prefix}.accepted"),
                if result.accepted { "true" } else { "false" },
            );
            self.field(
                &format!("{prefix}.reply_code"),
                &result.reply_code.to_string(),
            );
            self.field(&format!("{prefix}.reply_text"), &result.reply_text);
        }
    }
}

/// Result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verification {
    /// Entries that passed before the first break, or all of them when the chain is intact.
    pub(crate) entries_checked: u64,
    /// The first sequence where the chain breaks.
    pub(crate) first_bad_sequence: Option<u64>,
    pub(crate) message: String,
}

/// Location and reason of a break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainBreak {
    pub(crate) sequence: u64,
    pub(crate) reason: String,
}

/// Walks the entries in sequence order and stops at the first break.
pub(crate) struct ChainVerifier {
    next_sequence: u64,
    prev_hash: String,
    checked: u64,
}

impl ChainVerifier {
    pub(crate) fn new() -> ChainVerifier {
        ChainVerifier {
            next_sequence: 1,
            prev_hash: GENESIS_PREV_HASH.to_owned(),
            checked: 0,
        }
    }

    /// The sequence the next entry must have.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub(crate) fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks the entry that follows the last one checked.
    pub(crate) fn check(&mut self, entry: &Entry) -> Result<(), ChainBreak> {
        let expected = self.next_sequence;
        if entry.sequence != expected {
            return Err(ChainBreak {
                sequence: expected,
                reason: format!(
                    "entry {expected} is missing (the next stored is {})",
                    entry.sequence
                ),
            });
        }
        if entry.prev_hash != self.prev_hash {
            let source = match expected {
                1 => "the first entry needs 64 zeros".to_owned(),
                _ => format!("entry {} has entry_hash {}", expected - 1, self.prev_hash),
            };
            return Err(ChainBreak {
                sequence: expected,
                reason: format!(
                    "entry {expected} has prev_hash {} but {source}",
                    entry.prev_hash
                ),
            });
        }
        let recomputed = entry_hash(entry);
        if recomputed != entry.entry_hash {
            return Err(ChainBreak {
                sequence: expected,
                reason: format!(
                    "entry {expected} was changed: its fields hash to {recomputed}, not to the stored {}",
                    entry.entry_hash
                ),
            });
        }
        self.prev_hash = recomputed;
        self.next_sequence += 1;
        self.checked += 1;
        Ok(())
    }

    /// Builds the verdict for a chain that breaks at `chain_break`.
    pub(crate) fn broken(&self, chain_break: ChainBreak) -> Verification {
        Verification {
            entries_checked: self.checked,
            first_bad_sequence: Some(chain_break.sequence),
            message: chain_break.reason,
        }
    }

    /// Builds the verdict after every stored entry passed.
    pub(crate) fn intact(&self) -> Verification {
        Verification {
            entries_checked: self.checked,
            first_bad_sequence: None,
            message: format!("hash chain intact: {} entries checked", self.checked),
        }
    }
}

#[cfg(test)]
mod tests;
