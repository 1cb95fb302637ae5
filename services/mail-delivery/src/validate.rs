//! Limits on a `SendEmail` request, checked before anything is built, with every bad field
//! named in one INVALID_ARGUMENT status. The message builder checks the address syntax and
//! the header text again on the converted request.

use invoicer_kit::validate::{MAX_SUBJECT_BYTES, Violations, indexed};
use invoicer_proto::mail_delivery::v1 as proto;
use invoicer_proto::types::v1 as types;
use tonic::Status;

/// Envelope recipients of one message (To, Cc and Bcc together).
pub(crate) const MAX_RECIPIENTS: usize = 100;
/// RFC 5321 limits a path to 256 octets, so an address to 254.
const MAX_ADDRESS_BYTES: usize = 254;
const MAX_DISPLAY_NAME_BYTES: usize = 256;
const MAX_BODY_BYTES: usize = 1 << 20;
const MAX_ATTACHMENTS: usize = 10;
const MAX_FILE_NAME_BYTES: usize = 255;
const MAX_CONTENT_TYPE_BYTES: usize = 127;
const MAX_MESSAGE_ID_BYTES: usize = 250;
const MAX_DELIVERY_KEY_BYTES: usize = 512;

/// Checks every field of `request` against its limit; CR, LF and NUL are rejected in every
/// field that ends up in a header or an SMTP command.
pub(crate) fn send_email(request: &proto::SendEmailRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    if let Some(from) = &request.from {
        mailbox(&mut violations, "from", from);
    }

    if let Some(reply_to) = &request.reply_to {
        mailbox(&mut violations, "reply_to", reply_to);
    }
    let recipients = request.to.len() + request.cc.len() + request.bcc.len();
    if recipients > MAX_RECIPIENTS {
        violations.add(
            "to",
            format!(
                "to, cc and bcc have {recipients} recipients together; the maximum is {MAX_RECIPIENTS}"
            ),
        );
    }
    for (field, list) in [
        ("to", &request.to),
        ("cc", &request.cc),
        ("bcc", &request.bcc),
    ] {
        for (index, entry) in list.iter().enumerate().take(MAX_RECIPIENTS + 1) {
            mailbox(&mut violations, &indexed(field, index), entry);
        }
    }

    violations.single_line("subject", &request.subject, MAX_SUBJECT_BYTES);
    violations.text("text_body", &request.text_body, MAX_BODY_BYTES);
    violations.text("html_body", &request.html_body, MAX_BODY_BYTES);

    violations.max_count("attachments", request.attachments.len(), MAX_ATTACHMENTS);
    for (index, attachment) in request
        .attachments
        .iter()
        .enumerate()
        .take(MAX_ATTACHMENTS + 1)
    {
        let field = indexed("attachments", index);
        violations.single_line(
            &format!("{field}.file_name"),
            &attachment.file_name,
            MAX_FILE_NAME_BYTES,
        );
        violations.single_line(
            &format!("{field}.content_type"),
            &attachment.content_type,
            MAX_CONTENT_TYPE_BYTES,
        );
    }

    violations.single_line("message_id", &request.message_id, MAX_MESSAGE_ID_BYTES);
    violations.single_line(
        "delivery_key",
        &request.delivery_key,
        MAX_DELIVERY_KEY_BYTES,
    );
    violations.into_result()
}

fn mailbox(violations: &mut Violations, field: &str, mailbox: &types::Mailbox) {
    violations.single_line(
        &format!("{field}.name"),
        &mailbox.name,
        MAX_DISPLAY_NAME_BYTES,
    );
    violations.single_line(
        &format!("{field}.address"),
        &mailbox.address,
        MAX_ADDRESS_BYTES,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(address: &str) -> types::Mailbox {
        types::Mailbox {
            name: String::new(),
            address: address.to_owned(),
        }
    }

    fn valid() -> proto::SendEmailRequest {
        proto::SendEmailRequest {
            from: Some(mailbox("billing@company.example")),
            to: vec![mailbox("ap@customer.example")],
            subject: "Invoice INV-1".to_owned(),
            text_body: "Dear customer,\r\n\r\nplease find attached.".to_owned(),
            message_id: "abc@company.example".to_owned(),
            ..Default::default()
        }
    }

    fn bad_fields(request: &proto::SendEmailRequest) -> Vec<String> {
        let status = send_email(request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        invoicer_kit::validate::bad_request_fields(&status)
    }

    #[test]
    fn valid_request_passes() {
        assert!(send_email(&valid()).is_ok());
    }

    #[test]
    fn header_injection_in_subject() {
        let mut request = valid();
        request.subject = "Invoice\r\nBcc: victim@example.org".to_owned();
        assert_eq!(bad_fields(&request), ["subject"]);
    }

    #[test]
    fn smtp_command_injection_in_address() {
        let mut request = valid();
        request
            .to
            .push(mailbox("a@b.example>\r\nRCPT TO:<x@evil.example"));
        request.cc.push(mailbox("c@d.example\0"));
        assert_eq!(bad_fields(&request), ["to[1].address", "cc[0].address"]);
    }

    #[test]
    fn line_break_in_display_name() {
        let mut request = valid();
        request.from = Some(types::Mailbox {
            name: "Billing\nX-Spam: no".to_owned(),
            address: "billing@company.example".to_owned(),
        });
        assert_eq!(bad_fields(&request), ["from.name"]);
    }

    #[test]
    fn too_many_recipients() {
        let mut request = valid();
        request.bcc = (0..MAX_RECIPIENTS)
            .map(|i| mailbox(&format!("r{i}@x.example")))
            .collect();
        assert_eq!(bad_fields(&request), ["to"]);
    }

    #[test]
    fn too_many_attachments_and_bad_names() {
        let mut request = valid();
        request.attachments = (0..=MAX_ATTACHMENTS)
            .map(|i| proto::Attachment {
                file_name: if i == 0 {
                    "a\r\n.pdf".to_owned()
                } else {
                    format!("{i}.pdf")
                },
                content_type: "application/pdf".to_owned(),
                content: Vec::new(),
            })
            .collect();
        assert_eq!(
            bad_fields(&request),
            ["attachments", "attachments[0].file_name"]
        );
    }

    #[test]
    fn nul_in_body_and_long_subject() {
        let mut request = valid();
        request.text_body = "a\0b".to_owned();
        request.subject = "s".repeat(MAX_SUBJECT_BYTES + 1);
        request.message_id = "id\n@x".to_owned();
        assert_eq!(bad_fields(&request), ["subject", "text_body", "message_id"]);
    }
}
