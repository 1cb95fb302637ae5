//! The orchestrator's errors; `api::server` maps each to a gRPC status in one match.

use crate::schedule::ScheduleError;
use crate::store::StoreError;
use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OrchestratorError {
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's role does not allow this request, even though it may call the RPC.
    #[error("{0}")]
    PermissionDenied(String),
    #[error(
        "batch {batch_id} for {business_date} is already running; watch it with `invoicer batch status {batch_id}`"
    )]
    BatchRunning {
        batch_id: String,
        business_date: String,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("email message: {0}")]
    Message(#[from] crate::message::MessageError),
}

impl OrchestratorError {
    /// Returns whether this replica lost a delivery's lease to another one, which then owns
    /// the delivery; the caller drops its work on it.
    pub(crate) fn is_lease_lost(&self) -> bool {
        matches!(self, OrchestratorError::Store(StoreError::LeaseLost { .. }))
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> OrchestratorError {
        OrchestratorError::InvalidArgument {
            field,
            message: message.into(),
        }
    }
}
