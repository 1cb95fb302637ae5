//! The gRPC face of pdf-render: converts proto messages to the renderer's input, runs the
//! render on a render thread of its own, and maps render errors to `tonic::Status`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use chrono::{DateTime, NaiveDate};
use invoicer_kit::status;
use invoicer_proto::pdf_render::v1 as proto;
use invoicer_proto::pdf_render::v1::pdf_render_service_server::PdfRenderService;
use invoicer_proto::types::v1 as types;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::RenderError;
use crate::input::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};
use crate::render::{RenderedPdf, Renderer};

pub(crate) struct PdfRenderApi {
    renderer: Renderer,
    threads: Arc<RenderThreads>,
}

/// One render thread per core, each a rayon pool of one thread, taking render jobs from one
/// queue: more renders at once than cores only add latency, and each running render needs its
/// own working memory. A thread that finishes a render takes the next waiting job itself.
/// Before, the tokio thread handed each job to a free render thread, so every render waited
/// for that thread to get a core between two jobs and cost two more thread wake-ups. The
/// queue made batches 3 to 9 % faster (docs/benchmarks/batch.md, "The render queue").
///
/// Typst lays parts out in parallel and krilla defers parts of the PDF export, both on rayon.
/// On rayon's global pool, one worker per core, that work woke the other workers, whose
/// hand-offs and spinning cost more than they saved while another render kept the other core
/// busy anyway. In the batch benchmark (2 cores) a render then took 7.0 ms of CPU instead of
/// 5.0 ms. Inside a pool of one thread, rayon runs that work on the render's own thread.
struct RenderThreads {
    queue: Arc<RenderQueue>,
    /// The rayon pools, kept so that their threads live as long as the service. Each thread
    /// runs `RenderQueue::serve`.
    _pools: Vec<rayon::ThreadPool>,
}

type RenderJob = Box<dyn FnOnce() + Send>;

/// The render jobs waiting for a render thread, first come first served.
#[derive(Default)]
struct RenderQueue {
    state: Mutex<QueueState>,
    /// The condition variable signalled when a job arrives or the queue closes.
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<RenderJob>,
    /// Whether the service was dropped. The threads then finish the waiting jobs and end.
    closed: bool,
}

impl RenderThreads {
    fn new(count: usize) -> Result<RenderThreads, rayon::ThreadPoolBuildError> {
        let queue = Arc::new(RenderQueue::default());
        let pools = (0..count)
            .map(|index| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("pdf-render-{index}"))
                    .build()?;
                let queue = Arc::clone(&queue);
                // The loop runs on the pool's one thread, so rayon work inside a render runs
                // there too.
                pool.spawn(move || queue.serve());
                Ok(pool)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RenderThreads {
            queue,
            _pools: pools,
        })
    }

    /// Queues `job` for the next free render thread.
    fn submit(&self, job: RenderJob) {
        let mut state = self.queue.lock();
        state.jobs.push_back(job);
        drop(state);
        self.queue.changed.notify_one();
    }
}

impl Drop for RenderThreads {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.changed.notify_all();
    }
}

impl RenderQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs waiting jobs one after another until the queue is closed and empty.
    fn serve(&self) {
        loop {
            let mut state = self.lock();
            let job = loop {
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                if state.closed {
                    return;
                }
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            };
            drop(state);
            job();
        }
    }
}

/// Largest request accepted, in bytes; tonic's default, stated so that it is not changed by
/// accident. An invoice of the maximum number of lines with short texts fits.
const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Adds the gRPC server to `routes`, with one render thread per core.
pub(crate) fn add_service(
    routes: &mut tonic::service::RoutesBuilder,
    renderer: Renderer,
) -> Result<(), rayon::ThreadPoolBuildError> {
    let server =
        invoicer_proto::pdf_render::v1::pdf_render_service_server::PdfRenderServiceServer::new(
            PdfRenderApi::new(renderer)?,
        )
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    routes.add_service(server);
    Ok(())
}

impl PdfRenderApi {
    fn new(renderer: Renderer) -> Result<PdfRenderApi, rayon::ThreadPoolBuildError> {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        Ok(PdfRenderApi {
            renderer,
            threads: Arc::new(RenderThreads::new(cores)?),
        })
    }
}

#[tonic::async_trait]
impl PdfRenderService for PdfRenderApi {
    async fn render_invoice(
        &self,
        request: Request<proto::RenderInvoiceRequest>,
    ) -> Result<Response<proto::RenderInvoiceResponse>, Status> {
        let request = request.into_inner();
        crate::validate::render_invoice(&request)?;
        let number = request
            .invoice
            .as_ref()
            .map(|invoice| invoice.number.clone());
        let span = tracing::info_span!(
            "invoice.render",
            invoice.number = number.as_deref().unwrap_or_default(),
            template = %request.template,
        );
        async move {
            let input = render_input(request).inspect_err(|error| {
                tracing::warn!(error = %error.message(), "render request rejected");
            })?;
            let rendered = self.render_blocking(input).await?;
            tracing::info!(
                pages = rendered.page_count,
                bytes = rendered.bytes.len(),
                sha256 = %rendered.sha256,
                "invoice rendered"
            );
            Ok(Response::new(render_response(rendered)))
        }
        .instrument(span)
        .await
    }
}

impl PdfRenderApi {
    /// Runs the CPU-bound render on a render thread, so it never stalls the I/O threads, and
    /// waits for its result. The render thread sends the result back itself, because a hop
    /// through tokio's blocking pool adds a thread hand-off each way.
    async fn render_blocking(&self, input: RenderInput) -> Result<RenderedPdf, Status> {
        let renderer = self.renderer.clone();
        let span = tracing::Span::current();
        let started = std::time::Instant::now();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.threads.submit(Box::new(move || {
            // A caller that stopped waiting, such as at its deadline, needs no render.
            if sender.is_closed() {
                return;
            }
            let render = || {
                let _entered = span.enter();
                renderer.render(&input)
            };
            // A panic would end the render thread, so it is caught and returned.
            let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(render));
            // A caller that stopped waiting has dropped the receiver, and the result is dropped.
            let _ = sender.send(rendered);
        }));
        let outcome = receiver.await;
        invoicer_telemetry::metrics().record_render(started.elapsed());
        match outcome {
            Ok(Ok(result)) => result.map_err(render_status),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %message, "render panicked");
                Err(status::internal("rendering the invoice"))
            }
            Err(_closed) => {
                tracing::error!("render thread ended without a result");
                Err(status::internal("rendering the invoice"))
            }
        }
    }
}

/// Maps every render error to its gRPC status, logging the ones clients cannot act on.
fn render_status(error: RenderError) -> Status {
    match error {
        RenderError::UnknownTemplate { name, known } => status::invalid_argument(
            "template",
            format!(
                "unknown template {name:?}; known templates: {}",
                known.join(", ")
            ),
        ),
        RenderError::InvalidInput { field, message } => status::invalid_argument(field, message),
        // Permanent for this revision: the orchestrator ends the delivery as failed with this
        // message as its reason, and nothing is mailed.
        error @ RenderError::MissingGlyphs { .. } => {
            tracing::warn!(error = %error, "invoice has characters no bundled font covers");
            Status::failed_precondition(format!(
                "{error}; correct the text in the ERP or add a font that covers them"
            ))
        }
        RenderError::FacturX { message } => {
            tracing::error!(error = %message, "factur-x post-processing failed");
            status::internal("rendering the invoice")
        }
        RenderError::Compile {
            template,
            diagnostics,
        } => {
            tracing::error!(
                template,
                diagnostics = %diagnostics.join("; "),
                "typst compile failed"
            );
            status::internal("rendering the invoice")
        }
        RenderError::Export {
            template,
            diagnostics,
        } => {
            tracing::error!(template, diagnostics = %diagnostics.join("; "), "pdf export failed");
            status::internal("rendering the invoice")
        }
    }
}

/// Builds the gRPC request for `input`, for clients such as the benchmark.
pub fn render_request(input: &RenderInput) -> proto::RenderInvoiceRequest {
    let invoice = &input.invoice;
    proto::RenderInvoiceRequest {
        invoice: Some(types::Invoice {
            number: invoice.number.clone(),
            customer_code: input.customer.code.clone(),
            kind: match invoice.kind {
                InvoiceKind::Invoice => types::InvoiceKind::Invoice as i32,
                InvoiceKind::CreditNote => types::InvoiceKind::CreditNote as i32,
            },
            status: types::InvoiceStatus::Posted as i32,
            revision: invoice.revision,
            order_number: invoice.order_number.clone(),
            po_number: invoice.po_number.clone(),
            issued_at: invoice.issued_at.to_rfc3339(),
            due_date: invoice
                .due_date
                .map(|date| date.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            currency: invoice.currency.clone(),
            terms: invoice.terms.clone(),
            lines: invoice
                .lines
                .iter()
                .map(|line| types::InvoiceLine {
                    sku: line.sku.clone(),
                    description: line.description.clone(),
                    quantity: line.quantity.clone(),
                    unit: line.unit.clone(),
                    unit_price: line.unit_price.clone(),
                    amount: line.amount.clone(),
                    tax_rate: line.tax_rate.clone(),
                })
                .collect(),
            subtotal: invoice.subtotal.clone(),
            taxes: invoice
                .taxes
                .iter()
                .map(|tax| types::Tax {
                    name: tax.name.clone(),
                    rate: tax.rate.clone(),
                    amount: tax.amount.clone(),
                })
                .collect(),
            total: invoice.total.clone(),
            notes: invoice.notes.clone(),
            content_sha256: invoice.content_sha256.clone(),
            notify_opt_out: false,
        }),
        customer: Some(types::Customer {
            code: input.customer.code.clone(),
            name: input.customer.name.clone(),
            language: input.customer.language.clone(),
            address: input.customer.address.clone(),
            tax_id: input.customer.tax_id.clone(),
            contacts: Vec::new(),
        }),
        seller: Some(proto::Seller {
            name: input.seller.name.clone(),
            address: input.seller.address.clone(),
            tax_id: input.seller.tax_id.clone(),
            email: input.seller.email.clone(),
            phone: input.seller.phone.clone(),
            website: input.seller.website.clone(),
        }),
        template: input.template.clone(),
    }
}

fn render_response(rendered: RenderedPdf) -> proto::RenderInvoiceResponse {
    proto::RenderInvoiceResponse {
        pdf: rendered.bytes,
        sha256: rendered.sha256,
        page_count: rendered.page_count,
        file_name: rendered.file_name,
    }
}

fn render_input(request: proto::RenderInvoiceRequest) -> Result<RenderInput, Status> {
    let Some(invoice) = request.invoice else {
        return Err(status::invalid_argument(
            "invoice",
            "missing: send the invoice to render",
        ));
    };
    let Some(customer) = request.customer else {
        return Err(status::invalid_argument(
            "customer",
            "missing: send the invoice's customer",
        ));
    };
    let Some(seller) = request.seller else {
        return Err(status::invalid_argument(
            "seller",
            "missing: send the issuing company",
        ));
    };
    Ok(RenderInput {
        invoice: invoice_input(invoice)?,
        customer: customer_input(customer),
        seller: seller_input(seller),
        template: request.template,
    })
}

fn invoice_input(invoice: types::Invoice) -> Result<Invoice, Status> {
    let kind = invoice_kind(invoice.kind)?;
    let issued_at = DateTime::parse_from_rfc3339(invoice.issued_at.trim()).map_err(|_| {
        status::invalid_argument(
            "invoice.issued_at",
            format!(
                "{:?} is not an RFC 3339 timestamp with offset, such as 2026-12-03T16:20:00-06:00",
                invoice.issued_at
            ),
        )
    })?;
    let due_date = due_date(&invoice.due_date)?;
    Ok(Invoice {
        number: invoice.number,
        kind,
        revision: invoice.revision,
        order_number: invoice.order_number,
        po_number: invoice.po_number,
        issued_at,
        due_date,
        currency: invoice.currency,
        terms: invoice.terms,
        lines: invoice.lines.into_iter().map(line_input).collect(),
        subtotal: invoice.subtotal,
        taxes: invoice.taxes.into_iter().map(tax_input).collect(),
        total: invoice.total,
        notes: invoice.notes,
        content_sha256: invoice.content_sha256,
    })
}

fn invoice_kind(kind: i32) -> Result<InvoiceKind, Status> {
    match types::InvoiceKind::try_from(kind) {
        Ok(types::InvoiceKind::Invoice) => Ok(InvoiceKind::Invoice),
        Ok(types::InvoiceKind::CreditNote) => Ok(InvoiceKind::CreditNote),
        Ok(types::InvoiceKind::Unspecified) | Err(_) => Err(status::invalid_argument(
            "invoice.kind",
            format!("{kind} is not INVOICE_KIND_INVOICE or INVOICE_KIND_CREDIT_NOTE"),
        )),
    }
}

fn due_date(text: &str) -> Result<Option<NaiveDate>, Status> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            status::invalid_argument(
                "invoice.due_date",
                format!(
                    "{text:?} is not an ISO 8601 date such as 2027-01-02; send it empty for none"
                ),
            )
        })
}

fn line_input(line: types::InvoiceLine) -> InvoiceLine {
    InvoiceLine {
        sku: line.sku,
        description: line.description,
        quantity: line.quantity,
        unit: line.unit,
        unit_price: line.unit_price,
        amount: line.amount,
        tax_rate: line.tax_rate,
    }
}

fn tax_input(tax: types::Tax) -> Tax {
    Tax {
        name: tax.name,
        rate: tax.rate,
        amount: tax.amount,
    }
}

fn customer_input(customer: types::Customer) -> Customer {
    Customer {
        code: customer.code,
        name: customer.name,
        language: customer.language,
        address: customer.address,
        tax_id: customer.tax_id,
    }
}

fn seller_input(seller: proto::Seller) -> Seller {
    Seller {
        name: seller.name,
        address: seller.address,
        tax_id: seller.tax_id,
        email: seller.email,
        phone: seller.phone,
        website: seller.website,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn request() -> proto::RenderInvoiceRequest {
        proto::RenderInvoiceRequest {
            invoice: Some(types::Invoice {
                number: "INV-1".into(),
                kind: types::InvoiceKind::Invoice as i32,
                issued_at: "2026-12-03T16:20:00-06:00".into(),
                ..Default::default()
            }),
            customer: Some(types::Customer::default()),
            seller: Some(proto::Seller::default()),
            template: String::new(),
        }
    }

    fn rejected_field(request: proto::RenderInvoiceRequest) -> String {
        let status = render_input(request).expect_err("request should be rejected");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status
            .message()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn request_for_input_converts_back() {
        let input = crate::sample::invoice();
        let converted = render_input(render_request(&input)).unwrap();
        assert_eq!(converted, input);
    }

    #[test]
    fn input_accepts_minimal_request() {
        let input = render_input(request()).unwrap();
        assert_eq!(
            input.invoice.issued_at.to_rfc3339(),
            "2026-12-03T16:20:00-06:00"
        );
        assert_eq!(input.invoice.due_date, None);
    }

    #[test]
    fn input_rejects_missing_invoice() {
        assert_eq!(
            rejected_field(proto::RenderInvoiceRequest {
                invoice: None,
                ..request()
            }),
            "invoice"
        );
    }

    #[test]
    fn input_rejects_missing_customer() {
        let field = rejected_field(proto::RenderInvoiceRequest {
            customer: None,
            ..request()
        });
        assert_eq!(field, "customer");
    }

    #[test]
    fn input_rejects_missing_seller() {
        let field = rejected_field(proto::RenderInvoiceRequest {
            seller: None,
            ..request()
        });
        assert_eq!(field, "seller");
    }

    #[test]
    fn input_rejects_unspecified_kind() {
        let mut request = request();
        request.invoice.as_mut().unwrap().kind = types::InvoiceKind::Unspecified as i32;
        assert_eq!(rejected_field(request), "invoice.kind");
    }

    #[test]
    fn input_rejects_issued_at_without_offset() {
        let mut request = request();
        request.invoice.as_mut().unwrap().issued_at = "2026-12-03T16:20:00".into();
        assert_eq!(rejected_field(request), "invoice.issued_at");
    }

    #[test]
    fn input_rejects_invalid_due_date() {
        let mut request = request();
        request.invoice.as_mut().unwrap().due_date = "02.01.2027".into();
        assert_eq!(rejected_field(request), "invoice.due_date");
    }

    #[test]
    fn unknown_template_status_lists_known_templates() {
        let status = render_status(RenderError::UnknownTemplate {
            name: "fancy".into(),
            known: vec!["default"],
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("\"fancy\""),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("known templates: default"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn missing_glyphs_status_is_failed_precondition() {
        let status = render_status(RenderError::MissingGlyphs {
            characters: vec!['\u{0E01}'],
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("U+0E01"), "{}", status.message());
    }

    #[test]
    fn compile_error_status_hides_diagnostics() {
        let status = render_status(RenderError::Compile {
            template: "default",
            diagnostics: vec!["/default/invoice.typ:1:1: secret".into()],
        });
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"), "{}", status.message());
    }
}
