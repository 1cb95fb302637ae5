//! The orchestrator's own types for what it reads from and sends to the other services. `api::upstream`
//! implements the calls.

use chrono::NaiveDate;
use invoicer_domain::email::Mailbox;
use invoicer_kit::ServiceName;

use crate::model::{DocumentFacts, RecipientOutcome};

/// A failed call to another service.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation}: {message} ({code:?})")]
pub(crate) struct UpstreamError {
    pub service: ServiceName,
    pub operation: &'static str,
    pub code: tonic::Code,
    pub message: String,
}

impl UpstreamError {
    /// Returns whether the service could not be reached, so the request did not run.
    pub(crate) fn is_unavailable(&self) -> bool {
        self.code == tonic::Code::Unavailable
    }

    pub(crate) fn is_not_found(&self) -> bool {
        self.code == tonic::Code::NotFound
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum InvoiceKind {
    Invoice,
    CreditNote,
}

impl InvoiceKind {
    pub(crate) const ALL: [InvoiceKind; 2] = [InvoiceKind::Invoice, InvoiceKind::CreditNote];

    /// Returns the name that the export format and the config file use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Invoice => "invoice",
            InvoiceKind::CreditNote => "credit_note",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<InvoiceKind> {
        InvoiceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContactRole {
    To,
    Cc,
    Bcc,
    None,
}

#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub name: String,
    pub email: String,
    pub role: ContactRole,
}

#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub code: String,
    pub name: String,
    pub language: String,
    pub contacts: Vec<Contact>,
}

/// An invoice eligible by time window, before the orchestrator's own checks.
#[derive(Debug, Clone)]
pub(crate) struct InvoiceSummary {
    pub number: String,
    pub revision: u32,
    pub customer_code: String,
}

/// An invoice with its customer, as invoice-query returned it.
#[derive(Debug, Clone)]
pub(crate) struct Invoice {
    pub number: String,
    pub revision: u32,
    pub kind: InvoiceKind,
    /// The issue date in the offset the ERP sent, which is the date the PDF prints. The UTC
    /// date of the same instant can be a day earlier or later.
    pub issued_date: NaiveDate,
    pub due_date: String,
    pub currency: String,
    pub total: String,
    pub po_number: String,
    pub notify_opt_out: bool,
    pub customer: Customer,
    /// The full record, passed on unchanged to pdf-render.
    pub(crate) raw: crate::api::RawInvoice,
}

impl Invoice {
    /// Returns what this revision's email states about the invoice, to keep with its PDF.
    pub(crate) fn facts(&self) -> DocumentFacts {
        DocumentFacts {
            kind: self.kind.as_str().to_owned(),
            issued_date: self.issued_date,
            due_date: self.due_date.clone(),
            currency: self.currency.clone(),
            total: self.total.clone(),
            po_number: self.po_number.clone(),
        }
    }

    /// Returns this invoice with the facts that an earlier revision's PDF was rendered with,
    /// to write that revision's email. The revision, the customer and the record that
    /// pdf-render reads stay as they are now, so the result is not for rendering.
    pub(crate) fn with_facts(&self, facts: &DocumentFacts) -> Invoice {
        let mut invoice = self.clone();
        // A kind this build does not know came from a newer build; the current one is the
        // best guess.
        invoice.kind = InvoiceKind::parse(&facts.kind).unwrap_or(self.kind);
        invoice.issued_date = facts.issued_date;
        invoice.due_date = facts.due_date.clone();
        invoice.currency = facts.currency.clone();
        invoice.total = facts.total.clone();
        invoice.po_number = facts.po_number.clone();
        invoice
    }
}

pub(crate) struct OutgoingEmail<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub bcc: &'a [Mailbox],
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
    pub attachment_name: &'a str,
    pub attachment: &'a [u8],
    pub message_id: &'a str,
    pub delivery_key: &'a str,
    /// The envelope recipients (RCPT TO) when they are a subset of To, Cc and Bcc: on a retry
    /// after some recipients accepted the message, the others. `None` sends to all of them.
    pub envelope: Option<&'a [String]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendResult {
    Sent,
    PartiallySent,
    Deferred,
    Failed,
    Unknown,
}

#[derive(Debug, Clone)]
pub(crate) struct SendOutcome {
    pub result: SendResult,
    pub recipients: Vec<RecipientOutcome>,
    pub server_reply: String,
    pub destination: String,
    pub error: String,
}
