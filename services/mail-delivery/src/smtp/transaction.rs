//! One mail transaction on an open session: the SIZE check, MAIL FROM, one RCPT TO per
//! recipient, DATA. Unlike `AsyncSmtpTransport::send`, it goes on after a rejected
//! recipient, so each recipient gets its own result.

use std::borrow::Cow;

use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::time::Instant;
use tracing::Instrument;

use super::outcome::{Attempt, Stop, stop_at, stop_at_data_end};
use super::reply::{SmtpReply, StepError};
use super::session::{Session, timed};
use crate::email::{Outcome, SmtpStage};
use crate::message::is_ascii_address;

/// The body write gets the command timeout once for every started MiB of message.
const WRITE_ALLOWANCE_BYTES: usize = 1 << 20;

const NEEDS_SMTPUTF8: &str = "the address needs SMTPUTF8, which the server does not advertise";

impl Session {
    /// Sends the attempt's message; returns the reply to the final dot, or why it stopped.
    pub(super) async fn transact(&mut self, attempt: &mut Attempt<'_>) -> Result<SmtpReply, Stop> {
        let message = self.message_for_server(attempt)?;
        self.check_size(message.len())?;
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
            return Err(Stop::by_client(Outcome::Failed, SmtpStage::MailFrom, error));
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
            return Err(Stop::by_client(Outcome::Failed, SmtpStage::MailFrom, error));
        }
        email
            .render_without(&omitted)
            .map(Cow::Owned)
            .map_err(|error| {
                Stop::by_client(Outcome::Failed, SmtpStage::MailFrom, error.to_string())
            })
    }

    /// Fails a message larger than the server's SIZE limit before MAIL FROM, so no DATA is
    /// sent for it.
    fn check_size(&self, size: usize) -> Result<(), Stop> {
        let Some(limit) = self.max_size else {
            return Ok(());
        };
        if size as u64 <= limit {
            return Ok(());
        }
        let error = format!(
            "{}: the message is {size} bytes, larger than the server's SIZE limit of {limit} \
             bytes",
            self.destination
        );
        Err(Stop::by_client(Outcome::Failed, SmtpStage::MailFrom, error))
    }

    async fn mail_from(&mut self, attempt: &mut Attempt<'_>, message: &[u8]) -> Result<(), Stop> {
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
        if self.max_size.is_some() {
            parameters.push(MailParameter::Size(message.len()));
        }
        let command = Mail::new(Some(email.sender.clone()), parameters);
        let response = timed(self.timeout, self.connection.command(command))
            .await
            .map_err(|error| stop_at(SmtpStage::MailFrom, error, &self.destination))?;
        attempt.last_reply = Some(SmtpReply::from_response(&response));
        Ok(())
    }

    async fn rcpt_to(&mut self, attempt: &mut Attempt<'_>) -> Result<(), Stop> {
        let email = attempt.email;
        for index in attempt.pending() {
            let recipient = &email.recipients[index];
            let command = Rcpt::new(recipient.address.clone(), Vec::new());
            let reply = match timed(self.timeout, self.connection.command(command)).await {
                Ok(response) => SmtpReply::from_response(&response),
                Err(StepError::Rejected(reply)) => {
                    tracing::info!(
                        message_id = %email.message_id,
                        recipient_index = index,
                        reply_code = reply.code,
                        reply = %reply.text,
                        transient = reply.is_transient(),
                        "recipient refused"
                    );
                    reply
                }
                Err(error) => return Err(stop_at(SmtpStage::RcptTo, error, &self.destination)),
            };
            attempt.record_rcpt(index, &reply);
        }
        match attempt.stop_after_rcpts(&self.destination) {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    async fn data(&mut self, attempt: &mut Attempt<'_>, message: &[u8]) -> Result<SmtpReply, Stop> {
        let response = timed(self.timeout, self.connection.command(Data))
            .await
            .map_err(|error| stop_at(SmtpStage::Data, error, &self.destination))?;
        attempt.last_reply = Some(SmtpReply::from_response(&response));
        attempt.message_size = message.len() as u64;
        self.probe.arm();
        let result = self.send_message(message).await;
        let reply_awaited = self.probe.reply_wait_started().is_some();
        self.probe.disarm();
        match result {
            Ok(response) => Ok(SmtpReply::from_response(&response)),
            Err(error) => Err(stop_at_data_end(error, reply_awaited, &self.destination)),
        }
    }

    /// Sends the body and its final dot and reads the reply. Writing gets the command
    /// timeout once per started MiB; the reply gets the command timeout from the moment the
    /// client starts waiting for it.
    async fn send_message(&mut self, message: &[u8]) -> Result<Response, StepError> {
        let timeout = self.timeout;
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
}
