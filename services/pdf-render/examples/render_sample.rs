//! Renders a sample invoice to a file, for looking at the layout:
//! `cargo run -p invoicer-pdf-render --example render_sample -- /tmp/sample-invoice.pdf [lines] [language]`.

use chrono::{DateTime, NaiveDate};
use invoicer_pdf_render::{
    Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Renderer, Seller, Tax,
};

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let path = arguments
        .next()
        .unwrap_or_else(|| "sample-invoice.pdf".to_owned());
    let line_count: usize = arguments
        .next()
        .map(|count| count.parse())
        .transpose()?
        .unwrap_or(6);
    let language = arguments.next().unwrap_or_else(|| "de".to_owned());

    let pdf = Renderer::new().render(&sample(line_count, &language))?;
    std::fs::write(&path, &pdf.bytes)?;
    eprintln!(
        "wrote {path}: {} pages, sha256 {}",
        pdf.page_count, pdf.sha256
    );
    Ok(())
}

fn sample(line_count: usize, language: &str) -> RenderInput {
    let lines: Vec<InvoiceLine> = (1..=line_count).map(sample_line).collect();
    RenderInput {
        invoice: Invoice {
            number: "INV-2026-0001".into(),
            kind: InvoiceKind::Invoice,
            revision: 1,
            order_number: "SO-5521".into(),
            po_number: "PO-77".into(),
            issued_at: DateTime::parse_from_rfc3339("2026-12-03T16:20:00+01:00").unwrap(),
            due_date: NaiveDate::from_ymd_opt(2027, 1, 2),
            currency: "EUR".into(),
            terms: "Net 30".into(),
            subtotal: decimal_from_cents(125_000 * line_count),
            taxes: vec![Tax {
                name: "VAT 19%".into(),
                rate: "19".into(),
                amount: decimal_from_cents(23_750 * line_count),
            }],
            total: decimal_from_cents(148_750 * line_count),
            notes: "Thank you for your order.\nPlease pay within 30 days to the account below:\n\
                    IBAN NO93 8601 1117 947 · BIC DNBANOKK"
                .into(),
            content_sha256: String::new(),
            lines,
        },
        customer: Customer {
            code: "C-1001".into(),
            name: "Müller & Söhne GmbH — Bjørn Łukasz Čapek".into(),
            language: language.into(),
            address: vec![
                "Hauptstraße 5".into(),
                "10115 Berlin".into(),
                "Germany".into(),
            ],
            tax_id: "DE123456789".into(),
        },
        seller: Seller {
            name: "Nordlys Software AS".into(),
            address: vec!["Storgata 12".into(), "0155 Oslo".into(), "Norway".into()],
            tax_id: "NO 987 654 321 MVA".into(),
            email: "billing@nordlys.example".into(),
            phone: "+47 22 00 00 00".into(),
            website: "nordlys.example".into(),
        },
        template: String::new(),
    }
}

fn sample_line(index: usize) -> InvoiceLine {
    let description = if index == 2 {
        "Installation and configuration of the warehouse scanners, including travel to the \
         São Paulo site, two days of training for the night shift and a written hand-over report\n\
         Ticket 4711"
            .to_owned()
    } else {
        format!("Software licence, seat {index}")
    };
    InvoiceLine {
        sku: format!("LIC-{index:03}"),
        description,
        quantity: "10".into(),
        unit: "pcs".into(),
        unit_price: "125.00".into(),
        amount: "1250.00".into(),
        tax_rate: "19".into(),
    }
}

fn decimal_from_cents(cents: usize) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
