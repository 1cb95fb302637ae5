//! Limits on every OrchestratorService request, checked before the engine receives it, with
//! every bad field named in one INVALID_ARGUMENT status. The engine checks the meaning of the
//! values (addresses, instants, business dates) afterwards.

use invoicer_kit::validate::{Violations, indexed};
use invoicer_proto::orchestrator::v1 as pb;
use tonic::Status;

const MAX_ID_BYTES: usize = 128;
const MAX_INSTANT_BYTES: usize = 64;
const MAX_PAGE_TOKEN_BYTES: usize = 32;
/// One element of an address override may be a list separated by commas or semicolons.
const MAX_ADDRESS_ELEMENT_BYTES: usize = 1024;
/// Elements of to, cc and bcc together, in a resend or a notifier.
const MAX_ADDRESS_ELEMENTS: usize = 100;
const MAX_REASON_BYTES: usize = 500;
const MAX_ACTOR_BYTES: usize = 128;
const MAX_TEMPLATES: usize = 32;
const MAX_LANGUAGE_TAG_BYTES: usize = 35;
/// RFC 5322 limits a header line to 998 characters; the subject template is one line too.
const MAX_SUBJECT_TEMPLATE_BYTES: usize = 998;
const MAX_BODY_TEMPLATE_BYTES: usize = 64 << 10;
const MAX_KINDS: usize = 8;

pub(super) fn run_batch(request: &pb::RunBatchRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("cutoff", &request.cutoff, MAX_INSTANT_BYTES);
    violations.single_line("lookback", &request.lookback, MAX_INSTANT_BYTES);
    violations.single_line("business_date", &request.business_date, MAX_INSTANT_BYTES);
    violations.into_result()
}

pub(super) fn batch_id(field: &str, id: &str) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line(field, id, MAX_ID_BYTES);
    violations.into_result()
}

pub(super) fn get_batch(request: &pb::GetBatchRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("id", &request.id, MAX_ID_BYTES);
    violations.single_line("page_token", &request.page_token, MAX_PAGE_TOKEN_BYTES);
    violations.into_result()
}

pub(super) fn list_batches(request: &pb::ListBatchesRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("page_token", &request.page_token, MAX_PAGE_TOKEN_BYTES);
    violations.into_result()
}

pub(super) fn resend_invoice(request: &pb::ResendInvoiceRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("invoice_number", &request.invoice_number, MAX_ID_BYTES);
    address_lists(
        &mut violations,
        "",
        [&request.to[..], &request.cc[..], &request.bcc[..]],
    );
    violations.single_line("reason", &request.reason, MAX_REASON_BYTES);
    violations.single_line("request_id", &request.request_id, MAX_ID_BYTES);
    // A client that pads its id with spaces in one call and not in the next would send twice.
    if request.request_id.trim() != request.request_id {
        violations.add(
            "request_id",
            format!(
                "{:?} starts or ends with white space; send the id without it",
                request.request_id
            ),
        );
    }
    violations.single_line("actor", &request.actor, MAX_ACTOR_BYTES);
    violations.into_result()
}

pub(super) fn preview_invoice(request: &pb::PreviewInvoiceRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("invoice_number", &request.invoice_number, MAX_ID_BYTES);
    violations.into_result()
}

pub(super) fn customer_code(code: &str) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("customer_code", code, MAX_ID_BYTES);
    violations.into_result()
}

pub(super) fn list_notifier_changes(
    request: &pb::ListNotifierChangesRequest,
) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("customer_code", &request.customer_code, MAX_ID_BYTES);
    violations.single_line("page_token", &request.page_token, MAX_PAGE_TOKEN_BYTES);
    violations.into_result()
}

pub(super) fn update_notifier(request: &pb::UpdateNotifierRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("customer_code", &request.customer_code, MAX_ID_BYTES);
    violations.single_line("actor", &request.actor, MAX_ACTOR_BYTES);
    violations.single_line("reason", &request.reason, MAX_REASON_BYTES);
    if let Some(notifier) = &request.notifier {
        notifier_fields(&mut violations, notifier);
    }
    violations.into_result()
}

fn notifier_fields(violations: &mut Violations, notifier: &pb::Notifier) {
    if let Some(kinds) = &notifier.kinds {
        violations.max_count("notifier.kinds.kinds", kinds.kinds.len(), MAX_KINDS);
    }
    address_lists(
        violations,
        "notifier.",
        [
            addresses(&notifier.to),
            addresses(&notifier.cc),
            addresses(&notifier.bcc),
        ],
    );
    violations.max_count(
        "notifier.templates",
        notifier.templates.len(),
        MAX_TEMPLATES,
    );
    for (language, template) in notifier.templates.iter().take(MAX_TEMPLATES + 1) {
        let field = format!("notifier.templates[{language:?}]");
        violations.single_line(&field, language, MAX_LANGUAGE_TAG_BYTES);
        violations.single_line(
            &format!("{field}.subject"),
            &template.subject,
            MAX_SUBJECT_TEMPLATE_BYTES,
        );
        violations.text(
            &format!("{field}.text"),
            &template.text,
            MAX_BODY_TEMPLATE_BYTES,
        );
        violations.text(
            &format!("{field}.html"),
            &template.html,
            MAX_BODY_TEMPLATE_BYTES,
        );
    }
}

fn addresses(list: &Option<pb::AddressList>) -> &[String] {
    list.as_ref().map_or(&[], |l| l.addresses.as_slice())
}

/// Checks to, cc and bcc: their element count together and each element as one line. The
/// field names of a notifier's lists end in `.addresses`.
fn address_lists(violations: &mut Violations, prefix: &str, lists: [&[String]; 3]) {
    let total: usize = lists.iter().map(|l| l.len()).sum();
    let suffix = if prefix.is_empty() { "" } else { ".addresses" };
    if total > MAX_ADDRESS_ELEMENTS {
        violations.add(
            format!("{prefix}to{suffix}"),
            format!(
                "to, cc and bcc have {total} entries together; the maximum is {MAX_ADDRESS_ELEMENTS}"
            ),
        );
    }
    for (name, list) in ["to", "cc", "bcc"].into_iter().zip(lists) {
        let field = format!("{prefix}{name}{suffix}");
        for (index, element) in list.iter().enumerate().take(MAX_ADDRESS_ELEMENTS + 1) {
            violations.single_line(&indexed(&field, index), element, MAX_ADDRESS_ELEMENT_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_fields(result: Result<(), Status>) -> Vec<String> {
        let status = result.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        invoicer_kit::validate::bad_request_fields(&status)
    }

    fn resend() -> pb::ResendInvoiceRequest {
        pb::ResendInvoiceRequest {
            invoice_number: "INV-1".to_owned(),
            to: vec!["ap@customer.example".to_owned()],
            reason: "lost".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn valid_resend_passes() {
        assert!(resend_invoice(&resend()).is_ok());
    }

    #[test]
    fn resend_names_every_bad_field() {
        let mut request = resend();
        request.invoice_number = "INV\n1".to_owned();
        request.cc = vec!["a@b.example\r\nRCPT TO:<x@evil.example>".to_owned()];
        request.request_id = "r".repeat(MAX_ID_BYTES + 1);
        request.actor = "jane\0".to_owned();
        assert_eq!(
            bad_fields(resend_invoice(&request)),
            ["invoice_number", "cc[0]", "request_id", "actor"]
        );
    }

    #[test]
    fn padded_request_id_rejected() {
        for padded in [" t-3", "t-3 ", "   "] {
            let mut request = resend();
            request.request_id = padded.to_owned();
            assert_eq!(
                bad_fields(resend_invoice(&request)),
                ["request_id"],
                "{padded:?}"
            );
        }
    }

    #[test]
    fn resend_with_too_many_recipients() {
        let mut request = resend();
        request.bcc = (0..MAX_ADDRESS_ELEMENTS)
            .map(|i| format!("r{i}@x.example"))
            .collect();
        assert_eq!(bad_fields(resend_invoice(&request)), ["to"]);
    }

    #[test]
    fn notifier_template_and_addresses_checked() {
        let mut templates = std::collections::HashMap::new();
        templates.insert(
            "de".to_owned(),
            pb::MessageTemplate {
                subject: "Rechnung\r\nBcc: x@y".to_owned(),
                text: "a\0".to_owned(),
                html: String::new(),
            },
        );
        let request = pb::UpdateNotifierRequest {
            customer_code: "C-1".to_owned(),
            reason: "r".repeat(MAX_REASON_BYTES + 1),
            notifier: Some(pb::Notifier {
                to: Some(pb::AddressList {
                    addresses: vec!["x@y.example\n".to_owned()],
                }),
                templates,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            bad_fields(update_notifier(&request)),
            [
                "reason",
                "notifier.to.addresses[0]",
                "notifier.templates[\"de\"].subject",
                "notifier.templates[\"de\"].text",
            ]
        );
    }

    #[test]
    fn run_batch_and_ids_checked() {
        let request = pb::RunBatchRequest {
            cutoff: "2026-01-01T00:00:00Z\n".to_owned(),
            lookback: "l".repeat(MAX_INSTANT_BYTES + 1),
            ..Default::default()
        };
        assert_eq!(bad_fields(run_batch(&request)), ["cutoff", "lookback"]);
        assert_eq!(bad_fields(batch_id("id", "x\0")), ["id"]);
        assert_eq!(
            bad_fields(customer_code(&"c".repeat(200))),
            ["customer_code"]
        );
    }
}
