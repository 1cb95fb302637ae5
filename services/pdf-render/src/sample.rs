//! The sample invoice that start-up renders with every template, and that the benchmark
//! renders: every field set, so a template that fails on any field fails at start-up.

use chrono::{DateTime, NaiveDate};

use crate::input::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};

/// Returns a one-page invoice of two lines with every optional field set.
pub fn invoice() -> RenderInput {
    invoice_with_lines(2)
}

/// Returns the sample invoice with `count` lines (at least one), whose amounts add up.
pub fn invoice_with_lines(count: usize) -> RenderInput {
    let count = count.max(1);
    let lines: Vec<InvoiceLine> = (1..=count).map(line).collect();
    let cents = 2_500 * count;
    let tax_cents = 475 * count;
    RenderInput {
        invoice: Invoice {
            number: "SAMPLE-0001".into(),
            kind: InvoiceKind::Invoice,
            revision: 1,
            order_number: "SO-1".into(),
            po_number: "PO-1".into(),
            issued_at: DateTime::parse_from_rfc3339("2026-01-15T09:30:00+01:00")
                .expect("the sample instant is valid RFC 3339"),
            due_date: NaiveDate::from_ymd_opt(2026, 2, 14),
            currency: "EUR".into(),
            terms: "Net 30".into(),
            lines,
            subtotal: decimal(cents),
            taxes: vec![Tax {
                name: "VAT 19%".into(),
                rate: "19".into(),
                amount: decimal(tax_cents),
            }],
            total: decimal(cents + tax_cents),
            notes: "Sample note.\nSecond line.".into(),
            content_sha256: String::new(),
        },
        customer: Customer {
            code: "C-1".into(),
            name: "Sample Customer GmbH".into(),
            language: String::new(),
            address: vec!["Sample Street 1".into(), "10115 Berlin".into()],
            tax_id: "DE123456789".into(),
        },
        seller: Seller {
            name: "Sample Seller AG".into(),
            address: vec!["Main Street 1".into(), "80331 München".into()],
            tax_id: "DE987654321".into(),
            email: "billing@seller.example".into(),
            phone: "+49 89 0000000".into(),
            website: "seller.example".into(),
        },
        template: String::new(),
    }
}

fn line(index: usize) -> InvoiceLine {
    InvoiceLine {
        sku: format!("SKU-{index:05}"),
        description: format!("Sample item {index}"),
        quantity: "2".into(),
        unit: "pcs".into(),
        unit_price: "12.50".into(),
        amount: "25.00".into(),
        tax_rate: "19".into(),
    }
}

fn decimal(cents: usize) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
