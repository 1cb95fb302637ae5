//! The orchestrator's errors; `api::server` maps each to a gRPC status in one match.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

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
    /// A panic in the orchestrator's code, which is a bug. The task that ran the code goes on.
    #[error("{work} panicked: {message}")]
    Panicked { work: &'static str, message: String },
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

/// Returns `future` with a panic inside it turned into `OrchestratorError::Panicked`, named by
/// `work`. So a bug met by one delivery or one round ends that work with an error, as a
/// storage error would, and the task that runs batches, retries or the schedule goes on. The
/// caller logs the error. The future is boxed: guards nested in one another would otherwise
/// each hold a copy of the inner future's size, and a debug build's worker stack overflowed.
pub(crate) fn catch_panic<'a, T: 'a>(
    work: &'static str,
    future: impl Future<Output = Result<T, OrchestratorError>> + 'a,
) -> impl Future<Output = Result<T, OrchestratorError>> + 'a {
    AssertUnwindSafe(Box::pin(future))
        .catch_unwind()
        .map(move |caught| match caught {
            Ok(result) => result,
            Err(payload) => Err(OrchestratorError::Panicked {
                work,
                message: panic_message(payload.as_ref()),
            }),
        })
}

/// Returns the text a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panic_becomes_error_with_text() {
        let error = catch_panic("delivery attempt", async {
            tokio::task::yield_now().await;
            let invoice = "INV-7";
            if !invoice.is_empty() {
                panic!("no recipients for {invoice}");
            }
            Ok::<(), OrchestratorError>(())
        })
        .await
        .unwrap_err();

        let OrchestratorError::Panicked { work, message } = &error else {
            panic!("expected Panicked, got {error:?}");
        };
        assert_eq!(*work, "delivery attempt");
        assert_eq!(message, "no recipients for INV-7");
        assert_eq!(
            error.to_string(),
            "delivery attempt panicked: no recipients for INV-7"
        );
    }

    #[tokio::test]
    async fn static_text_panic_keeps_its_text() {
        let error = catch_panic("retry round", async {
            if std::hint::black_box(true) {
                panic!("out of range");
            }
            Ok::<u32, OrchestratorError>(1)
        })
        .await
        .unwrap_err();

        assert_eq!(error.to_string(), "retry round panicked: out of range");
    }

    #[tokio::test]
    async fn result_without_panic_passes_through() {
        let ok = catch_panic("retry round", async { Ok::<u32, OrchestratorError>(7) }).await;
        assert_eq!(ok.unwrap(), 7);

        let error = catch_panic("retry round", async {
            Err::<u32, OrchestratorError>(OrchestratorError::NotFound("delivery d-1".to_owned()))
        })
        .await
        .unwrap_err();
        assert!(matches!(error, OrchestratorError::NotFound(_)), "{error:?}");
    }

    #[test]
    fn payload_without_text_is_named() {
        assert_eq!(panic_message(&42_u32), "a panic without a message");
    }
}
