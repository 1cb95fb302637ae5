//! mail-delivery against the real test SMTP server over a loopback socket, the file outbox,
//! and the gRPC service through the host's server bootstrap.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use invoicer_kit::Config;
use invoicer_kit::config::MailConfig;
use invoicer_mail_delivery::{
    Attachment, DeliveryReport, MailDeliveryPlugin, Mailbox, Mailer, Outcome, OutgoingEmail, Role,
};
use invoicer_test_smtp::{ReceivedMessage, Stage, TestSmtpServer};
use mail_parser::{MessageParser, MimeHeaders};

const WAIT: Duration = Duration::from_secs(5);
const PDF_BYTES: &[u8] = b"%PDF-1.7\n\x00\x01\x02\xff binary invoice\n%%EOF\n";
const SUBJECT: &str = "Faktura nr 2024/001 – płatność w terminie";

fn config(smtp_url: Option<String>, data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_owned(),
        mail: MailConfig {
            from: "Billing <billing@company.example>".to_owned(),
            smtp_url,
            timeout_secs: 5,
            ..MailConfig::default()
        },
        ..Config::default()
    }
}

fn mailer(smtp_url: String, data_dir: &Path) -> Mailer {
    Mailer::from_config(&config(Some(smtp_url), data_dir)).expect("mailer from config")
}

fn mailbox(name: &str, address: &str) -> Mailbox {
    Mailbox {
        name: name.to_owned(),
        address: address.to_owned(),
    }
}

fn invoice_email() -> OutgoingEmail {
    OutgoingEmail {
        from: Some(mailbox("Łódź Billing", "billing@company.example")),
        to: vec![mailbox("Zoë Müller", "zoe@customer.example")],
        cc: vec![mailbox("Accounts Payable", "ap@customer.example")],
        bcc: vec![mailbox("", "archive@company.example")],
        reply_to: Some(mailbox("", "accounts@company.example")),
        subject: SUBJECT.to_owned(),
        text_body: "Dear customer,\nplease find invoice 2024/001 attached.\n".to_owned(),
        html_body: None,
        attachments: vec![Attachment {
            file_name: "Faktura 2024-001 für Zoë.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            content: PDF_BYTES.to_vec(),
        }],
        message_id: Some("inv-2024-001.r1@company.example".to_owned()),
        delivery_key: Some("2024-001/1/notifier-7".to_owned()),
        skip_recipients: Vec::new(),
        defer_per_recipient: false,
    }
}

fn recipient<'r>(
    report: &'r DeliveryReport,
    address: &str,
) -> &'r invoicer_mail_delivery::RecipientReport {
    report
        .recipients
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("{address} missing in {:?}", report.recipients))
}

fn has_command(server: &TestSmtpServer, verb: &str) -> bool {
    server
        .commands()
        .iter()
        .any(|line| line.eq_ignore_ascii_case(verb) || line.starts_with(&format!("{verb} ")))
}

async fn one_message(server: &TestSmtpServer) -> ReceivedMessage {
    server
        .wait_for_messages(1, WAIT)
        .await
        .expect("one delivered message")
        .remove(0)
}

#[tokio::test]
async fn plain_send_delivers_one_message() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;
    let mailer = mailer(
        format!("{}?ehlo=invoicer.company.example", server.url()),
        dir.path(),
    );

    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.error, "");
    assert!(
        report.server_reply.starts_with("250 2.0.0 Ok: queued as"),
        "{}",
        report.server_reply
    );
    assert_eq!(report.destination, server.url());
    assert_eq!(report.message_id, "inv-2024-001.r1@company.example");
    assert_eq!(report.recipients.len(), 3);
    for result in &report.recipients {
        assert!(result.accepted, "{result:?}");
        assert_eq!(result.reply_code, 250, "{result:?}");
    }
    assert_eq!(
        recipient(&report, "archive@company.example").role,
        Role::Bcc
    );

    let received = one_message(&server).await;
    assert_eq!(received.mail_from, "billing@company.example");
    assert_eq!(
        received.rcpt_to,
        [
            "zoe@customer.example",
            "ap@customer.example",
            "archive@company.example"
        ]
    );
    assert_eq!(
        received.ehlo_name.as_deref(),
        Some("invoicer.company.example")
    );
    assert_eq!(received.authenticated_as, None);
    // The server stores the message plus the CRLF that precedes the final dot.
    assert_eq!(received.data.len() as u64, report.message_size + 2);
    // The connection stays open for the next message until the mailer closes it.
    assert!(!has_command(&server, "QUIT"));
    mailer.close().await;
    assert!(has_command(&server, "QUIT"));
    Ok(())
}

#[tokio::test]
async fn plain_send_headers_and_attachment_survive() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;
    mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    let received = one_message(&server).await;
    let message = MessageParser::default()
        .parse(&received.data)
        .expect("parsable message");
    let from = message.from().and_then(|from| from.first()).expect("From");
    assert_eq!(from.name(), Some("Łódź Billing"));
    assert_eq!(from.address(), Some("billing@company.example"));
    let to = message.to().and_then(|to| to.first()).expect("To");
    assert_eq!(to.name(), Some("Zoë Müller"));
    assert_eq!(to.address(), Some("zoe@customer.example"));
    let cc = message.cc().and_then(|cc| cc.first()).expect("Cc");
    assert_eq!(cc.address(), Some("ap@customer.example"));
    assert_eq!(
        message
            .reply_to()
            .and_then(|r| r.first())
            .and_then(|r| r.address()),
        Some("accounts@company.example")
    );
    assert_eq!(message.subject(), Some(SUBJECT));
    assert_eq!(
        message.message_id(),
        Some("inv-2024-001.r1@company.example")
    );
    assert_eq!(
        message.header_raw("X-Invoicer-Delivery").map(str::trim),
        Some("2024-001/1/notifier-7")
    );

    assert!(message.bcc().is_none(), "a Bcc header leaked");
    assert!(
        !received.data_text().contains("archive@company.example"),
        "the Bcc address leaked"
    );
    assert!(received.data.is_ascii(), "headers must be RFC 2047 encoded");

    let attachment = message.attachment(0).expect("attachment");
    assert_eq!(
        attachment.attachment_name(),
        Some("Faktura 2024-001 für Zoë.pdf")
    );
    assert_eq!(attachment.contents(), PDF_BYTES);
    let content_type = attachment.content_type().expect("Content-Type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("application", Some("pdf"))
    );
    Ok(())
}

#[tokio::test]
async fn starttls_with_auth_plain_delivers() -> Result<()> {
    let server = TestSmtpServer::builder()
        .require_starttls()
        .credentials("billing@company.example", "p@ss:word")
        .require_auth()
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let ca_file = server.write_ca_file(dir.path())?;
    let url = format!(
        "smtp://billing%40company.example:p%40ss%3Aword@localhost:{}?tls=starttls&ca_file={}",
        server.local_addr().port(),
        ca_file.display()
    );

    let report = mailer(url, dir.path()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(
        report.destination,
        format!("smtp://localhost:{}", server.local_addr().port())
    );
    let received = one_message(&server).await;
    assert!(received.tls);
    assert_eq!(
        received.authenticated_as.as_deref(),
        Some("billing@company.example")
    );
    Ok(())
}

#[tokio::test]
async fn implicit_tls_delivers() -> Result<()> {
    let server = TestSmtpServer::builder().implicit_tls().start().await?;
    let dir = tempfile::tempdir()?;
    let ca_file = server.write_ca_file(dir.path())?;
    let url = format!("{}?ca_file={}", server.url(), ca_file.display());

    let report = mailer(url, dir.path()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(
        report.destination.starts_with("smtps://127.0.0.1:"),
        "{}",
        report.destination
    );
    assert!(one_message(&server).await.tls);
    Ok(())
}

#[tokio::test]
async fn untrusted_certificate_defers() -> Result<()> {
    let server = TestSmtpServer::builder().implicit_tls().start().await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report.error.contains("TLS handshake failed"),
        "{}",
        report.error
    );
    assert!(server.messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn wrong_password_fails_with_reply_code() -> Result<()> {
    let server = TestSmtpServer::builder()
        .credentials("billing", "right")
        .require_auth()
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let url = format!("smtp://billing:wrong@{}", server.local_addr());

    let report = mailer(url, dir.path()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert!(
        report.error.contains("AUTH rejected with 535"),
        "{}",
        report.error
    );
    assert!(!report.error.contains("wrong"), "{}", report.error);
    Ok(())
}

#[tokio::test]
async fn required_starttls_not_offered_defers() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(format!("{}?tls=starttls", server.url()), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report.error.contains("does not offer STARTTLS"),
        "{}",
        report.error
    );
    assert!(!has_command(&server, "MAIL"));
    Ok(())
}

#[tokio::test]
async fn opportunistic_tls_falls_back_to_plain() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(format!("{}?tls=opportunistic", server.url()), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(!one_message(&server).await.tls);
    Ok(())
}

#[tokio::test]
async fn one_rejected_recipient_is_partially_sent() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("ap@customer.example", 550, "5.1.1 no such user")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::PartiallySent, "{report:?}");
    assert!(
        report
            .error
            .contains("1 of 3 recipients was rejected; the others got the message"),
        "{}",
        report.error
    );
    let rejected = recipient(&report, "ap@customer.example");
    assert!(!rejected.accepted);
    assert_eq!(rejected.reply_code, 550);
    assert_eq!(rejected.reply_text, "5.1.1 no such user");
    assert!(recipient(&report, "zoe@customer.example").accepted);
    assert!(recipient(&report, "archive@company.example").accepted);
    assert_eq!(
        one_message(&server).await.rcpt_to,
        ["zoe@customer.example", "archive@company.example"]
    );
    Ok(())
}

#[tokio::test]
async fn every_recipient_rejected_fails() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("zoe@customer.example", 550, "5.1.1 no such user")
        .reject_rcpt("ap@customer.example", 550, "5.1.1 no such user")
        .reject_rcpt("archive@company.example", 553, "5.7.1 relaying denied")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert!(
        report.error.contains("every recipient was rejected"),
        "{}",
        report.error
    );
    assert!(
        report
            .error
            .contains("archive@company.example (553 5.7.1 relaying denied)"),
        "{}",
        report.error
    );
    assert_eq!(
        recipient(&report, "archive@company.example").reply_code,
        553
    );
    assert_eq!(report.message_size, 0);
    assert!(!has_command(&server, "DATA"));
    Ok(())
}

#[tokio::test]
async fn transient_recipient_reply_defers_whole_message() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("ap@customer.example", 450, "4.2.0 try later")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report.error.contains(
            "1 of 3 recipients got a transient reply to RCPT TO (first: 450 4.2.0 try later); \
             the message is deferred for every recipient so that it goes out once"
        ),
        "{}",
        report.error
    );
    assert_eq!(recipient(&report, "ap@customer.example").reply_code, 450);
    assert_eq!(recipient(&report, "zoe@customer.example").reply_code, 250);
    assert!(
        report.recipients.iter().all(|r| !r.accepted),
        "{:?}",
        report.recipients
    );
    assert!(!has_command(&server, "DATA"));
    assert!(server.messages().is_empty());
    assert!(server.rejected_messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn rejected_sender_fails() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reply_to_mail_from(550, "5.7.1 sender not allowed")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert!(
        report
            .error
            .contains("MAIL FROM rejected with 550 5.7.1 sender not allowed"),
        "{}",
        report.error
    );
    Ok(())
}

#[tokio::test]
async fn rejection_at_data_end_fails() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reply_at_data_end(554, "5.6.0 message content rejected")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.server_reply, "554 5.6.0 message content rejected");
    assert!(report.message_size > 0);
    assert!(report.recipients.iter().all(|r| !r.accepted));
    assert!(server.messages().is_empty());
    Ok(())
}

/// When no recipient accepted the message, the error reports that, not that the deferral keeps
/// the message to one copy.
#[tokio::test]
async fn transient_reply_to_every_recipient_defers() -> Result<()> {
    let mut builder = TestSmtpServer::builder();
    for address in [
        "zoe@customer.example",
        "ap@customer.example",
        "archive@company.example",
    ] {
        builder = builder.reject_rcpt(address, 451, "4.2.0 mailbox busy");
    }
    let server = builder.start().await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report.error.contains(
            "3 of 3 recipients got a transient reply to RCPT TO (first: 451 4.2.0 mailbox busy); \
             no recipient accepted it, so the message is deferred"
        ),
        "{}",
        report.error
    );
    assert!(!has_command(&server, "DATA"));
    Ok(())
}

#[tokio::test]
async fn transient_reply_at_data_end_defers() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reply_at_data_end(451, "4.3.0 queue full")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert_eq!(report.server_reply, "451 4.3.0 queue full");
    Ok(())
}

#[tokio::test]
async fn connection_closed_after_data_is_unknown() -> Result<()> {
    let server = TestSmtpServer::builder().close_after_data().start().await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert!(
        report.error.contains("may have been delivered"),
        "{}",
        report.error
    );
    assert_eq!(report.server_reply, "");
    assert!(report.recipients.iter().all(|r| !r.accepted));
    // The server did read the whole message before it closed the connection.
    assert_eq!(server.rejected_messages().len(), 1);
    Ok(())
}

#[tokio::test]
async fn reply_timeout_after_data_is_unknown() -> Result<()> {
    let server = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_secs(4))
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(format!("{}?timeout=1", server.url()), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert!(report.error.contains("timed out"), "{}", report.error);
    Ok(())
}

#[tokio::test]
async fn slow_rcpt_reply_defers() -> Result<()> {
    let server = TestSmtpServer::builder()
        .delay(Stage::RcptTo, Duration::from_secs(4))
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(format!("{}?timeout=1", server.url()), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(
        report.error.contains("RCPT TO timed out"),
        "{}",
        report.error
    );
    Ok(())
}

#[tokio::test]
async fn refusing_greeting_defers() -> Result<()> {
    let server = TestSmtpServer::builder()
        .greeting(421, "4.3.2 service not available")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;

    let report = mailer(server.url(), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(report.error.contains("421"), "{}", report.error);
    assert_eq!(server.connection_count(), 1);
    Ok(())
}

#[tokio::test]
async fn server_not_listening_defers() -> Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    drop(listener);
    let dir = tempfile::tempdir()?;

    let report = mailer(format!("smtp://{address}"), dir.path())
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    let expected = format!("smtp://{address}: connect failed: Connection refused");
    assert!(report.error.starts_with(&expected), "{}", report.error);
    assert!(
        report
            .recipients
            .iter()
            .all(|r| r.reply_code == 0 && !r.accepted)
    );
    Ok(())
}

#[tokio::test]
async fn utf8_address_without_smtputf8_fails_alone() -> Result<()> {
    let server = TestSmtpServer::builder().smtputf8(false).start().await?;
    let dir = tempfile::tempdir()?;
    let mut email = invoice_email();
    email
        .to
        .push(mailbox("Stanisław Wójcik", "stanisław.wójcik@wp.example"));

    let report = mailer(server.url(), dir.path()).send(email).await?;

    assert_eq!(report.outcome, Outcome::PartiallySent, "{report:?}");
    let unicode = recipient(&report, "stanisław.wójcik@wp.example");
    assert!(!unicode.accepted);
    assert_eq!(unicode.reply_code, 0);
    assert!(
        unicode.reply_text.contains("SMTPUTF8"),
        "{}",
        unicode.reply_text
    );
    assert!(recipient(&report, "zoe@customer.example").accepted);

    let received = one_message(&server).await;
    assert_eq!(
        received.rcpt_to,
        [
            "zoe@customer.example",
            "ap@customer.example",
            "archive@company.example"
        ]
    );
    assert!(received.data.is_ascii());
    assert!(
        !received.mail_parameters.iter().any(|p| p == "SMTPUTF8"),
        "{:?}",
        received.mail_parameters
    );
    Ok(())
}

#[tokio::test]
async fn utf8_address_with_smtputf8_is_delivered() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;
    let mut email = invoice_email();
    email
        .to
        .push(mailbox("Stanisław Wójcik", "stanisław.wójcik@wp.example"));

    let report = mailer(server.url(), dir.path()).send(email).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let received = one_message(&server).await;
    assert!(
        received
            .rcpt_to
            .contains(&"stanisław.wójcik@wp.example".to_owned())
    );
    assert!(
        received.mail_parameters.iter().any(|p| p == "SMTPUTF8"),
        "{:?}",
        received.mail_parameters
    );
    let message = MessageParser::default()
        .parse(&received.data)
        .expect("parsable message");
    let addresses: Vec<&str> = message
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(
        addresses,
        ["zoe@customer.example", "stanisław.wójcik@wp.example"]
    );
    Ok(())
}

#[tokio::test]
async fn outbox_writes_message_and_envelope() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mailer = Mailer::from_config(&config(None, dir.path()))?;

    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let outbox = dir.path().join("outbox");
    let eml_path = outbox.join("inv-2024-001.r1@company.example.eml");
    assert_eq!(report.destination, eml_path.display().to_string());
    let eml = std::fs::read(&eml_path)?;
    assert_eq!(report.message_size, eml.len() as u64);
    let message = MessageParser::default().parse(&eml).expect("parsable .eml");
    assert_eq!(message.subject(), Some(SUBJECT));
    assert!(message.bcc().is_none());
    assert!(!String::from_utf8_lossy(&eml).contains("archive@company.example"));
    assert_eq!(
        message.attachment(0).expect("attachment").contents(),
        PDF_BYTES
    );

    let envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(
        outbox.join("inv-2024-001.r1@company.example.envelope.json"),
    )?)?;
    assert_eq!(envelope["mail_from"], "billing@company.example");
    assert_eq!(envelope["delivery_key"], "2024-001/1/notifier-7");
    let rcpt_to: Vec<(String, String)> = envelope["rcpt_to"]
        .as_array()
        .expect("rcpt_to list")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_owned(),
                r["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rcpt_to,
        [
            ("zoe@customer.example".to_owned(), "to".to_owned()),
            ("ap@customer.example".to_owned(), "cc".to_owned()),
            ("archive@company.example".to_owned(), "bcc".to_owned()),
        ]
    );

    let mut names: Vec<String> = std::fs::read_dir(&outbox)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        [
            "inv-2024-001.r1@company.example.eml",
            "inv-2024-001.r1@company.example.envelope.json"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn invalid_smtp_url_error_hides_password() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = "smtp://billing:hunter2@mail.company.example:notaport?tls=starttls".to_owned();

    let error = Mailer::from_config(&config(Some(url), dir.path()))
        .err()
        .expect("invalid URL rejected")
        .to_string();

    assert!(!error.contains("hunter2"), "{error}");
    assert!(
        error.contains("smtp://billing:***@mail.company.example:notaport"),
        "{error}"
    );
    assert!(
        error.contains("expected smtp://[user:password@]host[:port]"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn missing_ca_file_is_a_start_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!(
        "smtps://127.0.0.1:1?ca_file={}",
        dir.path().join("missing.pem").display()
    );

    let error = Mailer::from_config(&config(Some(url), dir.path()))
        .err()
        .expect("missing ca_file rejected")
        .to_string();

    assert!(error.contains("missing.pem"), "{error}");
    Ok(())
}

mod grpc {
    use invoicer_proto::mail_delivery::v1 as proto;
    use invoicer_proto::mail_delivery::v1::mail_delivery_service_client::MailDeliveryServiceClient;
    use invoicer_proto::types::v1 as types;

    use super::*;

    fn proto_mailbox(name: &str, address: &str) -> Option<types::Mailbox> {
        Some(types::Mailbox {
            name: name.to_owned(),
            address: address.to_owned(),
        })
    }

    fn request() -> proto::SendEmailRequest {
        proto::SendEmailRequest {
            from: proto_mailbox("Billing", "billing@company.example"),
            to: vec![types::Mailbox {
                name: "Zoë Müller".to_owned(),
                address: "zoe@customer.example".to_owned(),
            }],
            cc: vec![types::Mailbox {
                name: String::new(),
                address: "gone@customer.example".to_owned(),
            }],
            bcc: vec![types::Mailbox {
                name: String::new(),
                address: "archive@company.example".to_owned(),
            }],
            reply_to: None,
            subject: SUBJECT.to_owned(),
            text_body: "Invoice attached.".to_owned(),
            html_body: String::new(),
            attachments: vec![proto::Attachment {
                file_name: "invoice-2024-001.pdf".to_owned(),
                content_type: "application/pdf".to_owned(),
                content: PDF_BYTES.to_vec(),
            }],
            message_id: String::new(),
            delivery_key: "2024-001/1/notifier-7".to_owned(),
            skip_recipients: Vec::new(),
            defer_per_recipient: false,
        }
    }

    #[tokio::test]
    async fn send_email_over_grpc_reports_each_recipient() -> Result<()> {
        let smtp = TestSmtpServer::builder()
            .reject_rcpt("gone@customer.example", 550, "5.1.1 no such user")
            .start()
            .await?;
        let dir = tempfile::tempdir()?;
        let mut config = config(Some(smtp.url()), dir.path());
        config.server.listen = "127.0.0.1:0".parse()?;
        let server =
            invoicer_kit::server::start(Arc::new(config), vec![Arc::new(MailDeliveryPlugin)])
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        let mut client =
            MailDeliveryServiceClient::connect(format!("http://{}", server.local_addr())).await?;

        let response = client.send_email(request()).await?.into_inner();

        assert_eq!(
            response.outcome,
            types::DeliveryOutcome::PartiallySent as i32,
            "{response:?}"
        );
        assert!(
            response.message_id.ends_with("@company.example"),
            "{}",
            response.message_id
        );
        assert_eq!(response.destination, smtp.url());
        assert!(
            response.server_reply.starts_with("250 "),
            "{}",
            response.server_reply
        );
        assert!(response.message_size > 0);
        assert_eq!(response.stage, proto::SmtpStage::EndOfData as i32);
        assert_eq!(response.last_reply, response.server_reply);
        assert_eq!(
            response.settled_recipients,
            [
                "zoe@customer.example",
                "gone@customer.example",
                "archive@company.example"
            ]
        );
        let gone = response
            .recipients
            .iter()
            .find(|r| r.address == "gone@customer.example")
            .expect("gone result");
        assert_eq!(
            (gone.accepted, gone.reply_code, gone.role),
            (false, 550, types::RecipientRole::Cc as i32)
        );
        let archive = response
            .recipients
            .iter()
            .find(|r| r.address == "archive@company.example")
            .expect("bcc result");
        assert_eq!(
            (archive.accepted, archive.role),
            (true, types::RecipientRole::Bcc as i32)
        );

        let received = smtp.wait_for_messages(1, WAIT).await?;
        let message = MessageParser::default()
            .parse(&received[0].data)
            .expect("parsable message");
        assert_eq!(message.message_id(), Some(response.message_id.as_str()));

        server
            .shutdown("test finished")
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(())
    }

    #[tokio::test]
    async fn grpc_deferred_send_reports_stage() -> Result<()> {
        let smtp = TestSmtpServer::builder()
            .reply_to_mail_from(451, "4.3.0 try later")
            .start()
            .await?;
        let dir = tempfile::tempdir()?;
        let mut config = config(Some(smtp.url()), dir.path());
        config.server.listen = "127.0.0.1:0".parse()?;
        let server =
            invoicer_kit::server::start(Arc::new(config), vec![Arc::new(MailDeliveryPlugin)])
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        let mut client =
            MailDeliveryServiceClient::connect(format!("http://{}", server.local_addr())).await?;

        let response = client.send_email(request()).await?.into_inner();

        assert_eq!(
            response.outcome,
            types::DeliveryOutcome::Deferred as i32,
            "{response:?}"
        );
        assert_eq!(response.stage, proto::SmtpStage::Mail as i32);
        assert_eq!(response.last_reply, "451 4.3.0 try later");
        assert!(response.settled_recipients.is_empty());
        server
            .shutdown("test finished")
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(())
    }

    #[tokio::test]
    async fn skip_recipients_over_grpc_sends_to_the_rest() -> Result<()> {
        let smtp = TestSmtpServer::builder().start().await?;
        let dir = tempfile::tempdir()?;
        let mut config = config(Some(smtp.url()), dir.path());
        config.server.listen = "127.0.0.1:0".parse()?;
        let server =
            invoicer_kit::server::start(Arc::new(config), vec![Arc::new(MailDeliveryPlugin)])
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        let mut client =
            MailDeliveryServiceClient::connect(format!("http://{}", server.local_addr())).await?;
        let mut retry = request();
        retry.skip_recipients = vec![
            "zoe@customer.example".to_owned(),
            "archive@company.example".to_owned(),
        ];

        let response = client.send_email(retry).await?.into_inner();

        assert_eq!(
            response.outcome,
            types::DeliveryOutcome::Sent as i32,
            "{response:?}"
        );
        assert_eq!(response.recipients.len(), 1);
        assert_eq!(response.settled_recipients, ["gone@customer.example"]);
        let received = smtp.wait_for_messages(1, WAIT).await?;
        assert_eq!(received[0].rcpt_to, ["gone@customer.example"]);
        let message = MessageParser::default()
            .parse(&received[0].data)
            .expect("parsable message");
        assert_eq!(
            message
                .to()
                .and_then(|to| to.first())
                .and_then(|a| a.address()),
            Some("zoe@customer.example")
        );

        let mut unknown = request();
        unknown.skip_recipients = vec!["stranger@customer.example".to_owned()];
        let status = client.send_email(unknown).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("skip_recipients[0]"),
            "{status:?}"
        );
        server
            .shutdown("test finished")
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(())
    }

    #[tokio::test]
    async fn invalid_address_over_grpc_is_invalid_argument() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut config = config(None, dir.path());
        config.server.listen = "127.0.0.1:0".parse()?;
        let server =
            invoicer_kit::server::start(Arc::new(config), vec![Arc::new(MailDeliveryPlugin)])
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        let mut client =
            MailDeliveryServiceClient::connect(format!("http://{}", server.local_addr())).await?;
        let mut request = request();
        request.to[0].address = "zoe at customer".to_owned();

        let status = client
            .send_email(request)
            .await
            .expect_err("invalid address rejected");

        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("to[0].address: invalid email address"),
            "{}",
            status.message()
        );
        server
            .shutdown("test finished")
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(())
    }
}
