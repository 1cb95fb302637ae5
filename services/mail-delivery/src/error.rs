//! Errors of mail-delivery. SMTP failures are not errors here: they are outcomes in the
//! [`DeliveryReport`](crate::email::DeliveryReport).

use std::path::PathBuf;

use crate::smtp_url::SMTP_URL_FORMS;

#[derive(Debug, thiserror::Error)]
pub enum MailDeliveryError {
    /// `mail.smtp_url` does not parse; `url` has its password replaced by `***`.
    #[error("invalid smtp_url {url}: {reason}; expected {SMTP_URL_FORMS}")]
    InvalidSmtpUrl { url: String, reason: String },

    /// The `ca_file` named in `mail.smtp_url` cannot be read or contains no certificate.
    #[error("invalid ca_file {path} in smtp_url: {reason}")]
    CaFile { path: PathBuf, reason: String },

    /// `mail.smtp_url` would send mail in plain text to a host other than loopback.
    #[error(
        "smtp_url {url} sends mail to {host} without TLS (tls={tls}); use tls=starttls or \
         smtps://, or allow plain text to this host with mail.allow_plaintext_hosts = [\"{host}\"]"
    )]
    PlaintextNotAllowed {
        url: String,
        host: String,
        tls: &'static str,
    },

    /// Another `mail.*` setting is invalid.
    #[error("invalid mail.{key} {value:?}: {reason}")]
    InvalidConfig {
        key: &'static str,
        value: String,
        reason: String,
    },

    /// The outbox folder cannot be created.
    #[error("cannot create outbox folder {path}: {source}")]
    OutboxFolder {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A request field is missing or invalid; `field` is its path, such as `to[1].address`.
    #[error("invalid {field}: {message}")]
    InvalidRequest { field: String, message: String },

    /// lettre refused to build a message from fields that passed validation.
    #[error("cannot build the message: {0}")]
    Build(String),
}

impl MailDeliveryError {
    pub(crate) fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        MailDeliveryError::InvalidRequest {
            field: field.into(),
            message: message.into(),
        }
    }
}
