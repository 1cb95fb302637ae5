//! The SMTP security policy. Certificates are checked unless turned off for the named host,
//! and plain text goes only to loopback. The password comes from the environment or a file
//! and never reaches the logs, the report or a `Debug` output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use invoicer_kit::config::Secret;
use invoicer_mail_delivery::{Mailer, Outcome, SmtpStage};
use invoicer_test_smtp::TestSmtpServer;

use crate::support::{config, invoice_email, mail_config, mailer_with};

const PASSWORD: &str = "correct-horse-battery";

fn starttls_url(server: &TestSmtpServer) -> String {
    format!(
        "smtp://localhost:{}?tls=starttls",
        server.local_addr().port()
    )
}

#[tokio::test]
async fn untrusted_starttls_certificate_defers() -> Result<()> {
    let server = TestSmtpServer::builder().require_starttls().start().await?;

    let report = mailer_with(mail_config(starttls_url(&server)))
        .send(invoice_email())
        .await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert_eq!(report.stage, SmtpStage::StartTls);
    assert!(server.messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn skip_verify_accepts_starttls() -> Result<()> {
    let server = TestSmtpServer::builder().require_starttls().start().await?;
    let mut mail = mail_config(starttls_url(&server));
    mail.insecure_skip_verify_hosts = vec!["localhost".to_owned()];

    let report = mailer_with(mail).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(server.messages()[0].tls);
    Ok(())
}

#[tokio::test]
async fn skip_verify_accepts_implicit_tls() -> Result<()> {
    let server = TestSmtpServer::builder().implicit_tls().start().await?;
    let mut mail = mail_config(server.url());
    mail.insecure_skip_verify_hosts = vec!["127.0.0.1".to_owned()];

    let report = mailer_with(mail).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(server.messages()[0].tls);
    Ok(())
}

#[tokio::test]
async fn skip_verify_for_other_host_keeps_check() -> Result<()> {
    let server = TestSmtpServer::builder().implicit_tls().start().await?;
    let mut mail = mail_config(server.url());
    mail.insecure_skip_verify_hosts = vec!["localhost".to_owned()];

    let report = mailer_with(mail).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert_eq!(report.stage, SmtpStage::Connect);
    assert!(
        report.error.contains("TLS handshake failed"),
        "{}",
        report.error
    );
    Ok(())
}

#[test]
fn remote_plain_text_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let mail = mail_config("smtp://mail.example.com:25".to_owned());

    let error = Mailer::from_config(&config(mail, dir.path()))
        .err()
        .unwrap();

    let message = error.to_string();
    assert!(message.contains("without TLS"), "{message}");
    assert!(
        message.contains("mail.allow_plaintext_hosts = [\"mail.example.com\"]"),
        "{message}"
    );
}

#[tokio::test]
async fn password_from_environment_authenticates() -> Result<()> {
    let server = TestSmtpServer::builder()
        .credentials("billing", PASSWORD)
        .require_auth()
        .start()
        .await?;
    let mut mail = mail_config(format!("smtp://billing@{}", server.local_addr()));
    mail.password = Some(Secret::new(PASSWORD));

    let report = mailer_with(mail).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(
        server.messages()[0].authenticated_as.as_deref(),
        Some("billing")
    );
    Ok(())
}

#[tokio::test]
async fn password_from_file_authenticates() -> Result<()> {
    let server = TestSmtpServer::builder()
        .credentials("billing", PASSWORD)
        .require_auth()
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
    let mut mail = mail_config(format!("smtp://billing@{}", server.local_addr()));
    mail.password_file = Some(password_file);

    let report = mailer_with(mail).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    Ok(())
}

/// A `tracing` writer that keeps everything written, for reading back in the test.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn password_never_reaches_logs_or_report() -> Result<()> {
    let server = TestSmtpServer::builder()
        .credentials("billing", "the-server-wants-another")
        .require_auth()
        .start()
        .await?;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut mail = mail_config(format!("smtp://billing@{}", server.local_addr()));
    mail.password = Some(Secret::new(PASSWORD));
    let config_debug = format!("{mail:?}");

    let mailer = mailer_with(mail);
    mailer.log_start();
    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.stage, SmtpStage::Auth);
    let text = logs.text();
    assert!(text.contains("mail delivery started"), "{text}");
    assert!(text.contains("smtp send did not complete"), "{text}");
    assert!(text.contains(crate::support::MESSAGE_ID), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        !text.contains("Please find invoice"),
        "the body is not logged: {text}"
    );
    assert!(!format!("{report:?}").contains(PASSWORD));
    assert!(!config_debug.contains(PASSWORD), "{config_debug}");
    Ok(())
}
