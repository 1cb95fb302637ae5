//! Tests of the canonical serialization and the chain check.

use chrono::DateTime;
use uuid::Uuid;

use super::*;
use crate::entry::{Outcome, RecipientRole, SendAttempt, Trigger, TriggerKind};

fn mailbox(name: &str, address: &str) -> Mailbox {
    Mailbox {
        name: name.to_owned(),
        address: address.to_owned(),
    }
}

fn sample_entry() -> Entry {
    let attempt = SendAttempt {
        invoice_number: "INV-1001".to_owned(),
        invoice_revision: 2,
        customer_code: "ALFKI".to_owned(),
        trigger: Trigger {
            kind: TriggerKind::Batch,
            batch_id: "batch-2026-12-04".to_owned(),
            actor: String::new(),
            reason: String::new(),
            request_id: String::new(),
        },
        delivery_id: "delivery-7".to_owned(),
        from: mailbox("Billing", "billing@company.example"),
        to: vec![mailbox("Maria Anders", "maria@alfki.example")],
        cc: vec![mailbox("", "accounts@alfki.example")],
        bcc: vec![mailbox("", "archive@company.example")],
        subject: "Invoice INV-1001".to_owned(),
        message_id: "<inv-1001.2@company.example>".to_owned(),
        attachment_name: "INV-1001.pdf".to_owned(),
        attachment_size: 48_213,
        attachment_sha256: "ab".repeat(32),
        recipients: vec![RecipientResult {
            address: "maria@alfki.example".to_owned(),
            role: RecipientRole::To,
            accepted: true,
            reply_code: 250,
            reply_text: "2.1.5 ok".to_owned(),
        }],
        server_reply: "250 2.0.0 queued as 4F2A".to_owned(),
        outcome: Outcome::Sent,
        detail: String::new(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        destination: "smtp://127.0.0.1:2525".to_owned(),
    };
    let mut entry = Entry {
        sequence: 1,
        id: Uuid::parse_str("0193a5b2-7c4e-7d10-8a2b-3c4d5e6f7a8b").unwrap(),
        at: DateTime::from_timestamp_millis(1_796_342_400_123).unwrap(),
        attempt,
        prev_hash: GENESIS_PREV_HASH.to_owned(),
        entry_hash: String::new(),
    };
    entry.entry_hash = entry_hash(&entry);
    entry
}

/// A named change to one field of an entry.
type FieldChange = (&'static str, fn(&mut Entry));

/// Lists one change per hashed field, each to be applied to a fresh sample entry.
fn field_changes() -> Vec<FieldChange> {
    vec![
        ("sequence", |e| e.sequence = 2),
        ("id", |e| e.id = Uuid::nil()),
        ("at", |e| e.at += chrono::Duration::milliseconds(1)),
        ("invoice_number", |e| e.attempt.invoice_number.push('0')),
        ("invoice_revision", |e| e.attempt.invoice_revision = 3),
        ("customer_code", |e| {
            e.attempt.customer_code = "ANATR".to_owned()
        }),
        ("trigger.kind", |e| {
            e.attempt.trigger.kind = TriggerKind::Resend
        }),
        ("trigger.batch_id", |e| e.attempt.trigger.batch_id.push('x')),
        ("trigger.actor", |e| {
            e.attempt.trigger.actor = "clerk".to_owned()
        }),
        ("trigger.reason", |e| {
            e.attempt.trigger.reason = "lost".to_owned()
        }),
        ("trigger.request_id", |e| {
            e.attempt.trigger.request_id = "r1".to_owned()
        }),
        ("delivery_id", |e| e.attempt.delivery_id.push('8')),
        ("from.name", |e| e.attempt.from.name.clear()),
        ("from.address", |e| {
            e.attempt.from.address = "ar@company.example".to_owned()
        }),
        ("to.name", |e| e.attempt.to[0].name = "Maria".to_owned()),
        ("to.address", |e| {
            e.attempt.to[0].address = "MARIA@alfki.example".to_owned()
        }),
        ("to.count", |e| {
            e.attempt.to.push(mailbox("", "x@alfki.example"))
        }),
        ("cc.address", |e| {
            e.attempt.cc[0].address = "ap@alfki.example".to_owned()
        }),
        ("cc.count", |e| e.attempt.cc.clear()),
        ("bcc.name", |e| e.attempt.bcc[0].name = "Archive".to_owned()),
        ("bcc.count", |e| e.attempt.bcc.clear()),
        ("subject", |e| e.attempt.subject.push('!')),
        ("message_id", |e| {
            e.attempt.message_id = "<other@company.example>".to_owned()
        }),
        ("attachment_name", |e| {
            e.attempt.attachment_name = "other.pdf".to_owned()
        }),
        ("attachment_size", |e| e.attempt.attachment_size += 1),
        ("attachment_sha256", |e| {
            e.attempt.attachment_sha256 = "cd".repeat(32)
        }),
        ("recipients.address", |e| {
            e.attempt.recipients[0].address.push('m')
        }),
        ("recipients.role", |e| {
            e.attempt.recipients[0].role = RecipientRole::Cc
        }),
        ("recipients.accepted", |e| {
            e.attempt.recipients[0].accepted = false
        }),
        ("recipients.reply_code", |e| {
            e.attempt.recipients[0].reply_code = 550
        }),
        ("recipients.reply_text", |e| {
            e.attempt.recipients[0].reply_text.clear()
        }),
        ("recipients.count", |e| e.attempt.recipients.clear()),
        ("server_reply", |e| e.attempt.server_reply.clear()),
        ("outcome", |e| e.attempt.outcome = Outcome::PartiallySent),
        ("detail", |e| e.attempt.detail = "mailbox full".to_owned()),
        ("trace_id", |e| e.attempt.trace_id.clear()),
        ("destination", |e| {
            e.attempt.destination = "outbox".to_owned()
        }),
        ("prev_hash", |e| e.prev_hash = "1".repeat(64)),
    ]
}

#[test]
fn hash_is_stable_across_calls() {
    let entry = sample_entry();
    assert_eq!(entry_hash(&entry), entry_hash(&entry.clone()));
}

#[test]
fn hash_of_sample_entry_is_pinned() {
    // Computed separately from the format in the module documentation. A change here breaks
    // VerifyLog on every stored log: add a new format version instead.
    assert_eq!(
        sample_entry().entry_hash,
        "24bcf5719e1a6e5bf00bb6ac1e4385ce9d78b7d75ec5120f85311d4126b945c9"
    );
}

#[test]
fn hash_ignores_stored_entry_hash() {
    let mut entry = sample_entry();
    let before = entry_hash(&entry);
    entry.entry_hash = "f".repeat(64);
    assert_eq!(entry_hash(&entry), before);
}

#[test]
fn hash_changes_with_every_field() {
    let base = sample_entry().entry_hash;
    let mut seen = vec![base.clone()];
    for (field, change) in field_changes() {
        let mut entry = sample_entry();
        change(&mut entry);
        let changed = entry_hash(&entry);
        assert_ne!(changed, base, "changing {field} left the hash unchanged");
        assert!(
            !seen.contains(&changed),
            "changing {field} gave the hash of another change"
        );
        seen.push(changed);
    }
}

#[test]
fn hash_separates_adjacent_fields() {
    let mut first = sample_entry();
    first.attempt.subject = "a:1:b".to_owned();
    first.attempt.message_id = String::new();
    let mut second = sample_entry();
    second.attempt.subject = "a".to_owned();
    second.attempt.message_id = "b".to_owned();
    assert_ne!(entry_hash(&first), entry_hash(&second));
}

#[test]
fn hash_separates_lists() {
    let mut in_to = sample_entry();
    in_to.attempt.to.push(mailbox("", "x@alfki.example"));
    let mut in_cc = sample_entry();
    in_cc.attempt.cc.insert(0, mailbox("", "x@alfki.example"));
    assert_ne!(entry_hash(&in_to), entry_hash(&in_cc));
}

#[test]
fn canonical_bytes_start_with_format_header() {
    let bytes = canonical_bytes(&sample_entry());
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.starts_with("invoicer.audit_log.entry.v1\nsequence:1:1\nid:36:"),
        "{text}"
    );
    assert!(
        text.contains("\nat:24:2026-12-04T00:00:00.123Z\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("prev_hash:64:{GENESIS_PREV_HASH}\n")),
        "{text}"
    );
}

/// Builds a chain of `count` valid entries.
fn chain(count: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut prev_hash = GENESIS_PREV_HASH.to_owned();
    for sequence in 1..=count {
        let mut entry = sample_entry();
        entry.sequence = sequence;
        entry.id = Uuid::now_v7();
        entry.prev_hash = prev_hash;
        entry.entry_hash = entry_hash(&entry);
        prev_hash = entry.entry_hash.clone();
        entries.push(entry);
    }
    entries
}

fn verify(entries: &[Entry]) -> Verification {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        if let Err(chain_break) = verifier.check(entry) {
            return verifier.broken(chain_break);
        }
    }
    verifier.intact()
}

#[test]
fn verifier_accepts_intact_chain() {
    let verification = verify(&chain(5));
    assert_eq!(verification.first_bad_sequence, None);
    assert_eq!(verification.entries_checked, 5);
}

#[test]
fn verifier_accepts_empty_log() {
    let verification = verify(&[]);
    assert_eq!(verification.first_bad_sequence, None);
    assert_eq!(verification.entries_checked, 0);
}

#[test]
fn verifier_finds_changed_field() {
    let mut entries = chain(5);
    entries[2].attempt.subject = "changed".to_owned();
    let verification = verify(&entries);
    assert_eq!(verification.first_bad_sequence, Some(3));
    assert_eq!(verification.entries_checked, 2);
    assert!(
        verification.message.contains("entry 3 was changed"),
        "{}",
        verification.message
    );
}

#[test]
fn verifier_finds_missing_entry() {
    let mut entries = chain(5);
    entries.remove(1);
    let verification = verify(&entries);
    assert_eq!(verification.first_bad_sequence, Some(2));
    assert!(
        verification.message.contains("entry 2 is missing"),
        "{}",
        verification.message
    );
}

#[test]
fn verifier_finds_rehashed_entry_with_wrong_link() {
    let mut entries = chain(4);
    entries[3].prev_hash = "e".repeat(64);
    entries[3].entry_hash = entry_hash(&entries[3]);
    let verification = verify(&entries);
    assert_eq!(verification.first_bad_sequence, Some(4));
    assert!(
        verification.message.contains("prev_hash"),
        "{}",
        verification.message
    );
}

#[test]
fn verifier_rejects_first_entry_without_zero_prev_hash() {
    let mut entries = chain(1);
    entries[0].prev_hash = "a".repeat(64);
    entries[0].entry_hash = entry_hash(&entries[0]);
    let verification = verify(&entries);
    assert_eq!(verification.first_bad_sequence, Some(1));
    assert!(
        verification.message.contains("64 zeros"),
        "{}",
        verification.message
    );
}
