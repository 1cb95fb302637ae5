//! Helpers for mapping domain errors to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `InvalidArgument` naming the field, with a `BadRequest` detail a client can read.
pub fn invalid_argument(field: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    let details = ErrorDetails::with_bad_request_violation(field, message.clone());
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {message}"),
        details,
    )
}

/// Returns `InvalidArgument` as [`invalid_argument`] does, without the field before the
/// message. Use it for a field whose name means nothing to the reader, such as the chunks of an
/// uploaded file, when the message itself names what is wrong.
pub fn invalid_content(field: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    let details = ErrorDetails::with_bad_request_violation(field, message.clone());
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// `Internal` with a generic message; the caller logs the details, the client never sees them.
pub fn internal(context: &str) -> Status {
    Status::internal(format!("{context} failed; the server log has the details"))
}
