//! The OrchestratorService gRPC server.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::Stream;
use invoicer_kit::Caller;
use invoicer_kit::status::{internal, invalid_argument};
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::orchestrator::v1::orchestrator_service_server::OrchestratorService;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{convert, notifiers, validate};
use crate::batch::{BatchRequest, REPORT_ITEMS};
use crate::engine::{Engine, Progress, parse_lookback};
use crate::error::OrchestratorError;
use crate::model::BatchTrigger;
use crate::resend::ResendRequest;
use crate::store::ItemPageRequest;

const MAX_BATCH_PAGE: u32 = 100;
const DEFAULT_BATCH_PAGE: u32 = 20;

/// Largest response the server sends: previews carry whole PDFs.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Largest request accepted, in bytes: a notifier with the maximum of templates (32 languages,
/// two bodies of 64 KiB each) needs 4 MiB.
const MAX_REQUEST_BYTES: usize = 8 << 20;

/// Adds the gRPC server to `routes`.
pub(crate) fn add_service(routes: &mut tonic::service::RoutesBuilder, engine: Arc<Engine>) {
    let server = invoicer_proto::orchestrator::v1::orchestrator_service_server::OrchestratorServiceServer::new(
        OrchestratorApi { engine },
    )
    .max_encoding_message_size(MAX_MESSAGE_BYTES)
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    routes.add_service(server);
}

pub(crate) struct OrchestratorApi {
    engine: Arc<Engine>,
}

pub(super) fn to_status(error: OrchestratorError) -> Status {
    match error {
        OrchestratorError::InvalidArgument { field, message } => invalid_argument(field, message),
        OrchestratorError::NotFound(message) => Status::not_found(message),
        OrchestratorError::FailedPrecondition(message) => Status::failed_precondition(message),
        OrchestratorError::PermissionDenied(message) => Status::permission_denied(message),
        error @ OrchestratorError::BatchRunning { .. } => Status::aborted(error.to_string()),
        OrchestratorError::Upstream(error) => {
            tracing::error!(%error, "call to another service failed");
            match error.code {
                tonic::Code::Unavailable => Status::unavailable(format!(
                    "{} is unavailable; try again later",
                    error.service
                )),
                _ => Status::internal(format!(
                    "{} {} failed; the server log has the details",
                    error.service, error.operation
                )),
            }
        }
        OrchestratorError::Store(error) => {
            tracing::error!(%error, "orchestrator store failed");
            internal("orchestrator database access")
        }
        OrchestratorError::Schedule(error) => Status::failed_precondition(error.to_string()),
        OrchestratorError::Message(error) => {
            tracing::error!(%error, "email template failed");
            internal("rendering the email template")
        }
        OrchestratorError::Panicked { work, message } => {
            tracing::error!(work, panic = %message, "orchestrator code panicked");
            internal(work)
        }
    }
}

/// Reads a page token of the offset-paged lists: empty for the first page, else the
/// `next_page_token` of the previous page.
pub(super) fn parse_offset_token(token: &str) -> Result<u64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    token.parse::<u64>().map_err(|_| {
        invalid_argument(
            "page_token",
            format!("invalid page token {token:?}; pass the next_page_token of the previous page"),
        )
    })
}

/// Maximum deliveries in one GetBatch page, and the page size when the request sets none.
const MAX_ITEM_PAGE: u64 = REPORT_ITEMS;

/// Reads a page token of a batch's deliveries: empty for the first page, else the
/// `next_page_token` of the previous page, which is the last item id it held.
fn parse_item_token(token: &str) -> Result<i64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    match token.parse::<i64>() {
        Ok(after) if after > 0 => Ok(after),
        _ => Err(invalid_argument(
            "page_token",
            format!("invalid page token {token:?}; pass the next_page_token of the previous page"),
        )),
    }
}

fn item_token(next_after: Option<i64>) -> String {
    next_after
        .map(|after| after.to_string())
        .unwrap_or_default()
}

fn parse_instant(field: &'static str, value: &str) -> Result<Option<DateTime<Utc>>, Status> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            invalid_argument(
                field,
                format!(
                    "invalid RFC 3339 instant {value:?}; use a form such as 2026-12-04T02:00:00Z"
                ),
            )
        })
}

fn progress_message(progress: &Progress) -> pb::WatchBatchResponse {
    pb::WatchBatchResponse {
        batch_id: progress.batch_id.clone(),
        status: convert::batch_status(progress.status).into(),
        counts: Some(convert::counts(&progress.counts)),
        done: progress.done,
        delivery: progress.delivery.as_ref().map(convert::delivery),
        total: progress.total,
    }
}

impl OrchestratorApi {
    /// Finds the schedule's fire instant on the business date `text`.
    fn scheduled_fire(&self, text: &str) -> Result<crate::schedule::FireInstant, Status> {
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            invalid_argument(
                "business_date",
                format!("invalid date {text:?}; use the form 2026-12-04"),
            )
        })?;
        let fire = self
            .engine
            .schedule
            .fire_on(date)
            .map_err(|e| to_status(e.into()))?;
        let fire = fire.ok_or_else(|| {
            invalid_argument(
                "business_date",
                format!("the schedule does not fire on {date}; `invoicer schedule next` shows when it does"),
            )
        })?;
        // Running a future date now would use up that date's one scheduled batch early.
        if fire.at > Utc::now() {
            return Err(invalid_argument(
                "business_date",
                format!(
                    "the batch of {date} is due at {}; the scheduler runs it then",
                    fire.at.to_rfc3339()
                ),
            ));
        }
        Ok(fire)
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::WatchBatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl OrchestratorService for OrchestratorApi {
    async fn run_batch(
        &self,
        request: Request<pb::RunBatchRequest>,
    ) -> Result<Response<pb::RunBatchResponse>, Status> {
        let request = request.into_inner();
        validate::run_batch(&request)?;
        let lookback = if request.lookback.trim().is_empty() {
            self.engine.settings.lookback
        } else {
            parse_lookback("lookback", &request.lookback).map_err(to_status)?
        };
        let (cutoff, business_date, trigger) = match request.business_date.trim() {
            "" => {
                let cutoff = parse_instant("cutoff", &request.cutoff)?.unwrap_or_else(Utc::now);
                if cutoff > Utc::now() + chrono::Duration::minutes(1) {
                    return Err(invalid_argument(
                        "cutoff",
                        format!(
                            "{} is in the future; a batch only sends invoices already issued",
                            request.cutoff
                        ),
                    ));
                }
                let date = cutoff
                    .with_timezone(&self.engine.settings.timezone)
                    .date_naive();
                (cutoff, date, BatchTrigger::Manual)
            }
            text => {
                let fire = self.scheduled_fire(text)?;
                (fire.at, fire.business_date, BatchTrigger::Schedule)
            }
        };
        let batch_request = BatchRequest {
            cutoff,
            lookback,
            dry_run: request.dry_run,
            trigger,
            business_date,
        };
        // The batch runs in a task of its own: a client that stops waiting (its timeout,
        // Ctrl-C) drops this handler, and a batch dropped half-way would leave its claimed
        // deliveries pending and the batch marked running.
        let engine = Arc::clone(&self.engine);
        let task =
            tokio::spawn(async move { engine.run_batch(batch_request).await }.in_current_span());
        let report = match task.await {
            Ok(report) => report.map_err(to_status)?,
            Err(error) => {
                tracing::error!(%error, "batch task panicked");
                return Err(internal("running the batch"));
            }
        };
        Ok(Response::new(pb::RunBatchResponse {
            batch: Some(convert::batch(&report.batch, &report.counts, &report.items)),
            replayed: report.replayed,
            next_page_token: item_token(report.next_after),
        }))
    }

    type WatchBatchStream = ProgressStream;

    async fn watch_batch(
        &self,
        request: Request<pb::WatchBatchRequest>,
    ) -> Result<Response<Self::WatchBatchStream>, Status> {
        let batch_id = request.into_inner().batch_id;
        validate::batch_id("batch_id", &batch_id)?;
        if let Some(receiver) = self.engine.subscribe(&batch_id) {
            let stream = BroadcastStream::new(receiver)
                .filter_map(|event| event.ok().map(|p| Ok(progress_message(&p))));
            return Ok(Response::new(Box::pin(stream)));
        }
        // Not running here: one message with the final state.
        let batch = self
            .engine
            .store
            .get_batch(&batch_id)
            .await
            .map_err(|e| to_status(e.into()))?;
        let Some(batch) = batch else {
            return Err(Status::not_found(format!(
                "batch {batch_id:?} not found; `invoicer batch list` shows the batches"
            )));
        };
        let counts = self
            .engine
            .store
            .batch_counts(&batch.id)
            .await
            .map_err(|e| to_status(e.into()))?;
        let last = Progress {
            batch_id: batch.id.clone(),
            status: batch.status,
            counts,
            done: counts.eligible,
            delivery: None,
            total: counts.eligible,
        };
        let stream = tokio_stream::once(Ok(progress_message(&last)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_batch(
        &self,
        request: Request<pb::GetBatchRequest>,
    ) -> Result<Response<pb::GetBatchResponse>, Status> {
        let request = request.into_inner();
        validate::get_batch(&request)?;
        let id = request.id;
        let page = ItemPageRequest {
            after: parse_item_token(&request.page_token)?,
            limit: match request.page_size {
                0 => MAX_ITEM_PAGE,
                n => u64::from(n).min(MAX_ITEM_PAGE),
            },
            attention_only: request.attention_only,
        };
        let store = &self.engine.store;
        let batch = store
            .get_batch(&id)
            .await
            .map_err(|e| to_status(e.into()))?;
        let Some(batch) = batch else {
            return Err(Status::not_found(format!(
                "batch {id:?} not found; `invoicer batch list` shows the batches"
            )));
        };
        let counts = store
            .batch_counts(&batch.id)
            .await
            .map_err(|e| to_status(e.into()))?;
        let page = store
            .batch_items_page(&batch.id, &page)
            .await
            .map_err(|e| to_status(e.into()))?;
        Ok(Response::new(pb::GetBatchResponse {
            batch: Some(convert::batch(&batch, &counts, &page.items)),
            next_page_token: item_token(page.next_after),
        }))
    }

    async fn list_batches(
        &self,
        request: Request<pb::ListBatchesRequest>,
    ) -> Result<Response<pb::ListBatchesResponse>, Status> {
        let request = request.into_inner();
        validate::list_batches(&request)?;
        let page_size = match request.page_size {
            0 => DEFAULT_BATCH_PAGE,
            n => n.min(MAX_BATCH_PAGE),
        };
        let offset = parse_offset_token(&request.page_token)?;
        let store = &self.engine.store;
        let batches = store
            .list_batches(offset, u64::from(page_size) + 1)
            .await
            .map_err(|e| to_status(e.into()))?;
        let has_more = batches.len() > page_size as usize;
        let mut converted = Vec::new();
        for batch in batches.iter().take(page_size as usize) {
            let counts = store
                .batch_counts(&batch.id)
                .await
                .map_err(|e| to_status(e.into()))?;
            converted.push(convert::batch(batch, &counts, &[]));
        }
        let next_page_token = if has_more {
            (offset + u64::from(page_size)).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListBatchesResponse {
            batches: converted,
            next_page_token,
        }))
    }

    async fn resend_invoice(
        &self,
        request: Request<pb::ResendInvoiceRequest>,
    ) -> Result<Response<pb::ResendInvoiceResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        validate::resend_invoice(&request)?;
        let resend = ResendRequest {
            invoice_number: request.invoice_number,
            revision: request.revision,
            to: request.to,
            cc: request.cc,
            bcc: request.bcc,
            reason: request.reason,
            request_id: request.request_id,
            actor: caller.actor(&request.actor),
            caller_role: caller.role,
        };
        // The resend runs in a task of its own, as a batch does: a client that stops waiting
        // drops this handler, and a resend dropped while it submits would end `unknown`
        // although it may have gone out. A caller that set a request id gets the result by
        // sending the request again.
        let engine = Arc::clone(&self.engine);
        let task = tokio::spawn(async move { engine.resend(resend).await }.in_current_span());
        let result = match task.await {
            Ok(result) => result.map_err(to_status)?,
            Err(error) => {
                tracing::error!(%error, "resend task panicked");
                return Err(internal("resending the invoice"));
            }
        };
        Ok(Response::new(pb::ResendInvoiceResponse {
            delivery: Some(convert::delivery(&result.delivery)),
            replayed: result.replayed,
        }))
    }

    async fn preview_invoice(
        &self,
        request: Request<pb::PreviewInvoiceRequest>,
    ) -> Result<Response<pb::PreviewInvoiceResponse>, Status> {
        let request = request.into_inner();
        validate::preview_invoice(&request)?;
        if request.invoice_number.trim().is_empty() {
            return Err(invalid_argument(
                "invoice_number",
                "the invoice number is missing",
            ));
        }
        let preview = self
            .engine
            .preview(&request.invoice_number, request.revision)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::PreviewInvoiceResponse {
            pdf: preview.document.content,
            sha256: preview.document.sha256,
            page_count: preview.document.page_count,
            file_name: preview.document.file_name,
            subject: preview.subject,
            to: preview.recipients.to.iter().map(convert::mailbox).collect(),
            cc: preview.recipients.cc.iter().map(convert::mailbox).collect(),
            bcc: preview
                .recipients
                .bcc
                .iter()
                .map(convert::mailbox)
                .collect(),
        }))
    }

    async fn get_notifier(
        &self,
        request: Request<pb::GetNotifierRequest>,
    ) -> Result<Response<pb::GetNotifierResponse>, Status> {
        let request = request.into_inner();
        validate::customer_code(&request.customer_code)?;
        notifiers::get(&self.engine, request)
            .await
            .map(Response::new)
    }

    async fn update_notifier(
        &self,
        request: Request<pb::UpdateNotifierRequest>,
    ) -> Result<Response<pb::UpdateNotifierResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        validate::update_notifier(&request)?;
        notifiers::update(&self.engine, &caller, request)
            .await
            .map(Response::new)
    }

    async fn list_notifiers(
        &self,
        _request: Request<pb::ListNotifiersRequest>,
    ) -> Result<Response<pb::ListNotifiersResponse>, Status> {
        notifiers::list(&self.engine).await.map(Response::new)
    }

    async fn list_notifier_changes(
        &self,
        request: Request<pb::ListNotifierChangesRequest>,
    ) -> Result<Response<pb::ListNotifierChangesResponse>, Status> {
        let request = request.into_inner();
        validate::list_notifier_changes(&request)?;
        notifiers::changes(&self.engine, request)
            .await
            .map(Response::new)
    }
}
