//! Limits on the AuditLogService requests, with every bad field named in one
//! INVALID_ARGUMENT status. The entry's meaning (outcome, trigger, instants) is checked when
//! it is converted.

use invoicer_kit::validate::{MAX_SUBJECT_BYTES, Violations, indexed};
use invoicer_proto::audit_log::v1 as pb;
use invoicer_proto::types::v1 as types;
use tonic::Status;

const MAX_ID_BYTES: usize = 1024;
const MAX_ADDRESS_BYTES: usize = 254;
const MAX_NAME_BYTES: usize = 256;
const MAX_REASON_BYTES: usize = 500;
/// To, Cc and Bcc of one entry together, as mail-delivery accepts them for one message.
const MAX_RECIPIENTS: usize = 100;
const MAX_REPLY_BYTES: usize = 4096;
const MAX_DETAIL_BYTES: usize = 16 << 10;
const MAX_PAGE_TOKEN_BYTES: usize = 256;
/// The orchestrator's keys, a delivery id, an attempt number and a state, take under 60 bytes.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

pub(crate) fn append_entry(request: &pb::AppendEntryRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    if let Some(entry) = &request.entry {
        entry_fields(&mut violations, entry);
    }
    let key = &request.idempotency_key;
    if !key.is_empty() && key.trim().is_empty() {
        violations.add(
            "idempotency_key",
            "is blank; send a key with visible characters, or none for no check",
        );
    } else {
        violations.single_line("idempotency_key", key, MAX_IDEMPOTENCY_KEY_BYTES);
    }
    violations.into_result()
}

fn entry_fields(violations: &mut Violations, entry: &pb::Entry) {
    for (field, value) in [
        ("entry.invoice_number", &entry.invoice_number),
        ("entry.customer_code", &entry.customer_code),
        ("entry.delivery_id", &entry.delivery_id),
        ("entry.message_id", &entry.message_id),
        ("entry.attachment_name", &entry.attachment_name),
        ("entry.attachment_sha256", &entry.attachment_sha256),
        ("entry.at", &entry.at),
        ("entry.trace_id", &entry.trace_id),
        ("entry.destination", &entry.destination),
    ] {
        violations.single_line(field, value, MAX_ID_BYTES);
    }
    if let Some(trigger) = &entry.trigger {
        violations.single_line("entry.trigger.batch_id", &trigger.batch_id, MAX_ID_BYTES);
        violations.single_line("entry.trigger.actor", &trigger.actor, MAX_NAME_BYTES);
        violations.single_line("entry.trigger.reason", &trigger.reason, MAX_REASON_BYTES);
        violations.single_line(
            "entry.trigger.request_id",
            &trigger.request_id,
            MAX_ID_BYTES,
        );
    }
    if let Some(from) = &entry.from {
        mailbox(violations, "entry.from", from);
    }
    let recipients = entry.to.len() + entry.cc.len() + entry.bcc.len();
    if recipients > MAX_RECIPIENTS {
        violations.add(
            "entry.to",
            format!(
                "to, cc and bcc have {recipients} entries together; the maximum is {MAX_RECIPIENTS}"
            ),
        );
    }
    for (field, list) in [
        ("entry.to", &entry.to),
        ("entry.cc", &entry.cc),
        ("entry.bcc", &entry.bcc),
    ] {
        for (index, item) in list.iter().enumerate().take(MAX_RECIPIENTS + 1) {
            mailbox(violations, &indexed(field, index), item);
        }
    }
    violations.single_line("entry.subject", &entry.subject, MAX_SUBJECT_BYTES);
    violations.max_count("entry.recipients", entry.recipients.len(), MAX_RECIPIENTS);
    for (index, result) in entry.recipients.iter().enumerate().take(MAX_RECIPIENTS + 1) {
        let field = indexed("entry.recipients", index);
        violations.single_line(
            &format!("{field}.address"),
            &result.address,
            MAX_ADDRESS_BYTES,
        );
        violations.text(
            &format!("{field}.reply_text"),
            &result.reply_text,
            MAX_REPLY_BYTES,
        );
    }
    violations.text("entry.server_reply", &entry.server_reply, MAX_REPLY_BYTES);
    violations.text("entry.detail", &entry.detail, MAX_DETAIL_BYTES);
}

fn mailbox(violations: &mut Violations, field: &str, mailbox: &types::Mailbox) {
    violations.single_line(&format!("{field}.name"), &mailbox.name, MAX_NAME_BYTES);
    violations.single_line(
        &format!("{field}.address"),
        &mailbox.address,
        MAX_ADDRESS_BYTES,
    );
}

pub(crate) fn list_entries(request: &pb::ListEntriesRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    for (field, value) in [
        ("invoice_number", &request.invoice_number),
        ("customer_code", &request.customer_code),
        ("since", &request.since),
        ("until", &request.until),
        ("batch_id", &request.batch_id),
    ] {
        violations.single_line(field, value, MAX_ID_BYTES);
    }
    violations.single_line("recipient", &request.recipient, MAX_ADDRESS_BYTES);
    violations.single_line("page_token", &request.page_token, MAX_PAGE_TOKEN_BYTES);
    violations.into_result()
}

pub(crate) fn get_entry(request: &pb::GetEntryRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("id", &request.id, MAX_ID_BYTES);
    violations.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_fields(result: Result<(), Status>) -> Vec<String> {
        let status = result.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        invoicer_kit::validate::bad_request_fields(&status)
    }

    #[test]
    fn multi_line_reply_is_allowed() {
        let request = pb::AppendEntryRequest {
            entry: Some(pb::Entry {
                invoice_number: "INV-1".to_owned(),
                server_reply: "250-first\r\n250 second".to_owned(),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        };
        assert!(append_entry(&request).is_ok());
    }

    #[test]
    fn entry_fields_named() {
        let request = pb::AppendEntryRequest {
            entry: Some(pb::Entry {
                invoice_number: "INV\n1".to_owned(),
                subject: "a\r\nb".to_owned(),
                to: vec![types::Mailbox {
                    name: "x\0".to_owned(),
                    address: "x@y.example".to_owned(),
                }],
                detail: "d\0".to_owned(),
                ..Default::default()
            }),
            idempotency_key: "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1),
        };
        assert_eq!(
            bad_fields(append_entry(&request)),
            [
                "entry.invoice_number",
                "entry.to[0].name",
                "entry.subject",
                "entry.detail",
                "idempotency_key"
            ]
        );
    }

    #[test]
    fn idempotency_key_is_one_line() {
        let request = pb::AppendEntryRequest {
            entry: Some(pb::Entry::default()),
            idempotency_key: "delivery-1\n2".to_owned(),
        };
        assert_eq!(bad_fields(append_entry(&request)), ["idempotency_key"]);
    }

    #[test]
    fn blank_idempotency_key_rejected() {
        let request = pb::AppendEntryRequest {
            entry: Some(pb::Entry::default()),
            idempotency_key: "  ".to_owned(),
        };
        assert_eq!(bad_fields(append_entry(&request)), ["idempotency_key"]);
        let none = pb::AppendEntryRequest {
            entry: Some(pb::Entry::default()),
            idempotency_key: String::new(),
        };
        assert!(append_entry(&none).is_ok());
    }

    #[test]
    fn list_and_get_checked() {
        let list = pb::ListEntriesRequest {
            recipient: "a@b\r\n".to_owned(),
            page_token: "t".repeat(MAX_PAGE_TOKEN_BYTES + 1),
            ..Default::default()
        };
        assert_eq!(bad_fields(list_entries(&list)), ["recipient", "page_token"]);
        let get = pb::GetEntryRequest {
            id: "\0".to_owned(),
        };
        assert_eq!(bad_fields(get_entry(&get)), ["id"]);
    }
}
