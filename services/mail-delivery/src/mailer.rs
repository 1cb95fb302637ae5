//! The mailer: validates and renders each email, then hands it to SMTP or to the file
//! outbox, whichever the configuration selects.

use invoicer_kit::Config;

use crate::email::{DeliveryReport, OutgoingEmail};
use crate::error::MailDeliveryError;
use crate::message::{self, MessageDefaults};
use crate::outbox::Outbox;
use crate::relay;
use crate::smtp::SmtpMailer;
use crate::smtp_url::{SmtpUrl, TlsMode};

enum Transport {
    // Boxed because the SMTP mailer, with its pool and TLS settings, is far larger.
    Smtp(Box<SmtpMailer>),
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
        let transport = match smtp_mailer(config)? {
            Some(smtp) => Transport::Smtp(Box::new(smtp)),
            None => Transport::Outbox(Outbox::open(config.outbox_dir())?),
        };
        Ok(Mailer {
            transport,
            defaults,
        })
    }

    /// Checks the `mail` section as `from_config` reads it, without creating the outbox
    /// folder.
    pub fn check_config(config: &Config) -> Result<(), MailDeliveryError> {
        MessageDefaults::from_config(&config.mail)?;
        smtp_mailer(config)?;
        Ok(())
    }

    /// Logs which transport this mailer uses, without credentials.
    pub fn log_start(&self) {
        match &self.transport {
            Transport::Smtp(smtp) => log_smtp_start(smtp),
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
            stage = report.stage.as_str(),
            last_reply = %report.last_reply,
            size = report.message_size,
            "email send finished"
        );
        Ok(report)
    }

    /// Closes the pooled SMTP connections with QUIT; a later send opens new ones.
    pub async fn close(&self) {
        if let Transport::Smtp(smtp) = &self.transport {
            smtp.close().await;
        }
    }
}

/// Builds the SMTP mailer that `mail.smtp_url` selects, or returns `None` when it is unset or
/// blank, which selects the file outbox.
fn smtp_mailer(config: &Config) -> Result<Option<SmtpMailer>, MailDeliveryError> {
    let Some(raw) = config
        .mail
        .smtp_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
    else {
        return Ok(None);
    };
    let url = SmtpUrl::parse(raw)?;
    let settings = relay::settings(&config.mail, &url)?;
    Ok(Some(SmtpMailer::new(url, settings)?))
}

fn log_smtp_start(smtp: &SmtpMailer) {
    let url = smtp.url();
    let settings = smtp.settings();
    tracing::info!(
        transport = if url.tls == TlsMode::Implicit { "smtps" } else { "smtp" },
        address = %url.address(),
        tls = url.tls.as_str(),
        auth = smtp.has_credentials(),
        timeout_secs = smtp.timeout().as_secs(),
        max_connections = settings.max_connections,
        max_messages_per_second = settings.max_messages_per_second,
        pool_idle_secs = settings.pool_idle_timeout.as_secs(),
        "mail delivery started"
    );
    if smtp.has_credentials() && url.may_send_plaintext() {
        tracing::warn!(
            address = %url.address(),
            tls = url.tls.as_str(),
            "smtp credentials may cross the network in plain text; use tls=starttls or smtps://"
        );
    }
    if settings.skip_certificate_check {
        tracing::warn!(
            address = %url.address(),
            "smtp server certificate is not checked (mail.insecure_skip_verify_hosts)"
        );
    }
}
