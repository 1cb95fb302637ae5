//! Tests of message validation and rendering, read back with mail-parser.

use invoicer_kit::config::MailConfig;
use mail_parser::{MessageParser, MimeHeaders};

use super::*;

fn defaults() -> MessageDefaults {
    let config = MailConfig {
        from: "Billing <billing@company.example>".to_owned(),
        reply_to: Some("Accounts <accounts@company.example>".to_owned()),
        ..MailConfig::default()
    };
    MessageDefaults::from_config(&config).unwrap()
}

fn mailbox(name: &str, address: &str) -> Mailbox {
    Mailbox {
        name: name.to_owned(),
        address: address.to_owned(),
    }
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        from: Some(mailbox("Łódź Billing", "billing@company.example")),
        to: vec![mailbox("Zoë Müller", "zoe@customer.example")],
        cc: vec![mailbox("", "ap@customer.example")],
        bcc: vec![mailbox("Archive", "archive@company.example")],
        reply_to: None,
        subject: "Faktura nr 2024/001 – płatność".to_owned(),
        text_body: "Dzień dobry,\nw załączeniu faktura.\n".to_owned(),
        html_body: None,
        attachments: vec![Attachment {
            file_name: "faktura-2024-001.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            content: b"%PDF-1.7 test bytes \x00\x01\x02".to_vec(),
        }],
        message_id: Some("inv-2024-001.r1@company.example".to_owned()),
        delivery_key: Some("2024-001/1/notifier-7/batch".to_owned()),
        skip_recipients: Vec::new(),
        defer_per_recipient: false,
    }
}

fn prepared(email: OutgoingEmail) -> PreparedEmail {
    prepare(email, &defaults()).unwrap()
}

fn rejected_field(email: OutgoingEmail) -> String {
    match prepare(email, &defaults()) {
        Err(MailDeliveryError::InvalidRequest { field, .. }) => field,
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

#[test]
fn headers_carry_request_fields() {
    let prepared = prepared(email());
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();

    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Łódź Billing"));
    assert_eq!(from.address(), Some("billing@company.example"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Zoë Müller"));
    assert_eq!(to.address(), Some("zoe@customer.example"));
    assert_eq!(
        message.cc().unwrap().first().unwrap().address(),
        Some("ap@customer.example")
    );
    assert_eq!(message.subject(), Some("Faktura nr 2024/001 – płatność"));
    assert_eq!(
        message.message_id(),
        Some("inv-2024-001.r1@company.example")
    );
    assert_eq!(
        message.header_raw("X-Invoicer-Delivery").map(str::trim),
        Some("2024-001/1/notifier-7/batch")
    );
    assert!(message.date().is_some());
}

#[test]
fn bcc_is_in_envelope_only() {
    let prepared = prepared(email());
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert!(message.bcc().is_none());
    assert!(message.header_raw("Bcc").is_none());
    let text = String::from_utf8_lossy(&prepared.bytes);
    assert!(!text.contains("archive@company.example"), "{text}");

    let envelope: Vec<(String, Role)> = prepared
        .recipients
        .iter()
        .map(|r| (r.address.to_string(), r.role))
        .collect();
    assert_eq!(
        envelope,
        [
            ("zoe@customer.example".to_owned(), Role::To),
            ("ap@customer.example".to_owned(), Role::Cc),
            ("archive@company.example".to_owned(), Role::Bcc),
        ]
    );
}

#[test]
fn non_ascii_headers_are_rfc2047_encoded() {
    let prepared = prepared(email());
    assert!(prepared.bytes.is_ascii(), "the message must be 7-bit");
    let text = String::from_utf8(prepared.bytes.clone()).unwrap();
    let subject_line = text
        .lines()
        .find(|line| line.starts_with("Subject:"))
        .unwrap();
    assert!(subject_line.contains("=?utf-8?"), "{subject_line}");
}

#[test]
fn attachment_keeps_name_type_and_bytes() {
    let prepared = prepared(email());
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert_eq!(message.attachment_count(), 1);
    let attachment = message.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("faktura-2024-001.pdf"));
    assert_eq!(attachment.contents(), b"%PDF-1.7 test bytes \x00\x01\x02");
    let content_type = attachment.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("application", Some("pdf"))
    );
    // Text goes on the wire with CRLF line endings (RFC 5322).
    assert_eq!(
        message.body_text(0).as_deref(),
        Some("Dzień dobry,\r\nw załączeniu faktura.\r\n")
    );
}

#[test]
fn non_ascii_file_name_is_rfc2231_encoded() {
    let mut email = email();
    email.attachments[0].file_name = "Rechnung für Zoë – März.pdf".to_owned();
    let prepared = prepared(email);
    let text = String::from_utf8(prepared.bytes.clone()).unwrap();
    assert!(text.contains("filename*"), "{text}");

    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert_eq!(
        message.attachment(0).unwrap().attachment_name(),
        Some("Rechnung für Zoë – März.pdf")
    );
}

#[test]
fn html_body_becomes_alternative() {
    let mut email = email();
    email.html_body = Some("<p>Dzień dobry</p>".to_owned());
    let prepared = prepared(email);
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert_eq!(message.body_html(0).as_deref(), Some("<p>Dzień dobry</p>"));
    // Text goes on the wire with CRLF line endings (RFC 5322).
    assert_eq!(
        message.body_text(0).as_deref(),
        Some("Dzień dobry,\r\nw załączeniu faktura.\r\n")
    );
    assert_eq!(message.attachment_count(), 1);
}

#[test]
fn text_only_message_is_single_part() {
    let mut email = email();
    email.attachments.clear();
    let prepared = prepared(email);
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
}

#[test]
fn missing_from_and_reply_to_use_configuration() {
    let mut email = email();
    email.from = None;
    let prepared = prepared(email);
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert_eq!(
        message.from().unwrap().first().unwrap().name(),
        Some("Billing")
    );
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("accounts@company.example")
    );
    assert_eq!(prepared.sender.to_string(), "billing@company.example");
}

#[test]
fn generated_message_id_uses_from_domain() {
    let mut email = email();
    email.message_id = None;
    let prepared = prepared(email);
    let (unique, domain) = prepared.message_id.split_once('@').unwrap();
    assert_eq!(domain, "company.example");
    assert!(uuid::Uuid::parse_str(unique).is_ok(), "{unique}");
}

#[test]
fn generated_message_id_prefers_configured_domain() {
    let config = MailConfig {
        message_id_domain: Some("mail.invoicer.example".to_owned()),
        ..MailConfig::default()
    };
    let defaults = MessageDefaults::from_config(&config).unwrap();
    let mut email = email();
    email.message_id = None;
    let prepared = prepare(email, &defaults).unwrap();
    assert!(
        prepared.message_id.ends_with("@mail.invoicer.example"),
        "{}",
        prepared.message_id
    );
}

#[test]
fn duplicate_recipient_is_sent_once() {
    let mut email = email();
    email.bcc.push(mailbox("", "ZOE@customer.example"));
    let prepared = prepared(email);
    assert_eq!(prepared.recipients.len(), 3);
}

#[test]
fn render_without_omits_header_recipient() {
    let prepared = prepared(email());
    let omitted = ["ap@customer.example".parse::<Address>().unwrap()];
    let bytes = prepared.render_without(&omitted).unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert!(message.cc().is_none());
    assert_eq!(
        message.message_id(),
        Some("inv-2024-001.r1@company.example")
    );
}

#[test]
fn utf8_local_part_is_accepted() {
    let mut email = email();
    email
        .to
        .push(mailbox("Stanisław Wójcik", "stanisław.wójcik@wp.example"));
    let prepared = prepared(email);
    assert!(!is_ascii_address(&prepared.recipients[1].address));
}

#[test]
fn invalid_requests_name_the_field() {
    type Change = Box<dyn Fn(&mut OutgoingEmail)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "to[0].address",
            Box::new(|e| e.to[0].address = "not an address".to_owned()),
        ),
        (
            "cc[0].address",
            Box::new(|e| e.cc[0].address = "ap@".to_owned()),
        ),
        ("bcc[1].address", Box::new(|e| e.bcc.push(mailbox("", " ")))),
        (
            "from.address",
            Box::new(|e| e.from = Some(mailbox("", "billing"))),
        ),
        (
            "to[0].name",
            Box::new(|e| e.to[0].name = "Zoë\r\nBcc: x@y".to_owned()),
        ),
        (
            "to",
            Box::new(|e| {
                e.to.clear();
                e.cc.clear();
                e.bcc.clear();
            }),
        ),
        (
            "subject",
            Box::new(|e| e.subject = "Invoice\nBcc: x@y.example".to_owned()),
        ),
        (
            "message_id",
            Box::new(|e| e.message_id = Some("<a@b>".to_owned())),
        ),
        (
            "message_id",
            Box::new(|e| e.message_id = Some("no-at-sign".to_owned())),
        ),
        (
            "message_id",
            Box::new(|e| e.message_id = Some("a b@c".to_owned())),
        ),
        (
            "delivery_key",
            Box::new(|e| e.delivery_key = Some("key\r\nX: y".to_owned())),
        ),
        (
            "delivery_key",
            Box::new(|e| e.delivery_key = Some("k".repeat(201))),
        ),
        (
            "attachments[0].file_name",
            Box::new(|e| e.attachments[0].file_name = "../etc/passwd".to_owned()),
        ),
        (
            "attachments[0].file_name",
            Box::new(|e| e.attachments[0].file_name = " ".to_owned()),
        ),
        (
            "attachments[0].content_type",
            Box::new(|e| e.attachments[0].content_type = "pdf".to_owned()),
        ),
    ];
    for (expected, change) in cases {
        let mut email = email();
        change(&mut email);
        assert_eq!(rejected_field(email), expected);
    }
}

#[test]
fn invalid_config_from_is_rejected() {
    let config = MailConfig {
        from: "no address here".to_owned(),
        ..MailConfig::default()
    };
    let error = MessageDefaults::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("mail.from"), "{error}");
    assert!(error.contains("no address here"), "{error}");
}

#[test]
fn skipped_recipients_leave_envelope_but_keep_headers() {
    let mut email = email();
    email.skip_recipients = vec!["ZOE@customer.example".to_owned()];
    let prepared = prepared(email);

    let envelope: Vec<String> = prepared
        .recipients
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(envelope, ["ap@customer.example", "archive@company.example"]);
    let message = MessageParser::default().parse(&prepared.bytes).unwrap();
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("zoe@customer.example")
    );
    assert_eq!(
        message.cc().unwrap().first().unwrap().address(),
        Some("ap@customer.example")
    );
}

#[test]
fn skipped_recipient_must_be_listed() {
    let mut email = email();
    email.skip_recipients = vec![
        "ap@customer.example".to_owned(),
        "stranger@customer.example".to_owned(),
    ];
    assert_eq!(rejected_field(email), "skip_recipients[1]");
}

#[test]
fn skipping_every_recipient_is_rejected() {
    let mut email = email();
    email.skip_recipients = vec![
        "zoe@customer.example".to_owned(),
        "ap@customer.example".to_owned(),
        "archive@company.example".to_owned(),
    ];
    assert_eq!(rejected_field(email), "skip_recipients");
}
