//! One SMTP session per message with lettre's low-level `AsyncSmtpConnection`: connect,
//! secure, authenticate, MAIL FROM, one RCPT TO per recipient, DATA. Unlike
//! `AsyncSmtpTransport::send`, it goes on after a rejected recipient, so each recipient
//! gets its own result.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::time::Instant;
use tracing::Instrument;

use super::SmtpMailer;
use super::outcome::{Attempt, Step, Stop, stop_at, stop_at_data_end};
use super::reply::{SmtpReply, StepError};
use super::stream::{self, DataProbe};
use crate::email::{DeliveryReport, Outcome};
use crate::message::{PreparedEmail, is_ascii_address};
use crate::smtp_url::TlsMode;

/// Maximum wait for the reply to QUIT. The message is settled by then.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The body write gets the command timeout once for every started MiB of message.
const WRITE_ALLOWANCE_BYTES: usize = 1 << 20;

const NEEDS_SMTPUTF8: &str = "the address needs SMTPUTF8, which the server does not advertise";

pub(super) async fn send(mailer: &SmtpMailer, email: &PreparedEmail) -> DeliveryReport {
    let mut attempt = Attempt::new(email);
    let result = match Session::open(mailer).await {
        Ok(mut session) => {
            let result = session.transact(&mut attempt).await;
            let quit = result
                .as_ref()
                .map_or_else(|stop| stop.connection_usable, |_| true);
            session.close(quit).await;
            result
        }
        Err(stop) => Err(stop),
    };
    if let Err(stop) = &result {
        tracing::warn!(
            message_id = %email.message_id,
            outcome = stop.outcome.as_str(),
            reply_code = stop.reply_code.unwrap_or_default(),
            error = %stop.error,
            "smtp send did not complete"
        );
    }
    attempt.into_report(result, mailer.url.destination())
}

struct Session<'m> {
    mailer: &'m SmtpMailer,
    destination: String,
    connection: AsyncSmtpConnection,
    probe: Arc<DataProbe>,
}

impl<'m> Session<'m> {
    /// Connects, reads the greeting, sends EHLO, then STARTTLS and AUTH as the URL sets.
    async fn open(mailer: &'m SmtpMailer) -> Result<Session<'m>, Stop> {
        let destination = mailer.url.destination();
        let (socket, probe) = stream::connect(&mailer.url, &mailer.tls, mailer.timeout)
            .instrument(tracing::info_span!("smtp.connect"))
            .await
            .map_err(|reason| {
                stop_at(Step::Connect, StepError::Connection(reason), &destination)
            })?;
        let hello = AsyncSmtpConnection::connect_with_transport(socket, &mailer.hello);
        let connection = timed(mailer.timeout, hello)
            .instrument(tracing::info_span!("smtp.ehlo"))
            .await
            .map_err(|error| stop_at(Step::GreetingOrEhlo, error, &destination))?;

        let mut session = Session {
            mailer,
            destination,
            connection,
            probe,
        };
        session.secure().await?;
        session.authenticate().await?;
        Ok(session)
    }

    fn supports(&self, extension: Extension) -> bool {
        self.connection.server_info().supports_feature(extension)
    }

    async fn secure(&mut self) -> Result<(), Stop> {
        let offered = self.connection.can_starttls();
        match self.mailer.url.tls {
            TlsMode::Plain | TlsMode::Implicit => return Ok(()),
            TlsMode::Opportunistic if !offered => {
                tracing::debug!(destination = %self.destination, "server offers no STARTTLS, sending in plain text");
                return Ok(());
            }
            TlsMode::StartTls if !offered => {
                let error = format!(
                    "{}: the server does not offer STARTTLS, which tls=starttls requires",
                    self.destination
                );
                return Err(Stop::by_client(Outcome::Deferred, error));
            }
            TlsMode::StartTls | TlsMode::Opportunistic => {}
        }
        let upgrade = self
            .connection
            .starttls(self.mailer.tls.starttls_parameters(), &self.mailer.hello);
        timed(self.mailer.timeout, upgrade)
            .await
            .map_err(|error| stop_at(Step::StartTls, error, &self.destination))
    }

    async fn authenticate(&mut self) -> Result<(), Stop> {
        let Some(credentials) = &self.mailer.url.credentials else {
            return Ok(());
        };
        let credentials =
            Credentials::new(credentials.username.clone(), credentials.password.clone());
        let login = self
            .connection
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials);
        timed(self.mailer.timeout, login)
            .await
            .map(drop)
            .map_err(|error| stop_at(Step::Auth, error, &self.destination))
    }

    async fn transact(&mut self, attempt: &mut Attempt<'_>) -> Result<SmtpReply, Stop> {
        let message = self.message_for_server(attempt)?;
        self.mail_from(attempt, &message)
            .instrument(tracing::info_span!("smtp.mail"))
            .await?;
        let recipients = attempt.pending().len();
        self.rcpt_to(attempt)
            .instrument(tracing::info_span!(
                "smtp.rcpt",
                smtp.recipients = recipients
            ))
            .await?;
        self.data(attempt, &message)
            .instrument(tracing::info_span!("smtp.data"))
            .await
    }

    /// Returns the message as this server can take it. Without SMTPUTF8, recipients with a
    /// non-ASCII address fail on their own and are left out of the headers too, because
    /// RFC 6531 allows UTF-8 headers only with SMTPUTF8.
    fn message_for_server<'e>(&self, attempt: &mut Attempt<'e>) -> Result<Cow<'e, [u8]>, Stop> {
        let email = attempt.email;
        if self.supports(Extension::SmtpUtfEight) {
            return Ok(Cow::Borrowed(&email.bytes));
        }
        if !is_ascii_address(&email.sender) {
            let error = format!(
                "{}: the sender address needs SMTPUTF8, which the server does not advertise",
                self.destination
            );
            return Err(Stop::by_client(Outcome::Failed, error));
        }
        let mut omitted = Vec::new();
        for (index, recipient) in email.recipients.iter().enumerate() {
            if !is_ascii_address(&recipient.address) {
                attempt.fail_locally(index, NEEDS_SMTPUTF8);
                omitted.push(recipient.address.clone());
            }
        }
        if omitted.is_empty() {
            return Ok(Cow::Borrowed(&email.bytes));
        }
        if attempt.pending().is_empty() {
            let error = format!(
                "{}: every recipient address needs SMTPUTF8, which the server does not advertise",
                self.destination
            );
            return Err(Stop::by_client(Outcome::Failed, error));
        }
        email
            .render_without(&omitted)
            .map(Cow::Owned)
            .map_err(|error| Stop::by_client(Outcome::Failed, error.to_string()))
    }

    async fn mail_from(&mut self, attempt: &Attempt<'_>, message: &[u8]) -> Result<(), Stop> {
        let email = attempt.email;
        let non_ascii_envelope = !is_ascii_address(&email.sender)
            || attempt
                .pending()
                .iter()
                .any(|&index| !is_ascii_address(&email.recipients[index].address));
        let mut parameters = Vec::new();
        if (non_ascii_envelope || !message.is_ascii()) && self.supports(Extension::SmtpUtfEight) {
            parameters.push(MailParameter::SmtpUtfEight);
        }
        // NOTE: lettre encodes bodies as 7bit, quoted-printable or base64, so only a
        // non-ASCII address in a header makes the message 8-bit.
        if !message.is_ascii() && self.supports(Extension::EightBitMime) {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let command = Mail::new(Some(email.sender.clone()), parameters);
        timed(self.mailer.timeout, self.connection.command(command))
            .await
            .map(drop)
            .map_err(|error| stop_at(Step::MailFrom, error, &self.destination))
    }

    async fn rcpt_to(&mut self, attempt: &mut Attempt<'_>) -> Result<(), Stop> {
        let email = attempt.email;
        for index in attempt.pending() {
            let recipient = &email.recipients[index];
            let command = Rcpt::new(recipient.address.clone(), Vec::new());
            let reply = match timed(self.mailer.timeout, self.connection.command(command)).await {
                Ok(response) => SmtpReply::from_response(&response),
                Err(StepError::Rejected(reply)) => {
                    tracing::info!(
                        message_id = %email.message_id,
                        reply_code = reply.code,
                        reply = %reply.text,
                        "recipient rejected"
                    );
                    reply
                }
                Err(error) => return Err(stop_at(Step::RcptTo, error, &self.destination)),
            };
            attempt.record_rcpt(index, &reply);
        }
        match attempt.stop_after_rcpts(&self.destination) {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    async fn data(&mut self, attempt: &mut Attempt<'_>, message: &[u8]) -> Result<SmtpReply, Stop> {
        timed(self.mailer.timeout, self.connection.command(Data))
            .await
            .map_err(|error| stop_at(Step::Data, error, &self.destination))?;
        attempt.message_size = message.len() as u64;
        self.probe.arm();
        match self.send_message(message).await {
            Ok(response) => Ok(SmtpReply::from_response(&response)),
            Err(error) => {
                let reply_awaited = self.probe.reply_wait_started().is_some();
                Err(stop_at_data_end(error, reply_awaited, &self.destination))
            }
        }
    }

    /// Sends the body and its final dot and reads the reply. Writing gets the command
    /// timeout once per started MiB; the reply gets the command timeout from the moment the
    /// client starts waiting for it.
    async fn send_message(&mut self, message: &[u8]) -> Result<Response, StepError> {
        let timeout = self.mailer.timeout;
        let started_mib = message.len().div_ceil(WRITE_ALLOWANCE_BYTES).max(1);
        let write_deadline =
            Instant::now() + timeout * u32::try_from(started_mib).unwrap_or(u32::MAX);
        let probe = self.probe.clone();
        let send = self.connection.message(message);
        tokio::pin!(send);
        loop {
            let reply_wait_started = probe.reply_wait_started();
            let deadline = reply_wait_started.map_or(write_deadline, |started| started + timeout);
            tokio::select! {
                result = &mut send => return result.map_err(|error| StepError::from_lettre(&error)),
                () = tokio::time::sleep_until(deadline) => return Err(StepError::TimedOut),
                () = probe.reply_wait_began(), if reply_wait_started.is_none() => {}
            }
        }
    }

    async fn close(mut self, quit: bool) {
        if !quit {
            return;
        }
        match tokio::time::timeout(QUIT_TIMEOUT, self.connection.quit()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(destination = %self.destination, %error, "QUIT failed")
            }
            Err(_) => tracing::debug!(destination = %self.destination, "QUIT timed out"),
        }
    }
}

/// Runs one lettre call within `timeout`.
async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, LettreError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StepError::from_lettre(&error)),
        Err(_) => Err(StepError::TimedOut),
    }
}
