//! The rules that turn an SMTP session's replies into a [`DeliveryReport`].
//!
//! - Every RCPT accepted and a 2xx at the end of DATA: sent. Some RCPTs rejected with 5xx
//!   (or failed locally) and the rest delivered: partially sent.
//! - Any 4xx reply, connection failure or timeout before the end of DATA: deferred, and
//!   nothing is sent. This includes a 4xx to one RCPT while others got 2xx: the session
//!   quits before DATA, so that a retry sends one message to every recipient instead of a
//!   second copy to the ones that already have it.
//! - A 5xx to MAIL FROM, to DATA, to the end of DATA, or to every RCPT: failed.
//! - A 5xx before MAIL FROM (greeting, EHLO, STARTTLS, AUTH) concerns the client's setup,
//!   such as wrong credentials, and not this message. So it defers the message, which goes
//!   out once the setup is fixed. The caller's attempt limit still ends the retries.
//! - The connection lost or timed out after the final dot was written, before the reply:
//!   unknown, since the server may have accepted the message.

use std::fmt;

use crate::email::{DeliveryReport, Outcome, RecipientReport};
use crate::message::PreparedEmail;
use crate::smtp::reply::{SmtpReply, StepError};

/// The steps of a session, named as in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Connect,
    /// lettre reads the greeting and sends EHLO in one call.
    GreetingOrEhlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
}

impl Step {
    /// Returns whether a 5xx reply at this step is about this message rather than the session.
    fn concerns_message(self) -> bool {
        matches!(self, Step::MailFrom | Step::RcptTo | Step::Data)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::GreetingOrEhlo => "greeting or EHLO",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::MailFrom => "MAIL FROM",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
        })
    }
}

/// The reason a session ended without a 2xx at the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) outcome: Outcome,
    pub(crate) error: String,
    /// The reply to the end of DATA, when the session got that far.
    pub(crate) server_reply: String,
    pub(crate) reply_code: Option<u16>,
    /// Whether the server still replies, so a QUIT is worth sending.
    pub(crate) connection_usable: bool,
}

impl Stop {
    /// Builds a stop that the client decides on while the connection works, such as for a
    /// missing STARTTLS.
    pub(crate) fn by_client(outcome: Outcome, error: String) -> Stop {
        Stop {
            outcome,
            error,
            server_reply: String::new(),
            reply_code: None,
            connection_usable: true,
        }
    }
}

/// Builds the stop for `error` at `step`, which comes before the end of DATA.
pub(crate) fn stop_at(step: Step, error: StepError, destination: &str) -> Stop {
    let outcome = match &error {
        StepError::Rejected(reply) if !reply.is_transient() && step.concerns_message() => {
            Outcome::Failed
        }
        _ => Outcome::Deferred,
    };
    let text = match &error {
        StepError::TimedOut => format!("{destination}: {step} timed out"),
        StepError::Rejected(_) => format!("{destination}: {step} {error}"),
        StepError::Connection(reason) => format!("{destination}: {step} failed: {reason}"),
    };
    Stop {
        outcome,
        error: text,
        server_reply: String::new(),
        reply_code: error.reply_code(),
        connection_usable: matches!(error, StepError::Rejected(_)),
    }
}

/// Builds the stop for `error` while sending the message body or waiting for the reply to
/// its final dot. `reply_awaited` is true when the final dot had been written.
pub(crate) fn stop_at_data_end(error: StepError, reply_awaited: bool, destination: &str) -> Stop {
    let (outcome, text, server_reply) = match &error {
        StepError::Rejected(reply) if reply.is_transient() => (
            Outcome::Deferred,
            format!("{destination}: the server deferred the message at the end of DATA: {reply}"),
            reply.to_string(),
        ),
        StepError::Rejected(reply) => (
            Outcome::Failed,
            format!("{destination}: the server rejected the message at the end of DATA: {reply}"),
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
    Stop {
        outcome,
        error: text,
        server_reply,
        reply_code: error.reply_code(),
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
            })
            .collect();
        let count = email.recipients.len();
        Attempt {
            email,
            recipients,
            rcpt_accepted: vec![false; count],
            failed_locally: vec![false; count],
            message_size: 0,
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
        self.rcpt_accepted[index] = (200..300).contains(&reply.code);
        self.recipients[index].reply_code = reply.code;
        self.recipients[index].reply_text = reply.text.clone();
    }

    /// Returns the stop once every RCPT TO got its reply: a 4xx defers the whole message and
    /// no 2xx at all fails it. `None` lets the session go on to DATA.
    pub(crate) fn stop_after_rcpts(&self, destination: &str) -> Option<Stop> {
        let transient: Vec<&RecipientReport> = self
            .recipients
            .iter()
            .filter(|r| (400..500).contains(&r.reply_code))
            .collect();
        if let Some(first) = transient.first() {
            let error = format!(
                "{destination}: {} of {} recipients got a transient reply to RCPT TO (first: {} {}); \
                 the message is deferred for every recipient so that it goes out once",
                transient.len(),
                self.recipients.len(),
                first.reply_code,
                first.reply_text,
            );
            return Some(Stop {
                reply_code: Some(first.reply_code),
                ..Stop::by_client(Outcome::Deferred, error)
            });
        }
        if !self.rcpt_accepted.contains(&true) {
            let error = format!("{destination}: every recipient was rejected");
            let reply_code = self
                .recipients
                .iter()
                .map(|r| r.reply_code)
                .find(|&code| code != 0);
            return Some(Stop {
                reply_code,
                ..Stop::by_client(Outcome::Failed, error)
            });
        }
        None
    }

    /// Builds the report from the reply to the final dot, or from the reason the session
    /// stopped.
    pub(crate) fn into_report(
        self,
        result: Result<SmtpReply, Stop>,
        destination: String,
    ) -> DeliveryReport {
        let message_id = self.email.message_id.clone();
        let mut recipients = self.recipients;
        let stop = match result {
            Ok(reply) => {
                for (report, accepted) in recipients.iter_mut().zip(&self.rcpt_accepted) {
                    report.accepted = *accepted;
                }
                let rejected = recipients.iter().filter(|r| !r.accepted).count();
                let (outcome, error) = match rejected {
                    0 => (Outcome::Sent, String::new()),
                    _ => (
                        Outcome::PartiallySent,
                        format!(
                            "{rejected} of {} recipients were rejected; the others got the message",
                            recipients.len()
                        ),
                    ),
                };
                return DeliveryReport {
                    outcome,
                    recipients,
                    server_reply: reply.to_string(),
                    message_id,
                    destination,
                    error,
                    message_size: self.message_size,
                };
            }
            Err(stop) => stop,
        };
        DeliveryReport {
            outcome: stop.outcome,
            recipients,
            server_reply: stop.server_reply,
            message_id,
            destination,
            error: stop.error,
            message_size: self.message_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESTINATION: &str = "smtp://127.0.0.1:2525";

    fn rejected(code: u16) -> StepError {
        StepError::Rejected(SmtpReply {
            code,
            text: "x".to_owned(),
        })
    }

    #[test]
    fn stop_before_data_follows_reply_class() {
        let cases = [
            (
                Step::Connect,
                StepError::Connection("refused".to_owned()),
                Outcome::Deferred,
            ),
            (Step::GreetingOrEhlo, rejected(421), Outcome::Deferred),
            (Step::GreetingOrEhlo, rejected(554), Outcome::Deferred),
            (Step::Auth, rejected(535), Outcome::Deferred),
            (Step::StartTls, StepError::TimedOut, Outcome::Deferred),
            (Step::MailFrom, rejected(451), Outcome::Deferred),
            (Step::MailFrom, rejected(550), Outcome::Failed),
            (Step::RcptTo, StepError::TimedOut, Outcome::Deferred),
            (Step::Data, rejected(554), Outcome::Failed),
            (Step::Data, rejected(451), Outcome::Deferred),
        ];
        for (step, error, expected) in cases {
            let stop = stop_at(step, error.clone(), DESTINATION);
            assert_eq!(stop.outcome, expected, "{step} {error}");
        }
    }

    #[test]
    fn stop_before_data_quits_only_after_a_reply() {
        assert!(stop_at(Step::MailFrom, rejected(550), DESTINATION).connection_usable);
        assert!(!stop_at(Step::MailFrom, StepError::TimedOut, DESTINATION).connection_usable);
    }

    #[test]
    fn stop_at_data_end_follows_reply_and_probe() {
        let cases = [
            (rejected(451), false, Outcome::Deferred),
            (rejected(554), true, Outcome::Failed),
            (
                StepError::Connection("incomplete response".to_owned()),
                true,
                Outcome::Unknown,
            ),
            (StepError::TimedOut, true, Outcome::Unknown),
            (
                StepError::Connection("broken pipe".to_owned()),
                false,
                Outcome::Deferred,
            ),
            (StepError::TimedOut, false, Outcome::Deferred),
        ];
        for (error, reply_awaited, expected) in cases {
            let stop = stop_at_data_end(error.clone(), reply_awaited, DESTINATION);
            assert_eq!(
                stop.outcome, expected,
                "{error} reply_awaited={reply_awaited}"
            );
        }
    }

    #[test]
    fn stop_at_data_end_keeps_server_reply() {
        let stop = stop_at_data_end(rejected(554), true, DESTINATION);
        assert_eq!(stop.server_reply, "554 x");
        assert_eq!(stop.reply_code, Some(554));
        assert!(stop.error.starts_with(DESTINATION), "{}", stop.error);
    }
}
