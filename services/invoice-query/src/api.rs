//! The gRPC face of invoice-query: the only module that touches generated proto types. It
//! converts requests to domain types, calls `InvoiceQuery`, and maps every `QueryError` to a
//! `tonic::Status` in one match.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use invoicer_kit::status::{internal, invalid_argument, invalid_content};
use invoicer_proto::invoice_query::v1 as pb;
use invoicer_proto::types::v1 as types;
use pb::invoice_query_service_server::{InvoiceQueryService, InvoiceQueryServiceServer};
use tonic::{Request, Response, Status, Streaming};

use crate::error::QueryError;
use crate::model::{
    Contact, Customer, ImportCounts, ImportReport, InvoiceKind, InvoiceStatus, InvoiceSummary,
    RecipientRole, RecordType, Rejection, StoredInvoice,
};
use crate::paging::ListFilter;
use crate::service::{InvoiceQuery, ListRequest, MAX_DOCUMENT_BYTES};

/// Maximum size of one `UpsertInvoicesRequest` message, in bytes (tonic's default, stated
/// here so it is visible). Larger documents are sent as several chunks.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;

pub(crate) struct InvoiceQueryApi {
    service: Arc<InvoiceQuery>,
}

pub(crate) fn server(service: Arc<InvoiceQuery>) -> InvoiceQueryServiceServer<InvoiceQueryApi> {
    InvoiceQueryServiceServer::new(InvoiceQueryApi { service })
        .max_decoding_message_size(MAX_CHUNK_BYTES)
}

#[tonic::async_trait]
impl InvoiceQueryService for InvoiceQueryApi {
    #[tracing::instrument(name = "invoice_query.upsert_invoices", skip_all)]
    async fn upsert_invoices(
        &self,
        request: Request<Streaming<pb::UpsertInvoicesRequest>>,
    ) -> Result<Response<pb::UpsertInvoicesResponse>, Status> {
        let document = read_document(request.into_inner()).await?;
        let report = self.service.import(document).await.map_err(to_status)?;
        Ok(Response::new(report_to_proto(report)))
    }

    #[tracing::instrument(name = "invoice_query.get_invoice", skip_all, fields(invoice.number = %request.get_ref().number))]
    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let request = request.into_inner();
        crate::validate::get_invoice(&request)?;
        let number = request.number;
        if number.is_empty() {
            return Err(to_status(missing("number")));
        }
        let (invoice, customer) = self.service.get_invoice(&number).await.map_err(to_status)?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice_to_proto(invoice)),
            customer: Some(customer_to_proto(customer)),
        }))
    }

    #[tracing::instrument(name = "invoice_query.list_invoices_to_notify", skip_all)]
    async fn list_invoices_to_notify(
        &self,
        request: Request<pb::ListInvoicesToNotifyRequest>,
    ) -> Result<Response<pb::ListInvoicesToNotifyResponse>, Status> {
        let request = request.into_inner();
        crate::validate::list_invoices_to_notify(&request)?;
        let request = list_request_from_proto(request).map_err(to_status)?;
        let page = self
            .service
            .list_to_notify(request)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListInvoicesToNotifyResponse {
            invoices: page.invoices.into_iter().map(summary_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(name = "invoice_query.get_customer", skip_all, fields(customer = %request.get_ref().code))]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let request = request.into_inner();
        crate::validate::get_customer(&request)?;
        let code = request.code;
        if code.is_empty() {
            return Err(to_status(missing("code")));
        }
        let customer = self.service.get_customer(&code).await.map_err(to_status)?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(customer_to_proto(customer)),
        }))
    }
}

/// Maps every domain error to a gRPC status; this is the service's only such mapping. It logs
/// server-side failures with their details and gives the client a generic message.
fn to_status(error: QueryError) -> Status {
    match error {
        QueryError::MalformedDocument { .. } => {
            tracing::info!(%error, "import rejected as a whole");
            // The CLI puts the file name before it; "chunk", the field, means nothing there.
            invalid_content("chunk", error.to_string())
        }
        QueryError::DocumentTooLarge { .. } => {
            tracing::info!(%error, "import rejected as a whole");
            Status::resource_exhausted(error.to_string())
        }
        QueryError::InvoiceNotFound { .. } | QueryError::CustomerNotFound { .. } => {
            tracing::info!(%error, "lookup failed");
            Status::not_found(error.to_string())
        }
        QueryError::InvalidArgument { field, message } => {
            tracing::info!(field, reason = %message, "invalid request");
            invalid_argument(field, message)
        }
        QueryError::Store(source) => {
            tracing::error!(error = %source, "database access failed");
            internal("database access")
        }
        QueryError::Worker(reason) => {
            tracing::error!(error = %reason, "import worker failed");
            internal("import")
        }
    }
}

fn missing(field: &'static str) -> QueryError {
    QueryError::InvalidArgument {
        field,
        message: "missing required field".to_owned(),
    }
}

/// Concatenates the request chunks, stopping as soon as they exceed `MAX_DOCUMENT_BYTES`.
async fn read_document(
    mut stream: Streaming<pb::UpsertInvoicesRequest>,
) -> Result<Vec<u8>, Status> {
    let mut document = Vec::new();
    while let Some(message) = stream.message().await? {
        if document.len() + message.chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(to_status(QueryError::DocumentTooLarge {
                limit: MAX_DOCUMENT_BYTES,
            }));
        }
        document.extend_from_slice(&message.chunk);
    }
    Ok(document)
}

fn list_request_from_proto(
    request: pb::ListInvoicesToNotifyRequest,
) -> Result<ListRequest, QueryError> {
    let mut kinds = request
        .kinds
        .iter()
        .map(|value| kind_from_proto(*value))
        .collect::<Result<Vec<_>, _>>()?;
    kinds.sort();
    kinds.dedup();
    let filter = ListFilter {
        issued_since: parse_instant("issued_since", &request.issued_since)?,
        issued_before: parse_instant("issued_before", &request.issued_before)?,
        kinds,
    };
    Ok(ListRequest {
        filter,
        page_size: request.page_size,
        page_token: request.page_token,
    })
}

/// Parses an RFC 3339 request field; empty means no bound.
fn parse_instant(field: &'static str, text: &str) -> Result<Option<DateTime<Utc>>, QueryError> {
    if text.is_empty() {
        return Ok(None);
    }
    let instant = DateTime::parse_from_rfc3339(text).map_err(|error| QueryError::InvalidArgument {
        field,
        message: format!("invalid timestamp {text:?}: {error}; expected RFC 3339 such as \"2026-12-04T00:00:00Z\""),
    })?;
    Ok(Some(instant.with_timezone(&Utc)))
}

fn kind_from_proto(value: i32) -> Result<InvoiceKind, QueryError> {
    match types::InvoiceKind::try_from(value) {
        Ok(types::InvoiceKind::Invoice) => Ok(InvoiceKind::Invoice),
        Ok(types::InvoiceKind::CreditNote) => Ok(InvoiceKind::CreditNote),
        Ok(types::InvoiceKind::Unspecified) | Err(_) => Err(QueryError::InvalidArgument {
            field: "kinds",
            message: format!(
                "invalid invoice kind {value}: expected INVOICE_KIND_INVOICE or INVOICE_KIND_CREDIT_NOTE, \
                 or no kinds for every kind"
            ),
        }),
    }
}

fn kind_to_proto(kind: InvoiceKind) -> i32 {
    let kind = match kind {
        InvoiceKind::Invoice => types::InvoiceKind::Invoice,
        InvoiceKind::CreditNote => types::InvoiceKind::CreditNote,
    };
    kind as i32
}

fn status_to_proto(status: InvoiceStatus) -> i32 {
    let status = match status {
        InvoiceStatus::Draft => types::InvoiceStatus::Draft,
        InvoiceStatus::Posted => types::InvoiceStatus::Posted,
        InvoiceStatus::Void => types::InvoiceStatus::Void,
    };
    status as i32
}

fn role_to_proto(role: RecipientRole) -> i32 {
    let role = match role {
        RecipientRole::To => types::RecipientRole::To,
        RecipientRole::Cc => types::RecipientRole::Cc,
        RecipientRole::Bcc => types::RecipientRole::Bcc,
        RecipientRole::None => types::RecipientRole::None,
    };
    role as i32
}

fn invoice_to_proto(stored: StoredInvoice) -> types::Invoice {
    let invoice = stored.invoice;
    types::Invoice {
        number: invoice.number,
        customer_code: invoice.customer,
        kind: kind_to_proto(invoice.kind),
        status: status_to_proto(invoice.status),
        revision: stored.revision,
        order_number: invoice.order_number.unwrap_or_default(),
        po_number: invoice.po_number.unwrap_or_default(),
        issued_at: invoice.issued_at,
        due_date: invoice.due_date.unwrap_or_default(),
        currency: invoice.currency,
        terms: invoice.terms.unwrap_or_default(),
        lines: invoice
            .lines
            .into_iter()
            .map(|line| types::InvoiceLine {
                sku: line.sku.unwrap_or_default(),
                description: line.description.unwrap_or_default(),
                quantity: line.quantity.unwrap_or_default(),
                unit: line.unit.unwrap_or_default(),
                unit_price: line.unit_price.unwrap_or_default(),
                amount: line.amount,
                tax_rate: line.tax_rate.unwrap_or_default(),
            })
            .collect(),
        subtotal: invoice.subtotal,
        taxes: invoice
            .taxes
            .into_iter()
            .map(|tax| types::Tax {
                name: tax.name.unwrap_or_default(),
                rate: tax.rate.unwrap_or_default(),
                amount: tax.amount,
            })
            .collect(),
        total: invoice.total,
        notes: invoice.notes.unwrap_or_default(),
        content_sha256: stored.content_sha256,
        notify_opt_out: invoice.notify_opt_out,
    }
}

fn customer_to_proto(customer: Customer) -> types::Customer {
    types::Customer {
        code: customer.code,
        name: customer.name,
        language: customer.language.unwrap_or_default(),
        address: customer.address,
        tax_id: customer.tax_id.unwrap_or_default(),
        contacts: customer
            .contacts
            .into_iter()
            .map(contact_to_proto)
            .collect(),
    }
}

fn contact_to_proto(contact: Contact) -> types::Contact {
    types::Contact {
        name: contact.name,
        email: contact.email,
        invoice_role: role_to_proto(contact.invoice_role),
    }
}

fn summary_to_proto(summary: InvoiceSummary) -> pb::InvoiceSummary {
    pb::InvoiceSummary {
        number: summary.number,
        revision: summary.revision,
        customer_code: summary.customer_code,
        kind: kind_to_proto(summary.kind),
        issued_at: summary.issued_at,
        content_sha256: summary.content_sha256,
        notify_opt_out: summary.notify_opt_out,
    }
}

fn report_to_proto(report: ImportReport) -> pb::UpsertInvoicesResponse {
    pb::UpsertInvoicesResponse {
        customers: Some(counts_to_proto(report.customers)),
        invoices: Some(counts_to_proto(report.invoices)),
        rejections: report
            .rejections
            .into_iter()
            .map(rejection_to_proto)
            .collect(),
        warnings: report
            .warnings
            .into_iter()
            .map(rejection_to_proto)
            .collect(),
    }
}

fn counts_to_proto(counts: ImportCounts) -> pb::ImportCounts {
    pb::ImportCounts {
        created: counts.created,
        updated: counts.updated,
        unchanged: counts.unchanged,
        rejected: counts.rejected,
    }
}

fn rejection_to_proto(rejection: Rejection) -> pb::Rejection {
    let record_type = match rejection.record_type {
        RecordType::Unknown => pb::RecordType::Unspecified,
        RecordType::Customer => pb::RecordType::Customer,
        RecordType::Invoice => pb::RecordType::Invoice,
    };
    pb::Rejection {
        record_type: record_type as i32,
        key: rejection.key,
        field: rejection.field,
        message: rejection.message,
    }
}
