//! One send through a real SMTP server: aiosmtpd (PyPI) with its Mailbox handler, started
//! on a free loopback port. Without aiosmtpd the test is skipped with a message, unless
//! `INVOICER_TEST_REQUIRE_PEERS` is set, as CI sets it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use invoicer_mail_delivery::{Outcome, SmtpStage};
use mail_parser::{MessageParser, MimeHeaders};

use crate::support::{MESSAGE_ID, invoice_email, mailer};

/// Kills the server when the test ends, also on a failed assert.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn aiosmtpd_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn start_aiosmtpd(port: u16, maildir: &Path) -> Result<ServerProcess> {
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start python3 -m aiosmtpd")?;
    let process = ServerProcess(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("aiosmtpd did not listen on 127.0.0.1:{port} within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(process)
}

/// Returns the messages in the maildir's `new` folder.
fn maildir_messages(maildir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut messages = Vec::new();
    let new = maildir.join("new");
    if !new.exists() {
        return Ok(messages);
    }
    for entry in std::fs::read_dir(new)? {
        messages.push(std::fs::read(entry?.path())?);
    }
    Ok(messages)
}

#[tokio::test]
async fn aiosmtpd_stores_sent_message() -> Result<()> {
    if !aiosmtpd_installed() {
        if std::env::var_os("INVOICER_TEST_REQUIRE_PEERS").is_some() {
            bail!("aiosmtpd is not installed and INVOICER_TEST_REQUIRE_PEERS is set");
        }
        eprintln!(
            "SKIPPED aiosmtpd_stores_sent_message: aiosmtpd is not installed \
             (pip install aiosmtpd==1.4.6, or run .ci/run)"
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let maildir = dir.path().join("maildir");
    let port = free_loopback_port()?;
    let _server = start_aiosmtpd(port, &maildir)?;

    let mailer = mailer(format!("smtp://127.0.0.1:{port}"));
    let report = mailer.send(invoice_email()).await?;
    mailer.close().await;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.stage, SmtpStage::DataEnd);
    assert!(report.last_reply.starts_with("250"), "{report:?}");
    assert!(report.recipients.iter().all(|r| r.accepted), "{report:?}");
    let messages = maildir_messages(&maildir)?;
    assert_eq!(messages.len(), 1, "one copy in the mailbox");
    let message = MessageParser::default()
        .parse(&messages[0])
        .context("the stored message does not parse")?;
    assert_eq!(message.message_id(), Some(MESSAGE_ID));
    assert_eq!(message.subject(), Some("Invoice 2024/001"));
    assert!(message.bcc().is_none());
    let attachment = message.attachment(0).context("no attachment")?;
    assert_eq!(attachment.attachment_name(), Some("invoice-2024-001.pdf"));
    assert_eq!(attachment.contents(), b"%PDF-1.7\n%%EOF\n");
    Ok(())
}
