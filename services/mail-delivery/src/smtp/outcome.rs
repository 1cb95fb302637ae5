//! The rules that turn an SMTP session's replies into a [`DeliveryReport`]. ARCHITECTURE.md
//! has them as a table of reply class by stage.
//!
//! - Every RCPT accepted and a 2xx at the end of DATA: sent. Some RCPTs rejected with 5xx
//!   (or failed locally) and the rest delivered: partially sent.
//! - A 4xx reply, connection failure or timeout at any stage before the end of DATA:
//!   deferred, and nothing is sent. A 4xx to some RCPTs while others got 2xx defers the whole
//!   message too (the session quits before DATA), unless the request sets
//!   `defer_per_recipient`: then the message goes to the accepted recipients, the others are
//!   deferred, and the outcome is partially deferred.
//! - A 5xx at any stage (greeting, EHLO, STARTTLS, AUTH, MAIL FROM, DATA, end of DATA), or to
//!   every RCPT: failed, never retried.
//! - The connection lost or timed out after the final dot was written, before the reply:
//!   unknown, since the server may have accepted the message.

use crate::email::{DeliveryReport, Outcome, RecipientReport, SmtpStage};
use crate::message::PreparedEmail;
use crate::smtp::reply::{SmtpReply, StepError};

/// The reason a session ended without a 2xx at the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) outcome: Outcome,
    pub(crate) stage: SmtpStage,
    pub(crate) error: String,
    /// The reply to the end of DATA, when the session got that far.
    pub(crate) server_reply: String,
    /// The reply that ended the session, if one did.
    pub(crate) reply: Option<SmtpReply>,
    /// Whether the server still replies, so the connection can take a QUIT or the next
    /// message.
    pub(crate) connection_usable: bool,
}

impl Stop {
    /// Builds a stop that the client decides on while the connection works, such as for a
    /// missing STARTTLS or a message over the server's SIZE limit.
    pub(crate) fn by_client(outcome: Outcome, stage: SmtpStage, error: String) -> Stop {
        Stop {
            outcome,
            stage,
            error,
            server_reply: String::new(),
            reply: None,
            connection_usable: true,
        }
    }

    pub(crate) fn reply_code(&self) -> Option<u16> {
        self.reply.as_ref().map(|reply| reply.code)
    }
}

/// Builds the stop for `error` at `stage`, which comes before the end of DATA: a 5xx fails
/// the message, anything else defers it.
pub(crate) fn stop_at(stage: SmtpStage, error: StepError, destination: &str) -> Stop {
    let outcome = match &error {
        StepError::Rejected(reply) if reply.is_permanent() => Outcome::Failed,
        _ => Outcome::Deferred,
    };
    let stage_name = stage.as_str();
    let text = match &error {
        StepError::TimedOut => format!("{destination}: {stage_name} timed out"),
        StepError::Rejected(_) => format!("{destination}: {stage_name} {error}"),
        StepError::Connection(reason) => format!("{destination}: {stage_name} failed: {reason}"),
    };
    Stop {
        outcome,
        stage,
        error: text,
        server_reply: String::new(),
        reply: error.reply().cloned(),
        connection_usable: matches!(error, StepError::Rejected(_)),
    }
}

/// Builds the stop for `error` while sending the message body or waiting for the reply to
/// its final dot. `reply_awaited` is true when the final dot had been written.
pub(crate) fn stop_at_data_end(error: StepError, reply_awaited: bool, destination: &str) -> Stop {
    let (outcome, text, server_reply) = match &error {
        StepError::Rejected(reply) if reply.is_permanent() => (
            Outcome::Failed,
            format!("{destination}: the server rejected the message at the end of DATA: {reply}"),
            reply.to_string(),
        ),
        StepError::Rejected(reply) => (
            Outcome::Deferred,
            format!("{destination}: the server deferred the message at the end of DATA: {reply}"),
            reply.to_string(),
        ),
        _ if reply_awaited => (
            Outcome::Unknown,
            format!(
                "{destination}: {error} after the whole message was sent, before the server \
                 replied; the message may have been delivered, so it is not retried"
            ),
            String::new(),
        ),
        _ => (
            Outcome::Deferred,
            format!("{destination}: {error} while sending the message"),
            String::new(),
        ),
    };
    let stage = match &error {
        StepError::Rejected(_) => SmtpStage::DataEnd,
        _ if reply_awaited => SmtpStage::DataEnd,
        _ => SmtpStage::Data,
    };
    Stop {
        outcome,
        stage,
        error: text,
        server_reply,
        reply: error.reply().cloned(),
        connection_usable: matches!(error, StepError::Rejected(_)),
    }
}

/// The per-recipient state of one send.
pub(crate) struct Attempt<'e> {
    pub(crate) email: &'e PreparedEmail,
    recipients: Vec<RecipientReport>,
    /// RCPT TO got a 2xx.
    rcpt_accepted: Vec<bool>,
    /// Failed before RCPT TO, in the client.
    failed_locally: Vec<bool>,
    pub(crate) message_size: u64,
    /// The last reply the server sent in this send.
    pub(crate) last_reply: Option<SmtpReply>,
}

impl<'e> Attempt<'e> {
    pub(crate) fn new(email: &'e PreparedEmail) -> Attempt<'e> {
        let recipients = email
            .recipients
            .iter()
            .map(|recipient| RecipientReport {
                address: recipient.address.to_string(),
                role: recipient.role,
                accepted: false,
                reply_code: 0,
                reply_text: String::new(),
                outcome: Outcome::Deferred,
            })
            .collect();
        let count = email.recipients.len();
        Attempt {
            email,
            recipients,
            rcpt_accepted: vec![false; count],
            failed_locally: vec![false; count],
            message_size: 0,
            last_reply: None,
        }
    }

    /// Indexes of the recipients that still need a RCPT TO.
    pub(crate) fn pending(&self) -> Vec<usize> {
        (0..self.recipients.len())
            .filter(|&index| !self.failed_locally[index])
            .collect()
    }

    pub(crate) fn fail_locally(&mut self, index: usize, reason: &str) {
        self.failed_locally[index] = true;
        self.recipients[index].reply_text = reason.to_owned();
    }

    pub(crate) fn record_rcpt(&mut self, index: usize, reply: &SmtpReply) {
        self.rcpt_accepted[index] = reply.is_positive();
        self.recipients[index].reply_code = reply.code;
        self.recipients[index].reply_text = reply.text.clone();
        self.last_reply = Some(reply.clone());
    }

    /// Returns the stop once every RCPT TO got its reply: no 2xx at all defers the message
    /// after any 4xx and fails it otherwise, and a 4xx defers the whole message unless
    /// `defer_per_recipient` is set. `None` lets the session go on to DATA.
    pub(crate) fn stop_after_rcpts(&self, destination: &str) -> Option<Stop> {
        let transient: Vec<&RecipientReport> = self
            .recipients
            .iter()
            .filter(|r| (400..500).contains(&r.reply_code))
            .collect();
        let any_accepted = self.rcpt_accepted.contains(&true);
        let defer_all = !any_accepted || !self.email.defer_per_recipient;
        if let (Some(first), true) = (transient.first(), defer_all) {
            let deferred = if any_accepted {
                "the message is deferred for every recipient so that it goes out once"
            } else {
                "no recipient accepted it, so the message is deferred"
            };
            let error = format!(
                "{destination}: {} of {} recipients got a transient reply to RCPT TO (first: {} {}); \
                 {deferred}",
                transient.len(),
                self.recipients.len(),
                first.reply_code,
                first.reply_text,
            );
            return Some(Stop {
                reply: self.last_reply.clone(),
                ..Stop::by_client(Outcome::Deferred, SmtpStage::RcptTo, error)
            });
        }
        if !any_accepted {
            // Each recipient with its reply, or its local reason, so that the batch report
            // shows why without the email log.
            let replies: Vec<String> = self
                .recipients
                .iter()
                .map(|r| match r.reply_code {
                    0 => format!("{} ({})", r.address, r.reply_text),
                    code => format!("{} ({code} {})", r.address, r.reply_text),
                })
                .collect();
            let error = format!(
                "{destination}: every recipient was rejected: {}",
                replies.join(", ")
            );
            return Some(Stop {
                reply: self.last_reply.clone(),
                ..Stop::by_client(Outcome::Failed, SmtpStage::RcptTo, error)
            });
        }
        None
    }

    /// Returns the outcome of recipient `index`: its own when its RCPT TO was refused or it
    /// failed locally, otherwise `message_outcome`.
    fn recipient_outcome(&self, index: usize, message_outcome: Outcome) -> Outcome {
        let report = &self.recipients[index];
        if self.failed_locally[index] || (500..600).contains(&report.reply_code) {
            return Outcome::Failed;
        }
        if (400..500).contains(&report.reply_code) {
            return Outcome::Deferred;
        }
        message_outcome
    }

    /// Builds the report from the reply to the final dot, or from the reason the session
    /// stopped.
    pub(crate) fn into_report(
        mut self,
        result: Result<SmtpReply, Stop>,
        destination: String,
    ) -> DeliveryReport {
        let stop = match result {
            Ok(reply) => return self.delivered_report(reply, destination),
            Err(stop) => stop,
        };
        for index in 0..self.recipients.len() {
            self.recipients[index].outcome = match stop.outcome {
                Outcome::Failed => Outcome::Failed,
                outcome => self.recipient_outcome(index, outcome),
            };
        }
        let last_reply = stop.reply.clone().or(self.last_reply.clone());
        DeliveryReport {
            outcome: stop.outcome,
            recipients: self.recipients,
            server_reply: stop.server_reply,
            message_id: self.email.message_id.clone(),
            destination,
            error: stop.error,
            message_size: self.message_size,
            stage: stop.stage,
            last_reply: last_reply
                .map(|reply| reply.to_string())
                .unwrap_or_default(),
        }
    }

    fn delivered_report(mut self, reply: SmtpReply, destination: String) -> DeliveryReport {
        for index in 0..self.recipients.len() {
            let accepted = self.rcpt_accepted[index];
            self.recipients[index].accepted = accepted;
            // A recipient left out of DATA failed unless its RCPT TO got a 4xx.
            self.recipients[index].outcome = match accepted {
                true => Outcome::Sent,
                false => self.recipient_outcome(index, Outcome::Failed),
            };
        }
        let deferred = self.count(Outcome::Deferred);
        let failed = self.count(Outcome::Failed);
        let total = self.recipients.len();
        // The rest were accepted after DATA, at least one of them.
        let others = match total.saturating_sub(deferred + failed) {
            1 => "the other got the message",
            _ => "the others got the message",
        };
        let (outcome, error) = match (deferred, failed) {
            (0, 0) => (Outcome::Sent, String::new()),
            (0, _) => (
                Outcome::PartiallySent,
                format!(
                    "{failed} of {total} recipients {} rejected; {others}",
                    was_or_were(failed)
                ),
            ),
            _ => {
                let mut error = format!(
                    "{deferred} of {total} recipients got a transient reply and {} due a retry",
                    is_or_are(deferred)
                );
                if failed > 0 {
                    error.push_str(&format!(", {failed} {} rejected", was_or_were(failed)));
                }
                error.push_str("; ");
                error.push_str(others);
                (Outcome::PartiallyDeferred, error)
            }
        };
        DeliveryReport {
            outcome,
            recipients: self.recipients,
            server_reply: reply.to_string(),
            message_id: self.email.message_id.clone(),
            destination,
            error,
            message_size: self.message_size,
            stage: SmtpStage::DataEnd,
            last_reply: reply.to_string(),
        }
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.recipients
            .iter()
            .filter(|r| r.outcome == outcome)
            .count()
    }
}

fn was_or_were(count: usize) -> &'static str {
    if count == 1 { "was" } else { "were" }
}

fn is_or_are(count: usize) -> &'static str {
    if count == 1 { "is" } else { "are" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::reply_from_digits;

    const DESTINATION: &str = "smtp://127.0.0.1:2525";

    fn rejected(code: u16) -> StepError {
        StepError::Rejected(reply_from_digits(code, "x"))
    }

    #[test]
    fn stop_before_data_follows_reply_class() {
        let cases = [
            (
                SmtpStage::Connect,
                StepError::Connection("refused".to_owned()),
                Outcome::Deferred,
            ),
            (SmtpStage::Greeting, rejected(421), Outcome::Deferred),
            (SmtpStage::Greeting, rejected(554), Outcome::Failed),
            (SmtpStage::Ehlo, rejected(451), Outcome::Deferred),
            (SmtpStage::Ehlo, rejected(550), Outcome::Failed),
            (SmtpStage::StartTls, StepError::TimedOut, Outcome::Deferred),
            (SmtpStage::StartTls, rejected(454), Outcome::Deferred),
            (SmtpStage::Auth, rejected(454), Outcome::Deferred),
            (SmtpStage::Auth, rejected(535), Outcome::Failed),
            (SmtpStage::MailFrom, rejected(451), Outcome::Deferred),
            (SmtpStage::MailFrom, rejected(550), Outcome::Failed),
            (SmtpStage::RcptTo, StepError::TimedOut, Outcome::Deferred),
            (SmtpStage::Data, rejected(554), Outcome::Failed),
            (SmtpStage::Data, rejected(451), Outcome::Deferred),
        ];
        for (stage, error, expected) in cases {
            let stop = stop_at(stage, error.clone(), DESTINATION);
            assert_eq!(stop.outcome, expected, "{stage:?} {error}");
            assert_eq!(stop.stage, stage);
        }
    }

    #[test]
    fn stop_before_data_keeps_connection_only_after_a_reply() {
        assert!(stop_at(SmtpStage::MailFrom, rejected(550), DESTINATION).connection_usable);
        assert!(!stop_at(SmtpStage::MailFrom, StepError::TimedOut, DESTINATION).connection_usable);
    }

    #[test]
    fn stop_at_data_end_follows_reply_and_probe() {
        let cases = [
            (rejected(451), false, Outcome::Deferred, SmtpStage::DataEnd),
            (rejected(554), true, Outcome::Failed, SmtpStage::DataEnd),
            (
                StepError::Connection("incomplete response".to_owned()),
                true,
                Outcome::Unknown,
                SmtpStage::DataEnd,
            ),
            (
                StepError::TimedOut,
                true,
                Outcome::Unknown,
                SmtpStage::DataEnd,
            ),
            (
                StepError::Connection("broken pipe".to_owned()),
                false,
                Outcome::Deferred,
                SmtpStage::Data,
            ),
            (
                StepError::TimedOut,
                false,
                Outcome::Deferred,
                SmtpStage::Data,
            ),
        ];
        for (error, reply_awaited, expected, stage) in cases {
            let stop = stop_at_data_end(error.clone(), reply_awaited, DESTINATION);
            assert_eq!(
                stop.outcome, expected,
                "{error} reply_awaited={reply_awaited}"
            );
            assert_eq!(stop.stage, stage, "{error} reply_awaited={reply_awaited}");
        }
    }

    #[test]
    fn stop_at_data_end_keeps_server_reply() {
        let stop = stop_at_data_end(rejected(554), true, DESTINATION);
        assert_eq!(stop.server_reply, "554 x");
        assert_eq!(stop.reply_code(), Some(554));
        assert!(stop.error.starts_with(DESTINATION), "{}", stop.error);
    }
}
