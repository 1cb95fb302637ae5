//! Shared helpers of the pdf-render integration tests: sample inputs and text extraction with
//! poppler's `pdftotext`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use chrono::DateTime;
use invoicer_pdf_render::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};

pub(crate) fn seller() -> Seller {
    Seller {
        name: "Nordlys Software AS".into(),
        address: vec!["Storgata 12".into(), "0155 Oslo".into(), "Norway".into()],
        tax_id: "NO 987 654 321 MVA".into(),
        email: "billing@nordlys.example".into(),
        phone: "+47 22 00 00 00".into(),
        website: "nordlys.example".into(),
    }
}

pub(crate) fn customer(language: &str) -> Customer {
    Customer {
        code: "C-1001".into(),
        name: "Bjørn Łukasz Čapek São João".into(),
        language: language.into(),
        address: vec![
            "Hauptstraße 5".into(),
            "10115 Berlin".into(),
            "Germany".into(),
        ],
        tax_id: "DE123456789".into(),
    }
}

pub(crate) fn line(index: usize) -> InvoiceLine {
    InvoiceLine {
        sku: format!("WID-{index:03}"),
        description: format!("Widget number {index}, blue"),
        quantity: "2".into(),
        unit: "pcs".into(),
        unit_price: "617.25".into(),
        amount: "1234.50".into(),
        tax_rate: "19".into(),
    }
}

/// Builds a one-page invoice whose amounts add up: one line of 1234.50 plus 19 % VAT.
pub(crate) fn invoice() -> Invoice {
    Invoice {
        number: "INV-2026-0001".into(),
        kind: InvoiceKind::Invoice,
        revision: 1,
        order_number: "SO-5521".into(),
        po_number: "PO-77".into(),
        issued_at: DateTime::parse_from_rfc3339("2026-12-03T16:20:00-06:00").unwrap(),
        due_date: chrono::NaiveDate::from_ymd_opt(2027, 1, 2),
        currency: "EUR".into(),
        terms: "Net 30".into(),
        lines: vec![line(1)],
        subtotal: "1234.50".into(),
        taxes: vec![Tax {
            name: "VAT 19%".into(),
            rate: "19".into(),
            amount: "234.56".into(),
        }],
        total: "1469.06".into(),
        notes: "Thank you for your order.\nPlease pay by bank transfer.".into(),
        content_sha256: "9f2c".repeat(16),
    }
}

pub(crate) fn input(language: &str) -> RenderInput {
    RenderInput {
        invoice: invoice(),
        customer: customer(language),
        seller: seller(),
        template: String::new(),
    }
}

/// Builds an invoice with `count` lines, far more than one page holds.
pub(crate) fn long_input(count: usize) -> RenderInput {
    let mut input = input("en");
    input.invoice.number = "INV-2026-0120".into();
    input.invoice.lines = (1..=count).map(line).collect();
    input
}

/// Loads the first invoice of the Chinook sample export, with its customer.
pub(crate) fn chinook_input() -> RenderInput {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../invoicer/sample/chinook-export.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!("cannot read the sample export {}: {error}", path.display())
    });
    let export: serde_json::Value = serde_json::from_str(&text).unwrap();
    let invoice_json = export["invoices"][0].clone();
    let customer_code = invoice_json["customer"].as_str().unwrap().to_owned();
    let customer_json = export["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|customer| customer["code"] == customer_code.as_str())
        .unwrap_or_else(|| panic!("customer {customer_code} of the first invoice is missing"))
        .clone();
    RenderInput {
        invoice: serde_json::from_value(invoice_json).unwrap(),
        customer: serde_json::from_value(customer_json).unwrap(),
        seller: seller(),
        template: String::new(),
    }
}

fn run_poppler(tool: &str, arguments: &[&str], pdf: &[u8]) -> String {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new(tool)
        .args(arguments)
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {tool} ({error}); install poppler-utils \
                 (`apt-get install -y poppler-utils`) to run these tests"
            )
        });
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Extracts the text of every page, in reading order (`pdftotext -layout`).
pub(crate) fn pdf_text(pdf: &[u8]) -> String {
    run_poppler("pdftotext", &["-layout", "-enc", "UTF-8"], pdf)
}

/// Extracts the text of one page, counted from 1.
pub(crate) fn pdf_page_text(pdf: &[u8], page: u32) -> String {
    let page = page.to_string();
    run_poppler(
        "pdftotext",
        &["-layout", "-enc", "UTF-8", "-f", &page, "-l", &page],
        pdf,
    )
}

/// Reads one field of `pdfinfo -isodates`, such as `Pages` or `CreationDate`.
pub(crate) fn pdfinfo_field(pdf: &[u8], field: &str) -> String {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new("pdfinfo")
        .arg("-isodates")
        .arg(&path)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run pdfinfo ({error}); install poppler-utils to run these tests")
        });
    assert!(
        output.status.success(),
        "pdfinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info = String::from_utf8(output.stdout).unwrap();
    let prefix = format!("{field}:");
    let value = info
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("pdfinfo printed no {field}:\n{info}"));
    value.trim().to_owned()
}

/// Reads the page count with `pdfinfo`.
pub(crate) fn pdfinfo_pages(pdf: &[u8]) -> u32 {
    pdfinfo_field(pdf, "Pages").parse().unwrap()
}

/// Lists the fonts the PDF uses (`pdffonts`), without subset prefixes, sorted.
pub(crate) fn pdf_fonts(pdf: &[u8]) -> Vec<String> {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new("pdffonts")
        .arg(&path)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run pdffonts ({error}); install poppler-utils to run these tests")
        });
    assert!(output.status.success(), "pdffonts failed");
    let listing = String::from_utf8(output.stdout).unwrap();
    let mut fonts: Vec<String> = listing
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| match name.split_once('+') {
            Some((_, base)) => base.to_owned(),
            None => name.to_owned(),
        })
        .collect();
    fonts.sort();
    fonts.dedup();
    fonts
}

/// Counts the non-overlapping occurrences of `needle` in `text`.
pub(crate) fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Collapses every run of whitespace to one space, so that checks do not depend on layout.
pub(crate) fn squashed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
