//! Delivery over SMTP: one session per message, with a result per recipient.

mod outcome;
mod reply;
mod session;
mod stream;
mod tls;

use std::time::Duration;

use lettre::transport::smtp::extension::ClientId;
use tracing::Instrument;

use crate::email::DeliveryReport;
use crate::error::MailDeliveryError;
use crate::message::PreparedEmail;
use crate::smtp_url::SmtpUrl;
use tls::TlsSettings;

/// Sends messages to the server of one SMTP URL.
pub(crate) struct SmtpMailer {
    url: SmtpUrl,
    tls: TlsSettings,
    hello: ClientId,
    timeout: Duration,
}

impl SmtpMailer {
    /// Reads the URL's `ca_file`, if any; `default_timeout` applies unless the URL sets one.
    pub(crate) fn new(
        url: SmtpUrl,
        default_timeout: Duration,
    ) -> Result<SmtpMailer, MailDeliveryError> {
        let tls = TlsSettings::new(&url.host, url.ca_file.as_deref())?;
        // Without ehlo=, lettre uses the machine's host name.
        let hello = url
            .ehlo_name
            .clone()
            .map(ClientId::Domain)
            .unwrap_or_default();
        let timeout = url.timeout.unwrap_or(default_timeout);
        Ok(SmtpMailer {
            url,
            tls,
            hello,
            timeout,
        })
    }

    pub(crate) fn url(&self) -> &SmtpUrl {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn send(&self, email: &PreparedEmail) -> DeliveryReport {
        // No Message-ID: it contains an `@`, and span attributes carry no address.
        let span = tracing::info_span!(
            "smtp.send",
            server.address = %self.url.host,
            server.port = self.url.port,
        );
        session::send(self, email).instrument(span).await
    }
}
