//! The file outbox, used when no SMTP server is configured: each message becomes
//! `<name>.eml` in the outbox folder, with its envelope in `<name>.envelope.json` beside it.
//! Bcc recipients appear only in the envelope file. Both files are written to a temporary
//! file first and renamed, the envelope first, so a reader that sees the `.eml` also finds
//! its envelope.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::email::{DeliveryReport, Outcome, RecipientReport, Role, SmtpStage};
use crate::error::MailDeliveryError;
use crate::message::PreparedEmail;

const MAX_STEM_CHARS: usize = 150;
const OUTBOX_REPLY: &str = "written to the file outbox";

pub(crate) struct Outbox {
    dir: PathBuf,
}

/// The contents of `<name>.envelope.json`.
#[derive(Serialize)]
struct EnvelopeFile<'a> {
    mail_from: &'a str,
    rcpt_to: Vec<EnvelopeRecipient<'a>>,
    message_id: &'a str,
    delivery_key: Option<&'a str>,
    /// RFC 3339, UTC.
    written_at: String,
}

#[derive(Serialize)]
struct EnvelopeRecipient<'a> {
    address: &'a str,
    /// `to`, `cc` or `bcc`.
    role: &'static str,
}

impl Outbox {
    /// Creates the folder if it does not exist.
    pub(crate) fn open(dir: PathBuf) -> Result<Outbox, MailDeliveryError> {
        std::fs::create_dir_all(&dir).map_err(|source| MailDeliveryError::OutboxFolder {
            path: dir.clone(),
            source,
        })?;
        Ok(Outbox { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the message and its envelope. A write failure (a full disk, a permission)
    /// is reported as deferred, since it may pass.
    pub(crate) async fn write(&self, email: &PreparedEmail) -> DeliveryReport {
        let stem = file_stem(&email.message_id);
        let eml_path = self.dir.join(format!("{stem}.eml"));
        let envelope = envelope_json(email);
        let dir = self.dir.clone();
        let bytes = email.bytes.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_atomically(&dir, &format!("{stem}.envelope.json"), &envelope)?;
            write_atomically(&dir, &format!("{stem}.eml"), &bytes)
        })
        .await
        .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error.to_string())));

        match written {
            Ok(()) => written_report(email, &eml_path),
            Err(error) => {
                let error = format!("cannot write outbox file {}: {error}", eml_path.display());
                tracing::warn!(message_id = %email.message_id, %error, "outbox write failed");
                deferred_report(email, &eml_path, error)
            }
        }
    }
}

/// Derives a file name stem from the Message-ID: characters outside `[A-Za-z0-9._@+=-]` become `_`.
fn file_stem(message_id: &str) -> String {
    let safe =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '=' | '-');
    let stem: String = message_id
        .chars()
        .take(MAX_STEM_CHARS)
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    // A leading dot would hide the file and mark it as a temporary one.
    stem.trim_start_matches('.').to_owned()
}

fn envelope_json(email: &PreparedEmail) -> Vec<u8> {
    let rcpt_to = email
        .recipients
        .iter()
        .map(|recipient| EnvelopeRecipient {
            address: recipient.address.as_ref(),
            role: match recipient.role {
                Role::To => "to",
                Role::Cc => "cc",
                Role::Bcc => "bcc",
            },
        })
        .collect();
    let envelope = EnvelopeFile {
        mail_from: email.sender.as_ref(),
        rcpt_to,
        message_id: &email.message_id,
        delivery_key: email.delivery_key.as_deref(),
        written_at: chrono::Utc::now().to_rfc3339(),
    };
    let mut json = serde_json::to_vec_pretty(&envelope).expect("the envelope serializes to JSON");
    json.push(b'\n');
    json
}

/// Writes `bytes` to a hidden temporary file in `dir`, syncs it and renames it to `name`.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(dir.join(name)).map_err(|error| error.error)?;
    Ok(())
}

fn written_report(email: &PreparedEmail, eml_path: &Path) -> DeliveryReport {
    let recipients = recipient_reports(email, true);
    DeliveryReport {
        outcome: Outcome::Sent,
        recipients,
        server_reply: OUTBOX_REPLY.to_owned(),
        message_id: email.message_id.clone(),
        destination: eml_path.display().to_string(),
        error: String::new(),
        message_size: email.bytes.len() as u64,
        stage: SmtpStage::NoSession,
        last_reply: String::new(),
    }
}

fn deferred_report(email: &PreparedEmail, eml_path: &Path, error: String) -> DeliveryReport {
    DeliveryReport {
        outcome: Outcome::Deferred,
        recipients: recipient_reports(email, false),
        server_reply: String::new(),
        message_id: email.message_id.clone(),
        destination: eml_path.display().to_string(),
        error,
        message_size: 0,
        stage: SmtpStage::NoSession,
        last_reply: String::new(),
    }
}

fn recipient_reports(email: &PreparedEmail, accepted: bool) -> Vec<RecipientReport> {
    let reply_text = if accepted { OUTBOX_REPLY } else { "" };
    email
        .recipients
        .iter()
        .map(|recipient| RecipientReport {
            address: recipient.address.to_string(),
            role: recipient.role,
            accepted,
            reply_code: 0,
            reply_text: reply_text.to_owned(),
            outcome: if accepted {
                Outcome::Sent
            } else {
                Outcome::Deferred
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn file_stem_keeps_safe_characters() {
        assert_eq!(
            file_stem("0b6f-41@billing.example"),
            "0b6f-41@billing.example"
        );
    }

    #[test]
    fn file_stem_replaces_path_separators() {
        assert_eq!(file_stem("a/b\\c d@x"), "a_b_c_d@x");
    }

    #[test]
    fn file_stem_drops_leading_dots() {
        assert_eq!(file_stem("..hidden@x"), "hidden@x");
    }
}
