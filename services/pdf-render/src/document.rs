//! The JSON document a template reads as `/data.json`: the input with numbers and dates
//! formatted for the customer's locale, the labels in its language, line breaks normalised
//! and empty fields as `null`.
//!
//! Templates only ever receive customer text through this document, as JSON string values,
//! so no customer text is parsed as Typst markup.

use serde::Serialize;

use crate::input::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};
use crate::labels::Labels;
use crate::settings::PaymentDetails;
use invoicer_domain::Locale;

#[derive(Debug, Serialize)]
pub(crate) struct InvoiceDocument {
    /// Language code of the labels and formats, such as `en` or `de`, for `text(lang)`.
    locale: &'static str,
    /// `invoice` or `credit_note`.
    kind: &'static str,
    labels: Labels,
    number: String,
    issue_date: String,
    due_date: Option<String>,
    order_number: Option<String>,
    po_number: Option<String>,
    terms: Option<String>,
    currency: String,
    /// Virtual path of the logo image, for `image(data.logo)`; `null` without a logo.
    logo: Option<&'static str>,
    seller: SellerDocument,
    customer: CustomerDocument,
    lines: Vec<LineDocument>,
    /// The totals with their currency, such as `1.234,56 €`.
    subtotal: String,
    taxes: Vec<TaxDocument>,
    total: String,
    /// The total again: the ERP export has no prepayments, so the amount due is the total.
    amount_due: String,
    /// Bank details for an invoice; `null` for a credit note or without configured details.
    payment: Option<PaymentDocument>,
    notes: Option<String>,
}

/// What a render needs beside the invoice: the fallback locale, the logo and bank details.
pub(crate) struct DocumentOptions<'a> {
    pub(crate) fallback_locale: Locale,
    pub(crate) logo: Option<&'static str>,
    pub(crate) payment: &'a PaymentDetails,
}

#[derive(Debug, Serialize)]
struct PaymentDocument {
    account_holder: Option<String>,
    bank_name: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    /// The invoice number, which the customer quotes with the transfer.
    reference: String,
    instructions: Option<String>,
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
    pub(crate) fn new(input: &RenderInput, options: &DocumentOptions<'_>) -> InvoiceDocument {
        let locale = Locale::resolve(&input.customer.language, options.fallback_locale);
        let invoice = &input.invoice;
        let currency = single_line(&invoice.currency);
        let money = |amount: &str| locale.format_money(amount, &currency);
        InvoiceDocument {
            locale: locale.code(),
            kind: match invoice.kind {
                InvoiceKind::Invoice => "invoice",
                InvoiceKind::CreditNote => "credit_note",
            },
            labels: Labels::for_document(locale, invoice.kind),
            number: single_line(&invoice.number),
            issue_date: locale.format_date(invoice.issued_at.date_naive()),
            due_date: invoice.due_date.map(|date| locale.format_date(date)),
            order_number: optional(&invoice.order_number),
            po_number: optional(&invoice.po_number),
            terms: optional(&invoice.terms),
            logo: options.logo,
            seller: SellerDocument::new(&input.seller),
            customer: CustomerDocument::new(&input.customer),
            lines: invoice
                .lines
                .iter()
                .map(|line| LineDocument::new(line, locale))
                .collect(),
            subtotal: money(&invoice.subtotal),
            taxes: invoice
                .taxes
                .iter()
                .map(|tax| TaxDocument::new(tax, locale, &currency))
                .collect(),
            total: money(&invoice.total),
            amount_due: money(&invoice.total),
            payment: PaymentDocument::new(invoice, options.payment),
            notes: optional_multiline(&invoice.notes),
            currency,
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a document of strings always serializes to JSON")
    }
}

impl PaymentDocument {
    fn new(invoice: &Invoice, payment: &PaymentDetails) -> Option<PaymentDocument> {
        if invoice.kind == InvoiceKind::CreditNote || payment.is_empty() {
            return None;
        }
        Some(PaymentDocument {
            account_holder: optional(&payment.account_holder),
            bank_name: optional(&payment.bank_name),
            iban: optional(&payment.iban),
            bic: optional(&payment.bic),
            reference: single_line(&invoice.number),
            instructions: optional_multiline(&payment.instructions),
        })
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
    fn new(tax: &Tax, locale: Locale, currency: &str) -> TaxDocument {
        TaxDocument {
            name: optional(&tax.name),
            rate: optional(&tax.rate).map(|rate| locale.format_percent(&rate)),
            amount: locale.format_money(&tax.amount, currency),
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
