//! The JSON document a template reads as `/data.json`: the input with numbers and dates
//! formatted for the customer's locale, line breaks normalised and empty fields as `null`.
//!
//! Templates only ever receive customer text through this document, as JSON string values,
//! so no customer text is parsed as Typst markup.

use serde::Serialize;

use crate::input::{Customer, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};
use crate::locale::Locale;

#[derive(Debug, Serialize)]
pub(crate) struct InvoiceDocument {
    /// Key of the template's label table, such as `en` or `de`.
    locale: &'static str,
    /// `invoice` or `credit_note`.
    kind: &'static str,
    number: String,
    issue_date: String,
    due_date: Option<String>,
    order_number: Option<String>,
    po_number: Option<String>,
    terms: Option<String>,
    currency: String,
    seller: SellerDocument,
    customer: CustomerDocument,
    lines: Vec<LineDocument>,
    subtotal: String,
    taxes: Vec<TaxDocument>,
    total: String,
    notes: Option<String>,
}

#[derive(Debug, Serialize)]
struct SellerDocument {
    name: String,
    address: Vec<String>,
    tax_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    website: Option<String>,
}

#[derive(Debug, Serialize)]
struct CustomerDocument {
    code: Option<String>,
    name: String,
    address: Vec<String>,
    tax_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct LineDocument {
    sku: Option<String>,
    description: String,
    quantity: String,
    unit: Option<String>,
    unit_price: String,
    amount: String,
    tax_rate: Option<String>,
}

#[derive(Debug, Serialize)]
struct TaxDocument {
    name: Option<String>,
    rate: Option<String>,
    amount: String,
}

impl InvoiceDocument {
    pub(crate) fn new(input: &RenderInput) -> InvoiceDocument {
        let locale = Locale::from_language_tag(&input.customer.language);
        let invoice = &input.invoice;
        InvoiceDocument {
            locale: locale.code(),
            kind: match invoice.kind {
                InvoiceKind::Invoice => "invoice",
                InvoiceKind::CreditNote => "credit_note",
            },
            number: single_line(&invoice.number),
            issue_date: locale.format_date(invoice.issued_at.date_naive()),
            due_date: invoice.due_date.map(|date| locale.format_date(date)),
            order_number: optional(&invoice.order_number),
            po_number: optional(&invoice.po_number),
            terms: optional(&invoice.terms),
            currency: single_line(&invoice.currency),
            seller: SellerDocument::new(&input.seller),
            customer: CustomerDocument::new(&input.customer),
            lines: invoice
                .lines
                .iter()
                .map(|line| LineDocument::new(line, locale))
                .collect(),
            subtotal: locale.format_decimal(&invoice.subtotal),
            taxes: invoice
                .taxes
                .iter()
                .map(|tax| TaxDocument::new(tax, locale))
                .collect(),
            total: locale.format_decimal(&invoice.total),
            notes: optional_multiline(&invoice.notes),
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a document of strings always serializes to JSON")
    }
}

impl SellerDocument {
    fn new(seller: &Seller) -> SellerDocument {
        SellerDocument {
            name: single_line(&seller.name),
            address: address_lines(&seller.address),
            tax_id: optional(&seller.tax_id),
            email: optional(&seller.email),
            phone: optional(&seller.phone),
            website: optional(&seller.website),
        }
    }
}

impl CustomerDocument {
    fn new(customer: &Customer) -> CustomerDocument {
        CustomerDocument {
            code: optional(&customer.code),
            name: single_line(&customer.name),
            address: address_lines(&customer.address),
            tax_id: optional(&customer.tax_id),
        }
    }
}

impl LineDocument {
    fn new(line: &InvoiceLine, locale: Locale) -> LineDocument {
        LineDocument {
            sku: optional(&line.sku),
            description: multiline(&line.description),
            quantity: locale.format_decimal(&line.quantity),
            unit: optional(&line.unit),
            unit_price: locale.format_decimal(&line.unit_price),
            amount: locale.format_decimal(&line.amount),
            tax_rate: optional(&line.tax_rate).map(|rate| locale.format_percent(&rate)),
        }
    }
}

impl TaxDocument {
    fn new(tax: &Tax, locale: Locale) -> TaxDocument {
        TaxDocument {
            name: optional(&tax.name),
            rate: optional(&tax.rate).map(|rate| locale.format_percent(&rate)),
            amount: locale.format_decimal(&tax.amount),
        }
    }
}

/// Replaces every control character with a space, for fields printed on one line.
fn single_line(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Normalises CR LF and lone CR to LF and replaces the other control characters (tabs
/// included) with a space. The templates turn each LF into a line break.
fn multiline(text: &str) -> String {
    let unified = text.trim_end().replace("\r\n", "\n").replace('\r', "\n");
    unified
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

fn optional(text: &str) -> Option<String> {
    let line = single_line(text);
    (!line.is_empty()).then_some(line)
}

fn optional_multiline(text: &str) -> Option<String> {
    let text = multiline(text);
    (!text.trim().is_empty()).then_some(text)
}

fn address_lines(lines: &[String]) -> Vec<String> {
    lines.iter().filter_map(|line| optional(line)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_normalises_line_endings() {
        assert_eq!(multiline("a\r\nb\rc\nd\r\n"), "a\nb\nc\nd");
    }

    #[test]
    fn multiline_replaces_tabs_and_controls() {
        assert_eq!(multiline("a\tb\u{7}c"), "a b c");
    }

    #[test]
    fn single_line_replaces_line_breaks() {
        assert_eq!(single_line(" Acme\nGmbH\t "), "Acme GmbH");
    }

    #[test]
    fn blank_fields_become_none() {
        assert_eq!(optional("  "), None);
        assert_eq!(optional_multiline("\n\r\n "), None);
        assert_eq!(
            address_lines(&["".into(), "Main St 1".into(), " ".into()]),
            ["Main St 1"]
        );
    }
}
