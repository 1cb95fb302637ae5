//! Customers, contacts and invoices as the ERP posted them, and what an import reports.
//!
//! Amounts, quantities and rates stay the decimal strings the ERP sent, because the PDF prints
//! them as given. The import checks them with `rust_decimal` before they get here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Role of a contact in an invoice mail: To, Cc, Bcc, or no copy at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecipientRole {
    To,
    Cc,
    Bcc,
    None,
}

impl RecipientRole {
    pub(crate) const ALL: [RecipientRole; 4] = [
        RecipientRole::To,
        RecipientRole::Cc,
        RecipientRole::Bcc,
        RecipientRole::None,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecipientRole::To => "to",
            RecipientRole::Cc => "cc",
            RecipientRole::Bcc => "bcc",
            RecipientRole::None => "none",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<RecipientRole> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InvoiceKind {
    Invoice,
    CreditNote,
}

impl InvoiceKind {
    pub(crate) const ALL: [InvoiceKind; 2] = [InvoiceKind::Invoice, InvoiceKind::CreditNote];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Invoice => "invoice",
            InvoiceKind::CreditNote => "credit_note",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<InvoiceKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InvoiceStatus {
    Draft,
    Posted,
    Void,
}

impl InvoiceStatus {
    pub(crate) const ALL: [InvoiceStatus; 3] = [
        InvoiceStatus::Draft,
        InvoiceStatus::Posted,
        InvoiceStatus::Void,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Posted => "posted",
            InvoiceStatus::Void => "void",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<InvoiceStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub(crate) name: String,
    /// The address field as the ERP sent it: one address or a list separated by commas or
    /// semicolons, each maybe with a display name. At least one element is valid.
    pub(crate) email: String,
    pub(crate) invoice_role: RecipientRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Customer {
    pub(crate) code: String,
    pub(crate) name: String,
    /// Well-formed BCP 47 tag.
    pub(crate) language: Option<String>,
    pub(crate) address: Vec<String>,
    pub(crate) tax_id: Option<String>,
    pub(crate) contacts: Vec<Contact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InvoiceLine {
    pub(crate) sku: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) quantity: Option<String>,
    pub(crate) unit: Option<String>,
    pub(crate) unit_price: Option<String>,
    pub(crate) amount: String,
    pub(crate) tax_rate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tax {
    pub(crate) name: Option<String>,
    pub(crate) rate: Option<String>,
    pub(crate) amount: String,
}

/// The content of one invoice revision. Its canonical JSON is what `content_sha256` hashes,
/// so two imports with the same content give the same hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Invoice {
    pub(crate) number: String,
    /// Code of the customer the invoice is addressed to.
    pub(crate) customer: String,
    pub(crate) kind: InvoiceKind,
    pub(crate) status: InvoiceStatus,
    pub(crate) order_number: Option<String>,
    pub(crate) po_number: Option<String>,
    /// RFC 3339 with the offset the ERP sent.
    pub(crate) issued_at: String,
    /// ISO 8601 date (`YYYY-MM-DD`).
    pub(crate) due_date: Option<String>,
    /// ISO 4217 code.
    pub(crate) currency: String,
    pub(crate) terms: Option<String>,
    pub(crate) lines: Vec<InvoiceLine>,
    pub(crate) subtotal: String,
    pub(crate) taxes: Vec<Tax>,
    pub(crate) total: String,
    pub(crate) notes: Option<String>,
    /// Set when the ERP asked that this invoice never be mailed automatically.
    pub(crate) notify_opt_out: bool,
}

/// The latest revision of an invoice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredInvoice {
    pub(crate) invoice: Invoice,
    /// Starts at 1 and grows by one with every re-import that changes the content.
    pub(crate) revision: u32,
    /// SHA-256 (hex) of the invoice's canonical JSON.
    pub(crate) content_sha256: String,
    pub(crate) issued_at_utc: DateTime<Utc>,
}

/// Outcome counts of one record type in an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ImportCounts {
    pub(crate) created: u32,
    pub(crate) updated: u32,
    pub(crate) unchanged: u32,
    pub(crate) rejected: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordType {
    /// A JSON Lines record whose `type` is missing or unknown.
    Unknown,
    Customer,
    Invoice,
}

/// One problem with one record. A record with several problems gets several rejections, but
/// counts once in `ImportCounts::rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) record_type: RecordType,
    /// Customer code or invoice number, empty when the record has none.
    pub(crate) key: String,
    /// JSON path of the offending field, for example `invoices[3].total`.
    pub(crate) field: String,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImportReport {
    pub(crate) customers: ImportCounts,
    pub(crate) invoices: ImportCounts,
    pub(crate) rejections: Vec<Rejection>,
    /// Problems that did not reject their record, in the same shape as rejections.
    pub(crate) warnings: Vec<Rejection>,
}

/// One invoice that may be due for an automatic mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceSummary {
    pub(crate) number: String,
    pub(crate) revision: u32,
    pub(crate) customer_code: String,
    pub(crate) kind: InvoiceKind,
    pub(crate) issued_at: String,
    pub(crate) issued_at_utc: DateTime<Utc>,
    pub(crate) content_sha256: String,
    pub(crate) notify_opt_out: bool,
}
