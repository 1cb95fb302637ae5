//! The default template's layout, checked with poppler's text extraction: long invoices keep
//! every line once with the table header on each page, and the payment block, logo, amount
//! due and page numbers appear as configured.

mod common;

use common::{count, input, long_input, pdf_page_text, pdf_text, pdfinfo_pages, squashed};
use invoicer_pdf_render::{InvoiceKind, PaymentDetails, RenderSettings, Renderer};

/// Lines that fill about ten pages with the default template.
const TEN_PAGE_LINES: usize = 380;

fn ten_page_input() -> invoicer_pdf_render::RenderInput {
    let mut input = long_input(TEN_PAGE_LINES);
    // Every seventh line wraps over several lines, so rows of different heights meet the
    // page breaks.
    for (index, line) in input.invoice.lines.iter_mut().enumerate() {
        if index % 7 == 3 {
            line.description = format!(
                "Widget number {}, blue, with a description long enough to wrap over more \
                 than one line of the description column\nand a second paragraph",
                index + 1
            );
        }
    }
    input
}

#[test]
fn ten_page_invoice_prints_each_sku_once() {
    let pdf = Renderer::new().render(&ten_page_input()).unwrap();
    let text = pdf_text(&pdf.bytes);

    assert!(
        (9..=12).contains(&pdf.page_count),
        "expected about ten pages, got {}",
        pdf.page_count
    );
    for index in 1..=TEN_PAGE_LINES {
        let sku = format!("WID-{index:03}");
        assert_eq!(count(&text, &sku), 1, "{sku} is not printed exactly once");
    }
}

#[test]
fn ten_page_invoice_repeats_header_and_page_numbers() {
    let pdf = Renderer::new().render(&ten_page_input()).unwrap();
    let pages = pdfinfo_pages(&pdf.bytes);
    assert_eq!(pages, pdf.page_count);

    for page in 1..=pages {
        let text = squashed(&pdf_page_text(&pdf.bytes, page));
        for header in [
            "SKU",
            "Description",
            "Qty",
            "Unit",
            "Unit price",
            "Tax",
            "Amount",
        ] {
            assert!(
                text.contains(header),
                "table header {header:?} missing on page {page}"
            );
        }
        let footer = format!("Page {page} of {pages}");
        assert_eq!(
            count(&text, &footer),
            1,
            "{footer:?} missing on page {page}"
        );
    }
}

#[test]
fn ten_page_invoice_keeps_rows_on_one_page() {
    let pdf = Renderer::new().render(&ten_page_input()).unwrap();

    // A row split by a page break would put its second paragraph on the next page, apart
    // from its SKU. Each wrapped row's SKU and last words must share a page.
    for page in 1..=pdf.page_count {
        let text = squashed(&pdf_page_text(&pdf.bytes, page));
        let skus = text.matches("WID-").count();
        let second_paragraphs = text.matches("and a second paragraph").count();
        let wrapped_skus = (1..=TEN_PAGE_LINES)
            .filter(|index| index % 7 == 4)
            .filter(|index| text.contains(&format!("WID-{index:03}")))
            .count();
        assert_eq!(
            second_paragraphs, wrapped_skus,
            "page {page}: a wrapped row is split across pages ({skus} rows on the page)"
        );
    }
}

#[test]
fn ten_page_invoice_ends_with_totals_after_last_line() {
    let pdf = Renderer::new().render(&ten_page_input()).unwrap();
    let last_page = squashed(&pdf_page_text(&pdf.bytes, pdf.page_count));

    let last_line = last_page.find(&format!("WID-{TEN_PAGE_LINES:03}"));
    let total = last_page.find("Amount due");
    assert!(last_line.is_some(), "last line missing on the last page");
    assert!(total.is_some(), "amount due missing on the last page");
    assert!(last_line < total, "amount due printed before the last line");
}

#[test]
fn invoice_prints_amount_due_and_subtotal_with_currency() {
    let pdf = Renderer::new().render(&input("en")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert!(text.contains("Subtotal 1,234.50 EUR"), "{text}");
    assert!(text.contains("VAT 19% 234.56 EUR"), "{text}");
    assert!(text.contains("Total 1,469.06 EUR"), "{text}");
    assert!(text.contains("Amount due 1,469.06 EUR"), "{text}");
}

fn settings_with_bank() -> RenderSettings {
    RenderSettings {
        payment: PaymentDetails {
            account_holder: "Nordlys Software AS".into(),
            bank_name: "DNB Bank".into(),
            iban: "NO93 8601 1117 947".into(),
            bic: "DNBANOKK".into(),
            instructions: "Please pay within 30 days.".into(),
        },
        ..RenderSettings::default()
    }
}

#[test]
fn invoice_prints_payment_instructions_from_settings() {
    let renderer = Renderer::with_settings(&settings_with_bank()).unwrap();
    let pdf = renderer.render(&input("en")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    for expected in [
        "Payment details",
        "Account holder Nordlys Software AS",
        "Bank DNB Bank",
        "IBAN NO93 8601 1117 947",
        "BIC DNBANOKK",
        "Reference INV-2026-0001",
        "Please pay within 30 days.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn credit_note_has_no_payment_instructions() {
    let renderer = Renderer::with_settings(&settings_with_bank()).unwrap();
    let mut credit_note = input("en");
    credit_note.invoice.kind = InvoiceKind::CreditNote;

    let text = squashed(&pdf_text(&renderer.render(&credit_note).unwrap().bytes));

    assert!(!text.contains("Payment details"), "{text}");
    assert!(text.contains("Amount credited 1,469.06 EUR"), "{text}");
    assert!(text.contains("Credit note INV-2026-0001"), "{text}");
}

#[test]
fn no_bank_details_print_no_payment_block() {
    let text = squashed(&pdf_text(
        &Renderer::new().render(&input("en")).unwrap().bytes,
    ));
    assert!(!text.contains("Payment details"), "{text}");
}

/// An 8 x 4 pixel red PNG.
const LOGO_PNG: &[u8] = include_bytes!("fixtures/logo.png");

#[test]
fn logo_from_settings_is_drawn() {
    let folder = tempfile::tempdir().unwrap();
    let logo = folder.path().join("logo.png");
    std::fs::write(&logo, LOGO_PNG).unwrap();
    let settings = RenderSettings {
        logo: Some(logo),
        ..RenderSettings::default()
    };

    let with_logo = Renderer::with_settings(&settings)
        .unwrap()
        .render(&input("en"))
        .unwrap();
    let without_logo = Renderer::new().render(&input("en")).unwrap();

    let image_count = |pdf: &[u8]| {
        String::from_utf8_lossy(pdf)
            .matches("/Subtype /Image")
            .count()
            + String::from_utf8_lossy(pdf)
                .matches("/Subtype/Image")
                .count()
    };
    assert!(
        image_count(&with_logo.bytes) > 0,
        "no image in the PDF with a logo"
    );
    assert_eq!(
        image_count(&without_logo.bytes),
        0,
        "image in the PDF without a logo"
    );
}

#[test]
fn missing_logo_file_fails_setup() {
    let settings = RenderSettings {
        logo: Some("/nonexistent/logo.png".into()),
        ..RenderSettings::default()
    };
    let error = Renderer::with_settings(&settings)
        .err()
        .expect("setup should fail");
    assert!(
        error.to_string().contains("/nonexistent/logo.png"),
        "{error}"
    );
}

#[test]
fn logo_of_unknown_format_fails_setup() {
    let settings = RenderSettings {
        logo: Some("/etc/logo.gif".into()),
        ..RenderSettings::default()
    };
    let error = Renderer::with_settings(&settings)
        .err()
        .expect("setup should fail");
    assert!(error.to_string().contains(".png"), "{error}");
}

#[test]
fn broken_logo_image_fails_setup() {
    let folder = tempfile::tempdir().unwrap();
    let logo = folder.path().join("logo.png");
    std::fs::write(&logo, b"not a png").unwrap();
    let settings = RenderSettings {
        logo: Some(logo),
        ..RenderSettings::default()
    };
    let error = Renderer::with_settings(&settings)
        .err()
        .expect("setup should fail");
    assert!(error.to_string().contains("sample invoice"), "{error}");
}
