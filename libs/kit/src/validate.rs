//! Request checks at the gRPC boundary. A [`Violations`] collects every bad field of one
//! request, so the client learns them all at once, and becomes one INVALID_ARGUMENT status
//! with a `google.rpc.BadRequest` detail that names each field.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The maximum length of an email subject in bytes, RFC 5322's limit of a header line. The
/// orchestrator, mail-delivery and audit-log share it, so a subject one takes the others take.
pub const MAX_SUBJECT_BYTES: usize = 998;

/// The bad fields of one request, by their path such as `to[2].address`.
#[derive(Debug, Default)]
pub struct Violations {
    violations: Vec<FieldViolation>,
}

impl Violations {
    pub fn new() -> Violations {
        Violations::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field.into(), description.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Fields added so far, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.violations.iter().map(|v| v.field.as_str()).collect()
    }

    /// Checks that `value` has at most `max` bytes.
    pub fn max_len(&mut self, field: &str, value: &str, max: usize) {
        if value.len() > max {
            self.add(
                field,
                format!("is {} bytes long; the maximum is {max}", value.len()),
            );
        }
    }

    /// Checks that `value` is set (not blank) and has at most `max` bytes.
    pub fn required(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.add(field, "is missing");
        } else {
            self.max_len(field, value, max);
        }
    }

    /// Checks that `value` is one line of text: no control character, so no CR, LF or NUL
    /// can reach a mail header or an SMTP command, and at most `max` bytes.
    pub fn single_line(&mut self, field: &str, value: &str, max: usize) {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            self.add(
                field,
                format!("contains the control character {c:?}; use one line of plain text"),
            );
        } else {
            self.max_len(field, value, max);
        }
    }

    /// Checks that `value` (a body of text) has no NUL and at most `max` bytes. Line breaks
    /// and tabs are allowed.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.contains('\0') {
            self.add(field, "contains a NUL character");
        } else {
            self.max_len(field, value, max);
        }
    }

    /// Checks that a repeated field has at most `max` elements.
    pub fn max_count(&mut self, field: &str, count: usize, max: usize) {
        if count > max {
            self.add(field, format!("has {count} entries; the maximum is {max}"));
        }
    }

    /// Returns `Ok` without violations, else INVALID_ARGUMENT naming every field in its
    /// message and in a `BadRequest` detail.
    pub fn into_result(self) -> Result<(), Status> {
        if self.violations.is_empty() {
            return Ok(());
        }
        let summary: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        let message = summary.join("; ");
        tracing::warn!(fields = %self.fields().join(","), "request rejected: invalid argument");
        Err(Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(self.violations),
        ))
    }
}

/// Returns the field names of the `BadRequest` detail of `status`, empty when it has none.
pub fn bad_request_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Returns `field[index]`, the path of one element of a repeated field.
pub fn indexed(field: &str, index: usize) -> String {
    format!("{field}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(status: &Status) -> Vec<String> {
        status
            .get_error_details()
            .bad_request()
            .expect("a BadRequest detail")
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect()
    }

    #[test]
    fn no_violation_is_ok() {
        let mut violations = Violations::new();
        violations.single_line("subject", "Invoice 1", 100);
        violations.text("body", "line 1\r\nline 2\t", 100);
        violations.max_count("to", 3, 3);
        violations.required("reason", "lost", 10);
        assert!(violations.into_result().is_ok());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut violations = Violations::new();
        violations.single_line("subject", "Invoice\r\nBcc: x@y", 100);
        violations.single_line("name", "a\0b", 100);
        violations.text("body", "a\0", 100);
        violations.max_len("id", "abcdef", 5);
        violations.max_count("to", 4, 3);
        violations.required("reason", "  ", 10);
        let status = violations.into_result().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            fields(&status),
            ["subject", "name", "body", "id", "to", "reason"]
        );
        assert!(
            status
                .message()
                .contains("subject: contains the control character '\\r'")
        );
        assert!(
            status
                .message()
                .contains("to: has 4 entries; the maximum is 3")
        );
    }
}
