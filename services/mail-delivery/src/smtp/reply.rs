//! SMTP replies and step failures, converted from lettre's response and error types. The
//! class of a reply comes from lettre's `Severity` (the first digit of the code) and the
//! class of an error from `Error::is_transient`, `is_permanent` and `is_timeout`.

use std::error::Error as _;
use std::fmt;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::response::{Code, Response, Severity};

/// A reply code with its class and text (every line, joined with spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmtpReply {
    pub(crate) code: u16,
    pub(crate) severity: Severity,
    pub(crate) text: String,
}

impl SmtpReply {
    pub(crate) fn from_response(response: &Response) -> SmtpReply {
        let text = response.message().collect::<Vec<_>>().join(" ");
        SmtpReply::new(response.code(), text)
    }

    pub(crate) fn new(code: Code, text: String) -> SmtpReply {
        SmtpReply {
            code: u16::from(code),
            severity: code.severity,
            text,
        }
    }

    /// Returns whether the reply is 2xx or 3xx.
    pub(crate) fn is_positive(&self) -> bool {
        matches!(
            self.severity,
            Severity::PositiveCompletion | Severity::PositiveIntermediate
        )
    }

    /// Returns whether the reply is 4xx: the same command may succeed later.
    pub(crate) fn is_transient(&self) -> bool {
        self.severity == Severity::TransientNegativeCompletion
    }

    /// Returns whether the reply is 5xx: the same command will fail again.
    pub(crate) fn is_permanent(&self) -> bool {
        self.severity == Severity::PermanentNegativeCompletion
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
    /// The connection failed or closed, TLS failed, or the reply did not parse.
    Connection(String),
    TimedOut,
}

impl StepError {
    pub(crate) fn from_lettre(error: &SmtpError) -> StepError {
        if (error.is_transient() || error.is_permanent())
            && let Some(code) = error.status()
        {
            let text = error.source().map(ToString::to_string).unwrap_or_default();
            return StepError::Rejected(SmtpReply::new(code, text));
        }
        if error.is_timeout() {
            return StepError::TimedOut;
        }
        StepError::Connection(error.to_string())
    }

    /// Returns the reply, when there was one.
    pub(crate) fn reply(&self) -> Option<&SmtpReply> {
        match self {
            StepError::Rejected(reply) => Some(reply),
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

/// Builds a reply from its three digits, for tests.
#[cfg(test)]
pub(crate) fn reply_from_digits(code: u16, text: &str) -> SmtpReply {
    let response = format!("{code} {text}\r\n");
    let response: Response = response.parse().expect("a valid SMTP reply");
    SmtpReply::from_response(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_class_follows_first_digit() {
        for (code, positive, transient, permanent) in [
            (250, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (452, false, true, false),
            (535, false, false, true),
            (554, false, false, true),
        ] {
            let reply = reply_from_digits(code, "x");
            assert_eq!(reply.code, code);
            assert_eq!(reply.is_positive(), positive, "{code} positive");
            assert_eq!(reply.is_transient(), transient, "{code} transient");
            assert_eq!(reply.is_permanent(), permanent, "{code} permanent");
        }
    }
}
