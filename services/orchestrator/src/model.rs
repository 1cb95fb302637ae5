//! The orchestrator's own types: deliveries, their states, batches and frozen documents.

use chrono::{DateTime, NaiveDate, Utc};
use invoicer_domain::email::Mailbox;
use serde::{Deserialize, Serialize};

/// A delivery's state: pending -> rendered -> submitting -> sent, or one of the end states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeliveryState {
    Pending,
    Rendered,
    Submitting,
    Sent,
    Deferred,
    Failed,
    Skipped,
    Unknown,
    /// Dry runs only; never stored.
    Planned,
}

impl DeliveryState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Rendered => "rendered",
            DeliveryState::Submitting => "submitting",
            DeliveryState::Sent => "sent",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Unknown => "unknown",
            DeliveryState::Planned => "planned",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Rendered,
            DeliveryState::Submitting,
            DeliveryState::Sent,
            DeliveryState::Deferred,
            DeliveryState::Failed,
            DeliveryState::Skipped,
            DeliveryState::Unknown,
            DeliveryState::Planned,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }

    /// Returns whether a batch leaves an invoice in this state alone: it went out (or may have), or it
    /// failed for good. Skipped and deferred deliveries are taken up again.
    pub(crate) fn is_settled(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Unknown
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Batch,
    Resend,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Purpose::Batch => "batch",
            Purpose::Resend => "resend",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Purpose> {
        match value {
            "batch" => Some(Purpose::Batch),
            "resend" => Some(Purpose::Resend),
            _ => None,
        }
    }
}

/// The contact role a recipient came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    To,
    Cc,
    Bcc,
}

/// The server's reply for one recipient of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecipientOutcome {
    pub address: String,
    pub role: Role,
    pub accepted: bool,
    pub reply_code: u32,
    pub reply_text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    pub id: String,
    pub key: String,
    pub invoice_number: String,
    pub invoice_revision: u32,
    pub customer_code: String,
    pub purpose: Purpose,
    pub request_id: Option<String>,
    pub state: DeliveryState,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub attachment_name: String,
    pub pdf_sha256: String,
    pub message_id: String,
    /// Reason the invoice was not sent, empty when it was.
    pub reason: String,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub batch_id: Option<String>,
    pub recipients: Vec<RecipientOutcome>,
    pub server_reply: String,
    pub destination: String,
    pub actor: String,
    pub resend_reason: String,
    pub trace_id: String,
    /// Whether the outcome of the last attempt is in the email log.
    pub logged: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the current run of retries began: the first deferral since the delivery was last
    /// settled. The retry lifetime counts from here.
    pub retry_since: Option<DateTime<Utc>>,
    /// Lowercased addresses that accepted an earlier attempt of this delivery; a retry sends
    /// only to the others.
    pub accepted: Vec<String>,
    /// The revision and addresses the resend request named, compared with a repeat of its
    /// request id. Batch deliveries, and resends stored before `requested_json` existed, have
    /// none.
    pub requested: Option<RequestedResend>,
}

/// The revision and override addresses a resend request named: revision 0 for the latest, and
/// no addresses for the customer's contacts. The addresses are kept without display names,
/// lowercased, sorted and without duplicates, so that a repeat that lists them in another
/// order or case is the same request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RequestedResend {
    pub revision: u32,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
}

impl RequestedResend {
    pub(crate) fn new(revision: u32, to: &[Mailbox], cc: &[Mailbox], bcc: &[Mailbox]) -> Self {
        let normalized = |mailboxes: &[Mailbox]| {
            let mut addresses: Vec<String> = mailboxes
                .iter()
                .map(|mailbox| mailbox.address.to_lowercase())
                .collect();
            addresses.sort();
            addresses.dedup();
            addresses
        };
        RequestedResend {
            revision,
            to: normalized(to),
            cc: normalized(cc),
            bcc: normalized(bcc),
        }
    }
}

/// mail-delivery rejects a delivery key (sent as the `X-Invoicer-Delivery` header) longer than
/// this many characters.
const MAX_DELIVERY_KEY_CHARS: usize = 200;

impl Delivery {
    /// The idempotency key of an invoice revision's per-invoice batch delivery: invoice,
    /// revision, `default`, purpose. The segment `default` named the single company-wide
    /// notifier before customers had their own. It stays whichever notifier applies, so rows
    /// written back then still count as the invoice's per-invoice delivery. Switching a
    /// customer to its own notifier therefore never makes a sent invoice eligible again.
    pub(crate) fn batch_key(invoice_number: &str, revision: u32) -> String {
        format!("{invoice_number}/r{revision}/default/batch")
    }

    /// The idempotency key of the batch delivery to one To recipient, when the notifier sends
    /// one message per To recipient: `to:` and the address lowercased, with `%`, spaces and
    /// non-ASCII bytes percent-encoded. Where that key would be longer than mail-delivery
    /// accepts, the address is replaced by its SHA-256 digest.
    pub(crate) fn batch_to_key(invoice_number: &str, revision: u32, address: &str) -> String {
        let address = address.to_lowercase();
        let key = format!(
            "{invoice_number}/r{revision}/to:{}/batch",
            percent_encoded(&address)
        );
        if key.chars().count() <= MAX_DELIVERY_KEY_CHARS {
            return key;
        }
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(address.as_bytes()));
        format!("{invoice_number}/r{revision}/to-sha256:{digest}/batch")
    }

    /// Returns whether this is its invoice revision's per-invoice batch delivery.
    pub(crate) fn is_per_invoice_batch(&self) -> bool {
        self.purpose == Purpose::Batch
            && self.key == Delivery::batch_key(&self.invoice_number, self.invoice_revision)
    }

    pub(crate) fn resend_key(invoice_number: &str, revision: u32, request_id: &str) -> String {
        format!("{invoice_number}/r{revision}/manual/resend:{request_id}")
    }

    pub(crate) fn new(
        key: String,
        invoice_number: &str,
        revision: u32,
        customer_code: &str,
        purpose: Purpose,
    ) -> Delivery {
        let now = Utc::now();
        Delivery {
            id: uuid::Uuid::now_v7().to_string(),
            key,
            invoice_number: invoice_number.to_owned(),
            invoice_revision: revision,
            customer_code: customer_code.to_owned(),
            purpose,
            request_id: None,
            state: DeliveryState::Pending,
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: String::new(),
            attachment_name: String::new(),
            pdf_sha256: String::new(),
            message_id: String::new(),
            reason: String::new(),
            attempts: 0,
            next_attempt_at: None,
            batch_id: None,
            recipients: Vec::new(),
            server_reply: String::new(),
            destination: String::new(),
            actor: String::new(),
            resend_reason: String::new(),
            trace_id: String::new(),
            logged: false,
            created_at: now,
            updated_at: now,
            retry_since: None,
            accepted: Vec::new(),
            requested: None,
        }
    }
}

impl Delivery {
    /// Records one attempt's per-recipient results: an address's newest result replaces its
    /// older one, results of addresses not in this attempt stay, and accepting addresses join
    /// `accepted`.
    pub(crate) fn merge_recipients(&mut self, outcomes: Vec<RecipientOutcome>) {
        for outcome in outcomes {
            let address = outcome.address.to_lowercase();
            if outcome.accepted && !self.accepted.contains(&address) {
                self.accepted.push(address.clone());
            }
            match self
                .recipients
                .iter_mut()
                .find(|known| known.address.to_lowercase() == address)
            {
                Some(known) => *known = outcome,
                None => self.recipients.push(outcome),
            }
        }
    }

    /// Returns the addresses the next attempt sends to when earlier attempts settled some
    /// recipients (accepted, or rejected with a 5xx reply); `None` when none is settled, so
    /// the attempt goes to every recipient.
    pub(crate) fn remaining_recipients(&self) -> Option<Vec<String>> {
        let settled: Vec<String> = self
            .recipients
            .iter()
            .filter(|r| r.accepted || (500..600).contains(&r.reply_code))
            .map(|r| r.address.to_lowercase())
            .chain(self.accepted.iter().cloned())
            .collect();
        if settled.is_empty() {
            return None;
        }
        let remaining = self
            .to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|m| m.address.to_lowercase())
            .filter(|address| !settled.contains(address))
            .collect();
        Some(remaining)
    }
}

/// Keeps printable ASCII except `%`, and writes every other byte as `%XX`.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchStatus {
    Running,
    Completed,
    Failed,
    Planned,
}

impl BatchStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Running => "running",
            BatchStatus::Completed => "completed",
            BatchStatus::Failed => "failed",
            BatchStatus::Planned => "planned",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<BatchStatus> {
        match value {
            "running" => Some(BatchStatus::Running),
            "completed" => Some(BatchStatus::Completed),
            "failed" => Some(BatchStatus::Failed),
            "planned" => Some(BatchStatus::Planned),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchTrigger {
    Schedule,
    Manual,
}

impl BatchTrigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BatchTrigger::Schedule => "schedule",
            BatchTrigger::Manual => "manual",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<BatchTrigger> {
        match value {
            "schedule" => Some(BatchTrigger::Schedule),
            "manual" => Some(BatchTrigger::Manual),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    pub id: String,
    pub business_date: NaiveDate,
    pub trigger: BatchTrigger,
    pub status: BatchStatus,
    pub cutoff: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// One invoice of a batch: its delivery and how it ended in that batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchItem {
    pub delivery: Delivery,
    pub state: DeliveryState,
    pub reason: String,
}

/// Per-state counts; `eligible` is their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BatchCounts {
    pub eligible: u32,
    pub sent: u32,
    pub skipped: u32,
    pub failed: u32,
    pub deferred: u32,
    pub unknown: u32,
    pub planned: u32,
}

impl BatchCounts {
    pub(crate) fn from_states(states: impl IntoIterator<Item = DeliveryState>) -> BatchCounts {
        let mut counts = BatchCounts::default();
        for state in states {
            counts.add(state);
        }
        counts
    }

    pub(crate) fn add(&mut self, state: DeliveryState) {
        self.add_many(state, 1);
    }

    /// Counts `count` deliveries in `state`.
    pub(crate) fn add_many(&mut self, state: DeliveryState, count: u32) {
        self.eligible += count;
        let field = match state {
            DeliveryState::Sent => &mut self.sent,
            DeliveryState::Skipped => &mut self.skipped,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Deferred => &mut self.deferred,
            DeliveryState::Planned => &mut self.planned,
            // A delivery still in flight when the counts are read is neither sent nor known
            // to have failed.
            DeliveryState::Unknown
            | DeliveryState::Pending
            | DeliveryState::Rendered
            | DeliveryState::Submitting => &mut self.unknown,
        };
        *field += count;
    }
}

/// The frozen PDF of one invoice revision: every send of that revision attaches these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub invoice_number: String,
    pub invoice_revision: u32,
    pub sha256: String,
    pub file_name: String,
    pub page_count: u32,
    pub content: Vec<u8>,
    /// The facts the revision's email states, as the invoice had them when the PDF was rendered.
    /// `None` for a document frozen before these were kept.
    /// Boxed, because a document moves through the store's write enums by value.
    pub facts: Option<Box<DocumentFacts>>,
}

/// The invoice fields that an email states besides the customer's, kept with the frozen PDF
/// of a revision. A resend of that revision after a newer one was imported writes its email
/// from these, so the email's total and dates agree with the attached PDF. A field added
/// later needs `#[serde(default)]`, because rows stored before it lack it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocumentFacts {
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub issued_date: NaiveDate,
    pub due_date: String,
    pub currency: String,
    pub total: String,
    pub po_number: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_to_eligible() {
        let counts = BatchCounts::from_states([
            DeliveryState::Sent,
            DeliveryState::Sent,
            DeliveryState::Skipped,
            DeliveryState::Failed,
            DeliveryState::Deferred,
            DeliveryState::Unknown,
        ]);
        assert_eq!(counts.eligible, 6);
        assert_eq!(counts.sent, 2);
        assert_eq!(
            counts.sent + counts.skipped + counts.failed + counts.deferred + counts.unknown,
            counts.eligible
        );
    }

    #[test]
    fn state_names_round_trip() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Sent,
            DeliveryState::Unknown,
        ] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
    }

    fn outcome(address: &str, accepted: bool, reply_code: u32) -> RecipientOutcome {
        RecipientOutcome {
            address: address.to_owned(),
            role: Role::To,
            accepted,
            reply_code,
            reply_text: String::new(),
        }
    }

    fn delivery_to(addresses: &[&str]) -> Delivery {
        let mut delivery = Delivery::new(
            Delivery::batch_key("INV-1", 1),
            "INV-1",
            1,
            "C-1",
            Purpose::Batch,
        );
        delivery.to = addresses
            .iter()
            .map(|address| Mailbox {
                name: None,
                address: (*address).to_owned(),
            })
            .collect();
        delivery
    }

    #[test]
    fn first_attempt_goes_to_everyone() {
        let delivery = delivery_to(&["a@x.example", "b@x.example"]);
        assert_eq!(delivery.remaining_recipients(), None);
    }

    #[test]
    fn retry_skips_accepted_and_rejected() {
        let mut delivery = delivery_to(&["A@x.example", "b@x.example", "c@x.example"]);
        delivery.merge_recipients(vec![
            outcome("A@x.example", true, 250),
            outcome("b@x.example", false, 451),
            outcome("c@x.example", false, 550),
        ]);
        assert_eq!(delivery.accepted, ["a@x.example"]);
        assert_eq!(
            delivery.remaining_recipients(),
            Some(vec!["b@x.example".to_owned()])
        );

        // The retry reaches b; a's result from the first attempt stays.
        delivery.merge_recipients(vec![outcome("b@x.example", true, 250)]);
        assert_eq!(delivery.accepted, ["a@x.example", "b@x.example"]);
        assert_eq!(delivery.recipients.len(), 3);
        assert_eq!(delivery.remaining_recipients(), Some(Vec::new()));
    }

    #[test]
    fn batch_key_contains_revision() {
        assert_eq!(Delivery::batch_key("INV-1", 2), "INV-1/r2/default/batch");
    }

    #[test]
    fn batch_to_key_lowercases_address() {
        assert_eq!(
            Delivery::batch_to_key("INV-1", 2, "Anna@Buyer.example"),
            "INV-1/r2/to:anna@buyer.example/batch"
        );
    }

    #[test]
    fn batch_to_key_differs_per_address() {
        assert_ne!(
            Delivery::batch_to_key("INV-1", 1, "a@x.example"),
            Delivery::batch_to_key("INV-1", 1, "b@x.example")
        );
    }

    #[test]
    fn batch_to_key_differs_from_per_invoice_key() {
        let per_invoice = Delivery::batch_key("INV-1", 1);
        assert_ne!(Delivery::batch_to_key("INV-1", 1, "default"), per_invoice);
        let to = Delivery::new(
            Delivery::batch_to_key("INV-1", 1, "a@x.example"),
            "INV-1",
            1,
            "C-1",
            Purpose::Batch,
        );
        assert!(!to.is_per_invoice_batch());
        let invoice = Delivery::new(per_invoice, "INV-1", 1, "C-1", Purpose::Batch);
        assert!(invoice.is_per_invoice_batch());
    }

    #[test]
    fn batch_to_key_stays_printable_ascii() {
        let key = Delivery::batch_to_key("INV-1", 1, "jörg%x@bücher.example");
        assert_eq!(key, "INV-1/r1/to:j%C3%B6rg%25x@b%C3%BCcher.example/batch");
        assert!(key.chars().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn batch_to_key_hashes_long_address() {
        let address = format!("{}@x.example", "a".repeat(220));
        let key = Delivery::batch_to_key("INV-1", 1, &address);
        assert!(key.starts_with("INV-1/r1/to-sha256:"), "{key}");
        assert!(key.chars().count() <= MAX_DELIVERY_KEY_CHARS);
        assert_eq!(
            key,
            Delivery::batch_to_key("INV-1", 1, &address.to_uppercase())
        );
    }
}
