//! Calls to invoice-query, pdf-render, mail-delivery and audit-log.

use chrono::{DateTime, Utc};
use invoicer_kit::config::CompanyConfig;
use invoicer_kit::{Channels, GrpcChannel, ServiceName};
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::audit_log::v1::audit_log_service_client::AuditLogServiceClient;
use invoicer_proto::invoice_query::v1 as iq;
use invoicer_proto::invoice_query::v1::invoice_query_service_client::InvoiceQueryServiceClient;
use invoicer_proto::mail_delivery::v1 as mail;
use invoicer_proto::mail_delivery::v1::mail_delivery_service_client::MailDeliveryServiceClient;
use invoicer_proto::pdf_render::v1 as pdf;
use invoicer_proto::pdf_render::v1::pdf_render_service_client::PdfRenderServiceClient;
use invoicer_proto::types::v1 as types;

use super::convert;
use crate::log::LogRecord;
use crate::model::Document;
use crate::upstream::{
    Contact, ContactRole, Customer, Invoice, InvoiceKind, InvoiceSummary, OutgoingEmail,
    SendOutcome, SendResult, UpstreamError,
};

/// PDFs with many pages and their email messages exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const LIST_PAGE_SIZE: u32 = 1000;

/// The invoice and customer exactly as invoice-query returned them.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawInvoice {
    invoice: types::Invoice,
    customer: types::Customer,
}

#[derive(Clone)]
pub(crate) struct Upstream {
    invoices: InvoiceQueryServiceClient<GrpcChannel>,
    renderer: PdfRenderServiceClient<GrpcChannel>,
    mailer: MailDeliveryServiceClient<GrpcChannel>,
    audit: AuditLogServiceClient<GrpcChannel>,
}

fn error(service: ServiceName, operation: &'static str, status: tonic::Status) -> UpstreamError {
    UpstreamError {
        service,
        operation,
        code: status.code(),
        message: status.message().to_owned(),
    }
}

impl Upstream {
    pub(crate) fn new(channels: &Channels) -> Upstream {
        Upstream {
            invoices: InvoiceQueryServiceClient::new(channels.get(ServiceName::InvoiceQuery))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            renderer: PdfRenderServiceClient::new(channels.get(ServiceName::PdfRender))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            mailer: MailDeliveryServiceClient::new(channels.get(ServiceName::MailDelivery))
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            audit: AuditLogServiceClient::new(channels.get(ServiceName::AuditLog)),
        }
    }

    /// Lists every posted invoice issued in `[since, before)`, oldest first, across all pages.
    pub(crate) async fn list_invoices(
        &self,
        before: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<InvoiceSummary>, UpstreamError> {
        let mut client = self.invoices.clone();
        let mut summaries = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = iq::ListInvoicesToNotifyRequest {
                issued_before: before.to_rfc3339(),
                issued_since: since.to_rfc3339(),
                kinds: Vec::new(),
                page_size: LIST_PAGE_SIZE,
                page_token: page_token.clone(),
            };
            let page = client
                .list_invoices_to_notify(request)
                .await
                .map_err(|s| error(ServiceName::InvoiceQuery, "ListInvoicesToNotify", s))?
                .into_inner();
            summaries.extend(page.invoices.into_iter().map(|s| InvoiceSummary {
                number: s.number,
                revision: s.revision,
                customer_code: s.customer_code,
            }));
            if page.next_page_token.is_empty() {
                return Ok(summaries);
            }
            page_token = page.next_page_token;
        }
    }

    pub(crate) async fn get_invoice(&self, number: &str) -> Result<Invoice, UpstreamError> {
        let response = self
            .invoices
            .clone()
            .get_invoice(iq::GetInvoiceRequest {
                number: number.to_owned(),
            })
            .await
            .map_err(|s| error(ServiceName::InvoiceQuery, "GetInvoice", s))?
            .into_inner();
        let missing = |field: &str| UpstreamError {
            service: ServiceName::InvoiceQuery,
            operation: "GetInvoice",
            code: tonic::Code::Internal,
            message: format!("response for invoice {number} has no {field}"),
        };
        let invoice = response.invoice.ok_or_else(|| missing("invoice"))?;
        let customer = response.customer.ok_or_else(|| missing("customer"))?;
        invoice_from_proto(invoice, customer)
    }

    /// Returns whether invoice-query has a customer with `code`.
    pub(crate) async fn customer_exists(&self, code: &str) -> Result<bool, UpstreamError> {
        let request = iq::GetCustomerRequest {
            code: code.to_owned(),
        };
        match self.invoices.clone().get_customer(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(error(ServiceName::InvoiceQuery, "GetCustomer", status)),
        }
    }

    pub(crate) async fn render(
        &self,
        invoice: &Invoice,
        seller: &CompanyConfig,
    ) -> Result<Document, UpstreamError> {
        let request = pdf::RenderInvoiceRequest {
            invoice: Some(invoice.raw.invoice.clone()),
            customer: Some(invoice.raw.customer.clone()),
            seller: Some(pdf::Seller {
                name: seller.name.clone(),
                address: seller.address.clone(),
                tax_id: seller.tax_id.clone(),
                email: seller.email.clone(),
                phone: seller.phone.clone(),
                website: seller.website.clone(),
            }),
            template: String::new(),
        };
        let rendered = self
            .renderer
            .clone()
            .render_invoice(request)
            .await
            .map_err(|s| error(ServiceName::PdfRender, "RenderInvoice", s))?
            .into_inner();
        Ok(Document {
            invoice_number: invoice.number.clone(),
            invoice_revision: invoice.revision,
            sha256: rendered.sha256,
            file_name: rendered.file_name,
            page_count: rendered.page_count,
            content: rendered.pdf,
            facts: Some(Box::new(invoice.facts())),
        })
    }

    pub(crate) async fn send(
        &self,
        email: &OutgoingEmail<'_>,
    ) -> Result<SendOutcome, UpstreamError> {
        // A retry after some recipients settled keeps the full To, Cc and Bcc lists, so the
        // headers stay as first sent, and names the settled ones in `skip_recipients`.
        let skip_recipients = match email.envelope {
            Some(envelope) => email
                .to
                .iter()
                .chain(email.cc)
                .chain(email.bcc)
                .filter(|mailbox| {
                    !envelope
                        .iter()
                        .any(|address| address.eq_ignore_ascii_case(&mailbox.address))
                })
                .map(|mailbox| mailbox.address.clone())
                .collect(),
            None => Vec::new(),
        };
        let request = mail::SendEmailRequest {
            from: Some(convert::mailbox(email.from)),
            to: email.to.iter().map(convert::mailbox).collect(),
            cc: email.cc.iter().map(convert::mailbox).collect(),
            bcc: email.bcc.iter().map(convert::mailbox).collect(),
            reply_to: email.reply_to.map(convert::mailbox),
            subject: email.subject.to_owned(),
            text_body: email.text_body.to_owned(),
            html_body: email.html_body.to_owned(),
            attachments: vec![mail::Attachment {
                file_name: email.attachment_name.to_owned(),
                content_type: "application/pdf".to_owned(),
                content: email.attachment.to_vec(),
            }],
            message_id: email.message_id.to_owned(),
            delivery_key: email.delivery_key.to_owned(),
            skip_recipients,
            // A 4xx to one RCPT defers that recipient only, and the others get the message now.
            defer_per_recipient: true,
        };
        let response = self
            .mailer
            .clone()
            .send_email(request)
            .await
            .map_err(|s| error(ServiceName::MailDelivery, "SendEmail", s))?
            .into_inner();
        let result = match types::DeliveryOutcome::try_from(response.outcome) {
            Ok(types::DeliveryOutcome::Sent) => SendResult::Sent,
            Ok(types::DeliveryOutcome::PartiallySent) => SendResult::PartiallySent,
            Ok(types::DeliveryOutcome::Deferred) => SendResult::Deferred,
            Ok(types::DeliveryOutcome::Failed) => SendResult::Failed,
            // Anything else leaves it open whether the message went out.
            _ => SendResult::Unknown,
        };
        Ok(SendOutcome {
            result,
            recipients: response
                .recipients
                .iter()
                .map(convert::recipient_from_proto)
                .collect(),
            server_reply: response.server_reply,
            destination: response.destination,
            error: response.error,
        })
    }

    pub(crate) async fn append_log(&self, record: &LogRecord<'_>) -> Result<(), UpstreamError> {
        let entry = convert::log_entry(record);
        self.audit
            .clone()
            .append_entry(audit::AppendEntryRequest {
                entry: Some(entry),
                idempotency_key: record.idempotency_key(),
            })
            .await
            .map_err(|s| error(ServiceName::AuditLog, "AppendEntry", s))?;
        Ok(())
    }
}

fn invoice_from_proto(
    invoice: types::Invoice,
    customer: types::Customer,
) -> Result<Invoice, UpstreamError> {
    let issued = DateTime::parse_from_rfc3339(&invoice.issued_at).map_err(|_| UpstreamError {
        service: ServiceName::InvoiceQuery,
        operation: "GetInvoice",
        code: tonic::Code::Internal,
        message: format!(
            "invoice {} has an invalid issued_at {:?}",
            invoice.number, invoice.issued_at
        ),
    })?;
    let kind = match types::InvoiceKind::try_from(invoice.kind) {
        Ok(types::InvoiceKind::CreditNote) => InvoiceKind::CreditNote,
        _ => InvoiceKind::Invoice,
    };
    let contacts = customer
        .contacts
        .iter()
        .map(|c| Contact {
            name: c.name.clone(),
            email: c.email.clone(),
            role: match types::RecipientRole::try_from(c.invoice_role) {
                Ok(types::RecipientRole::Cc) => ContactRole::Cc,
                Ok(types::RecipientRole::Bcc) => ContactRole::Bcc,
                Ok(types::RecipientRole::None) => ContactRole::None,
                // The export format's default role is `to`.
                _ => ContactRole::To,
            },
        })
        .collect();
    Ok(Invoice {
        number: invoice.number.clone(),
        revision: invoice.revision,
        kind,
        issued_date: issued.date_naive(),
        due_date: invoice.due_date.clone(),
        currency: invoice.currency.clone(),
        total: invoice.total.clone(),
        po_number: invoice.po_number.clone(),
        notify_opt_out: invoice.notify_opt_out,
        customer: Customer {
            code: customer.code.clone(),
            name: customer.name.clone(),
            language: customer.language.clone(),
            contacts,
        },
        raw: RawInvoice { invoice, customer },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::NaiveDate;
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::deliver::send_error_result;

    /// Calls SendEmail at `url` with an empty request, as the orchestrator's channels do, and
    /// returns the error it maps the failure to.
    async fn send_email_error(url: &str) -> UpstreamError {
        let channel = invoicer_kit::client::lazy_channel(url, None, &Default::default()).unwrap();
        let status = MailDeliveryServiceClient::new(channel)
            .send_email(mail::SendEmailRequest::default())
            .await
            .unwrap_err();
        error(ServiceName::MailDelivery, "SendEmail", status)
    }

    /// Returns whether `bytes`, the bytes an HTTP/2 client sent, contain a HEADERS frame, which
    /// starts a request.
    fn has_headers_frame(bytes: &[u8]) -> bool {
        // The connection preface, then frames of a 9-byte header and a payload.
        let mut rest = bytes.get(24..).unwrap_or_default();
        while rest.len() >= 9 {
            let length =
                usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            if rest[3] == 0x1 {
                return true;
            }
            rest = rest.get(9 + length..).unwrap_or_default();
        }
        false
    }

    /// A SendEmail that could not connect never reached mail-delivery, so the delivery is
    /// deferred and tried again.
    #[tokio::test]
    async fn send_to_closed_port_is_deferred() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let error = send_email_error(&format!("http://127.0.0.1:{port}")).await;
        assert_eq!(error.code, tonic::Code::Unavailable, "{error}");
        assert_eq!(send_error_result(&error), SendResult::Deferred, "{error}");
    }

    /// A SendEmail whose connection ends after the request went out may have reached the mail
    /// server (mail-delivery crashed during the send), so the delivery must become `unknown`,
    /// never deferred: a retry could send the invoice twice. Both a closed and a reset
    /// connection are checked.
    #[tokio::test]
    async fn send_cut_after_request_is_unknown() {
        for reset in [false, true] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut received: Vec<u8> = Vec::new();
                let mut buffer = [0u8; 4096];
                // Reads what the client sends for 200 ms, the request included.
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    loop {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => received.extend_from_slice(&buffer[..n]),
                        }
                    }
                })
                .await;
                if reset {
                    socket.set_zero_linger().unwrap();
                }
                has_headers_frame(&received)
            });
            let error = send_email_error(&format!("http://127.0.0.1:{port}")).await;
            assert!(server.await.unwrap(), "the request never went out");
            assert_eq!(
                send_error_result(&error),
                SendResult::Unknown,
                "reset {reset}: {error:?}"
            );
        }
    }

    /// The email prints the issue date of the PDF, which keeps the ERP's offset, not the UTC
    /// date, which is a day earlier here.
    #[test]
    fn issued_date_keeps_erp_offset() {
        let invoice = types::Invoice {
            number: "INV-1".to_owned(),
            issued_at: "2026-12-01T00:30:00+01:00".to_owned(),
            ..Default::default()
        };
        let invoice = invoice_from_proto(invoice, types::Customer::default()).unwrap();
        assert_eq!(
            invoice.issued_date,
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
    }
}
