//! The invoice, customer and seller as the renderer receives them, independent of gRPC.
//!
//! The types deserialize from the ERP export format as well (unknown fields such as
//! `customer` or `contacts` are ignored), so tests and benchmarks can feed sample data straight
//! in. Amounts stay decimal strings: the PDF prints what the ERP sent.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Deserialize;

/// Everything one render needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RenderInput {
    pub invoice: Invoice,
    pub customer: Customer,
    pub seller: Seller,
    /// Template name; empty selects [`crate::DEFAULT_TEMPLATE`].
    #[serde(default)]
    pub template: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    CreditNote,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Invoice {
    pub number: String,
    pub kind: InvoiceKind,
    /// Starts at 1 and grows with every re-import that changes the invoice.
    #[serde(default = "first_revision")]
    pub revision: u32,
    #[serde(default)]
    pub order_number: String,
    #[serde(default)]
    pub po_number: String,
    /// When the ERP posted the invoice, in the offset the ERP sent. It gives the printed issue
    /// date and the PDF's creation date.
    pub issued_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// ISO 4217 code.
    pub currency: String,
    #[serde(default)]
    pub terms: String,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: String,
    #[serde(default)]
    pub taxes: Vec<Tax>,
    pub total: String,
    #[serde(default)]
    pub notes: String,
    /// SHA-256 (hex) of the invoice's canonical JSON; empty when the caller has none, and then
    /// the renderer hashes the document data instead.
    #[serde(default)]
    pub content_sha256: String,
}

fn first_revision() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub sku: String,
    pub description: String,
    pub quantity: String,
    #[serde(default)]
    pub unit: String,
    pub unit_price: String,
    pub amount: String,
    #[serde(default)]
    pub tax_rate: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tax {
    pub name: String,
    #[serde(default)]
    pub rate: String,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Customer {
    pub code: String,
    pub name: String,
    /// BCP 47 tag, empty when the ERP sent none; picks the labels and the number format.
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub address: Vec<String>,
    #[serde(default)]
    pub tax_id: String,
}

/// The company that issues the invoice, printed in the header.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Seller {
    pub name: String,
    pub address: Vec<String>,
    pub tax_id: String,
    pub email: String,
    pub phone: String,
    pub website: String,
}
