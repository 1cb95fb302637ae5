//! Delivery over SMTP to one relay: pooled sessions, a result per recipient, and the
//! relay's limits on open connections and messages per second.

mod outcome;
mod pool;
mod rate;
mod reply;
mod session;
mod stream;
mod tls;
mod transaction;

use std::time::Duration;

use lettre::transport::smtp::extension::ClientId;
use tracing::Instrument;

use crate::email::{DeliveryReport, Outcome};
use crate::error::MailDeliveryError;
use crate::message::PreparedEmail;
use crate::smtp_url::{Credentials, SmtpUrl};
use outcome::{Attempt, Stop};
use pool::Pool;
use rate::RateLimit;
use reply::SmtpReply;
use tls::TlsSettings;

/// The settings of the relay besides its URL, from the `mail` section.
#[derive(Debug, Clone)]
pub(crate) struct RelaySettings {
    /// Applies unless the URL sets `timeout=`.
    pub(crate) default_timeout: Duration,
    /// Replaces the URL's credentials when set.
    pub(crate) credentials: Option<Credentials>,
    pub(crate) skip_certificate_check: bool,
    pub(crate) max_connections: usize,
    pub(crate) max_messages_per_second: f64,
    /// Zero closes each connection after its message.
    pub(crate) pool_idle_timeout: Duration,
}

/// Sends messages to the server of one SMTP URL.
pub(crate) struct SmtpMailer {
    url: SmtpUrl,
    tls: TlsSettings,
    hello: ClientId,
    timeout: Duration,
    credentials: Option<Credentials>,
    pool: Pool,
    rate: Option<RateLimit>,
    settings: RelaySettings,
}

impl SmtpMailer {
    /// Reads the URL's `ca_file`, if any.
    pub(crate) fn new(
        url: SmtpUrl,
        settings: RelaySettings,
    ) -> Result<SmtpMailer, MailDeliveryError> {
        let tls = TlsSettings::new(
            &url.host,
            url.ca_file.as_deref(),
            settings.skip_certificate_check,
        )?;
        // Without ehlo=, lettre uses the machine's host name.
        let hello = url
            .ehlo_name
            .clone()
            .map(ClientId::Domain)
            .unwrap_or_default();
        let timeout = url.timeout.unwrap_or(settings.default_timeout);
        let credentials = settings
            .credentials
            .clone()
            .or_else(|| url.credentials.clone());
        Ok(SmtpMailer {
            pool: Pool::new(settings.max_connections, settings.pool_idle_timeout),
            rate: RateLimit::new(settings.max_messages_per_second),
            url,
            tls,
            hello,
            timeout,
            credentials,
            settings,
        })
    }

    pub(crate) fn url(&self) -> &SmtpUrl {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub(crate) async fn send(&self, email: &PreparedEmail) -> DeliveryReport {
        // No Message-ID: it contains an `@`, and span attributes carry no address.
        let span = tracing::info_span!(
            "smtp.send",
            server.address = %self.url.host,
            server.port = self.url.port,
        );
        async {
            let mut attempt = Attempt::new(email);
            let result = self.deliver(&mut attempt).await;
            if let Err(stop) = &result {
                log_stop(email, stop);
            }
            attempt.into_report(result, self.url.destination())
        }
        .instrument(span)
        .await
    }

    /// Runs the attempt on a pooled or new session and returns the session to the pool when
    /// the server still replies.
    async fn deliver(&self, attempt: &mut Attempt<'_>) -> Result<SmtpReply, Stop> {
        let mut session = self.pool.checkout(self).await?;
        if let Some(rate) = &self.rate {
            rate.wait_turn().await;
        }
        let result = session.transact(attempt).await;
        let reusable = result
            .as_ref()
            .map_or_else(|stop| stop.connection_usable, |_| true);
        if reusable {
            self.pool.checkin(session).await;
        } else {
            self.pool.discard(session);
        }
        result
    }

    /// Closes the idle pooled connections with QUIT.
    pub(crate) async fn close(&self) {
        self.pool.close_idle().await;
    }
}

fn log_stop(email: &PreparedEmail, stop: &Stop) {
    let reply = stop
        .reply
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let retry = match stop.outcome {
        Outcome::Deferred => "the caller may retry",
        Outcome::Unknown => "maybe delivered, never retried automatically",
        _ => "not retried",
    };
    tracing::warn!(
        message_id = %email.message_id,
        delivery_key = email.delivery_key.as_deref().unwrap_or_default(),
        outcome = stop.outcome.as_str(),
        stage = stop.stage.as_str(),
        reply_code = stop.reply_code().unwrap_or_default(),
        reply = %reply,
        retry,
        error = %stop.error,
        "smtp send did not complete"
    );
}
