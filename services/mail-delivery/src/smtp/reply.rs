//! SMTP replies and step failures, converted from lettre's response and error types.

use std::error::Error as _;
use std::fmt;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::response::Response;

/// A reply code and its text (every line, joined with spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmtpReply {
    pub(crate) code: u16,
    pub(crate) text: String,
}

impl SmtpReply {
    pub(crate) fn from_response(response: &Response) -> SmtpReply {
        let text = response.message().collect::<Vec<_>>().join(" ");
        SmtpReply {
            code: u16::from(response.code()),
            text,
        }
    }

    pub(crate) fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// The failure of one session step that got no positive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepError {
    /// The server replied 4xx or 5xx.
    Rejected(SmtpReply),
    /// The connection failed or closed, or the reply did not parse.
    Connection(String),
    TimedOut,
}

impl StepError {
    pub(crate) fn from_lettre(error: &SmtpError) -> StepError {
        match error.status() {
            Some(code) => StepError::Rejected(SmtpReply {
                code: u16::from(code),
                text: error.source().map(ToString::to_string).unwrap_or_default(),
            }),
            None => StepError::Connection(error.to_string()),
        }
    }

    /// Returns the reply code, when there was a reply.
    pub(crate) fn reply_code(&self) -> Option<u16> {
        match self {
            StepError::Rejected(reply) => Some(reply.code),
            StepError::Connection(_) | StepError::TimedOut => None,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Rejected(reply) => write!(f, "rejected with {reply}"),
            StepError::Connection(reason) => f.write_str(reason),
            StepError::TimedOut => f.write_str("timed out"),
        }
    }
}
