//! Helpers shared by the SMTP tests: a config for a fixture URL and a sample invoice email.

use std::path::Path;
use std::time::Duration;

use invoicer_kit::Config;
use invoicer_kit::config::MailConfig;
use invoicer_mail_delivery::{Attachment, Mailbox, Mailer, OutgoingEmail};
use invoicer_test_smtp::TestSmtpServer;

pub(crate) const WAIT: Duration = Duration::from_secs(5);
pub(crate) const MESSAGE_ID: &str = "inv-2024-001.r1@company.example";

pub(crate) fn mail_config(smtp_url: String) -> MailConfig {
    MailConfig {
        from: "Billing <billing@company.example>".to_owned(),
        smtp_url: Some(smtp_url),
        timeout_secs: 5,
        ..MailConfig::default()
    }
}

pub(crate) fn config(mail: MailConfig, data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_owned(),
        mail,
        ..Config::default()
    }
}

/// Builds a mailer for `smtp_url` with the default `mail` settings.
pub(crate) fn mailer(smtp_url: String) -> Mailer {
    mailer_with(mail_config(smtp_url))
}

pub(crate) fn mailer_with(mail: MailConfig) -> Mailer {
    Mailer::from_config(&config(mail, Path::new("/nonexistent-data-dir")))
        .expect("mailer from config")
}

pub(crate) fn mailbox(name: &str, address: &str) -> Mailbox {
    Mailbox {
        name: name.to_owned(),
        address: address.to_owned(),
    }
}

/// Builds an invoice email to zoe (To), ap (Cc) and archive (Bcc).
pub(crate) fn invoice_email() -> OutgoingEmail {
    OutgoingEmail {
        from: None,
        to: vec![mailbox("Zoë Müller", "zoe@customer.example")],
        cc: vec![mailbox("Accounts Payable", "ap@customer.example")],
        bcc: vec![mailbox("", "archive@company.example")],
        subject: "Invoice 2024/001".to_owned(),
        text_body: "Please find invoice 2024/001 attached.\n".to_owned(),
        attachments: vec![Attachment {
            file_name: "invoice-2024-001.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            content: b"%PDF-1.7\n%%EOF\n".to_vec(),
        }],
        message_id: Some(MESSAGE_ID.to_owned()),
        delivery_key: Some("2024-001/r1/default/batch".to_owned()),
        ..OutgoingEmail::default()
    }
}

/// Returns how many commands starting with `verb` the server received.
pub(crate) fn command_count(server: &TestSmtpServer, verb: &str) -> usize {
    server
        .commands()
        .iter()
        .filter(|line| {
            line.eq_ignore_ascii_case(verb)
                || line.to_ascii_uppercase().starts_with(&format!("{verb} "))
        })
        .count()
}
