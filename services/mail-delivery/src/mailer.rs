//! The mailer: validates and renders each email, then hands it to SMTP or to the file
//! outbox, whichever the configuration selects.

use std::time::Duration;

use invoicer_kit::Config;

use crate::email::{DeliveryReport, OutgoingEmail};
use crate::error::MailDeliveryError;
use crate::message::{self, MessageDefaults};
use crate::outbox::Outbox;
use crate::smtp::SmtpMailer;
use crate::smtp_url::{SmtpUrl, TlsMode};

enum Transport {
    Smtp(SmtpMailer),
    Outbox(Outbox),
}

/// Sends one message per [`OutgoingEmail`]; built once from the configuration.
pub struct Mailer {
    transport: Transport,
    defaults: MessageDefaults,
}

impl Mailer {
    /// Reads the `mail` section: `smtp_url` selects SMTP, no URL selects the file outbox
    /// in `config.outbox_dir()`, which is created if missing.
    pub fn from_config(config: &Config) -> Result<Mailer, MailDeliveryError> {
        let defaults = MessageDefaults::from_config(&config.mail)?;
        let smtp_url = config
            .mail
            .smtp_url
            .as_deref()
            .filter(|url| !url.trim().is_empty());
        let transport = match smtp_url {
            Some(raw) => {
                let timeout = command_timeout(config.mail.timeout_secs)?;
                Transport::Smtp(SmtpMailer::new(SmtpUrl::parse(raw)?, timeout)?)
            }
            None => Transport::Outbox(Outbox::open(config.outbox_dir())?),
        };
        Ok(Mailer {
            transport,
            defaults,
        })
    }

    /// Logs which transport this mailer uses, without credentials.
    pub fn log_start(&self) {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let url = smtp.url();
                tracing::info!(
                    transport = if url.tls == TlsMode::Implicit { "smtps" } else { "smtp" },
                    address = %url.address(),
                    tls = url.tls.as_str(),
                    auth = url.credentials.is_some(),
                    timeout_secs = smtp.timeout().as_secs(),
                    "mail delivery started"
                );
                if url.credentials.is_some()
                    && matches!(url.tls, TlsMode::Plain | TlsMode::Opportunistic)
                {
                    tracing::warn!(
                        address = %url.address(),
                        tls = url.tls.as_str(),
                        "smtp credentials may cross the network in plain text; use tls=starttls or smtps://"
                    );
                }
            }
            Transport::Outbox(outbox) => {
                tracing::info!(transport = "outbox", folder = %outbox.dir().display(), "mail delivery started");
            }
        }
    }

    /// Validates and sends `email`. SMTP failures are outcomes in the report; only an
    /// invalid request (or a message lettre cannot build) is an error.
    pub async fn send(&self, email: OutgoingEmail) -> Result<DeliveryReport, MailDeliveryError> {
        let prepared = message::prepare(email, &self.defaults)?;
        let report = match &self.transport {
            Transport::Smtp(smtp) => smtp.send(&prepared).await,
            Transport::Outbox(outbox) => outbox.write(&prepared).await,
        };
        tracing::info!(
            message_id = %report.message_id,
            delivery_key = prepared.delivery_key.as_deref().unwrap_or_default(),
            recipients = report.recipients.len(),
            accepted = report.recipients.iter().filter(|r| r.accepted).count(),
            outcome = report.outcome.as_str(),
            size = report.message_size,
            "email send finished"
        );
        Ok(report)
    }
}

fn command_timeout(secs: u64) -> Result<Duration, MailDeliveryError> {
    if secs == 0 {
        return Err(MailDeliveryError::InvalidConfig {
            key: "timeout_secs",
            value: secs.to_string(),
            reason: "expected at least 1 second".to_owned(),
        });
    }
    Ok(Duration::from_secs(secs))
}
