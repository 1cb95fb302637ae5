//! Renders real PDFs with the embedded template and checks them with poppler's text
//! extraction: content, labels per language, page breaks, determinism and literal printing
//! of hostile text.

mod common;

use common::{
    chinook_input, input, long_input, pdf_page_text, pdf_text, pdfinfo_field, pdfinfo_pages,
    squashed,
};
use invoicer_pdf_render::{InvoiceKind, RenderError, Renderer};
use sha2::{Digest, Sha256};

#[test]
fn one_page_invoice_prints_invoice_fields() {
    let pdf = Renderer::new().render(&input("en")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert_eq!(pdf.page_count, 1);
    assert_eq!(pdfinfo_pages(&pdf.bytes), 1);
    assert!(pdf.bytes.starts_with(b"%PDF-"), "not a PDF");
    for expected in [
        "Invoice",
        "INV-2026-0001",
        "Bjørn Łukasz Čapek São João",
        "Hauptstraße 5",
        "DE123456789",
        "Nordlys Software AS",
        "NO 987 654 321 MVA",
        "billing@nordlys.example",
        "3 December 2026",
        "2 January 2027",
        "SO-5521",
        "PO-77",
        "Net 30",
        "WID-001",
        "Widget number 1, blue",
        "617.25",
        "1,234.50",
        "VAT 19%",
        "234.56",
        "1,469.06 EUR",
        "Thank you for your order.",
        "Please pay by bank transfer.",
        "Page 1 of 1",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn one_page_invoice_has_sha256_and_file_name() {
    let pdf = Renderer::new().render(&input("en")).unwrap();

    assert_eq!(pdf.sha256, hex::encode(Sha256::digest(&pdf.bytes)));
    assert_eq!(pdf.file_name, "INV-2026-0001.pdf");
}

#[test]
fn pdf_metadata_comes_from_invoice() {
    let pdf = Renderer::new().render(&input("en")).unwrap();

    assert_eq!(
        pdfinfo_field(&pdf.bytes, "CreationDate"),
        "2026-12-03T16:20:00-06"
    );
    assert_eq!(pdfinfo_field(&pdf.bytes, "Title"), "Invoice INV-2026-0001");
    assert_eq!(pdfinfo_field(&pdf.bytes, "Author"), "Nordlys Software AS");
}

#[test]
fn notes_keep_line_breaks() {
    let pdf = Renderer::new().render(&input("en")).unwrap();
    let text = pdf_text(&pdf.bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();

    let first = lines
        .iter()
        .position(|line| *line == "Thank you for your order.");
    let second = lines
        .iter()
        .position(|line| *line == "Please pay by bank transfer.");
    assert!(first.is_some(), "first note line missing from:\n{text}");
    assert_eq!(
        second,
        first.map(|index| index + 1),
        "notes not on two lines:\n{text}"
    );
}

#[test]
fn german_customer_gets_german_labels_and_numbers() {
    let pdf = Renderer::new().render(&input("de-DE")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    for expected in [
        "Rechnung",
        "Rechnungsnummer",
        "Rechnungsdatum",
        "03.12.2026",
        "Fällig am",
        "02.01.2027",
        "Einzelpreis",
        "617,25",
        "1.234,50",
        "234,56",
        "Gesamtbetrag",
        "1.469,06 €",
        "Seite 1 von 1",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("Invoice number"),
        "english label in german invoice:\n{text}"
    );
}

#[test]
fn unknown_language_falls_back_to_english() {
    let pdf = Renderer::new().render(&input("sv-SE")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert!(text.contains("Invoice number"), "{text}");
    assert!(text.contains("1,469.06 EUR"), "{text}");
}

#[test]
fn credit_note_has_credit_note_title() {
    let mut english = input("en");
    english.invoice.kind = InvoiceKind::CreditNote;
    let mut german = input("de");
    german.invoice.kind = InvoiceKind::CreditNote;

    let english_text = squashed(&pdf_text(&Renderer::new().render(&english).unwrap().bytes));
    let german_text = squashed(&pdf_text(&Renderer::new().render(&german).unwrap().bytes));

    assert!(
        english_text.contains("Credit note number"),
        "{english_text}"
    );
    assert!(german_text.contains("Gutschriftsnummer"), "{german_text}");
}

#[test]
fn long_invoice_repeats_table_header() {
    let pdf = Renderer::new().render(&long_input(120)).unwrap();

    assert!(
        pdf.page_count > 1,
        "120 lines fit on {} page",
        pdf.page_count
    );
    assert_eq!(pdfinfo_pages(&pdf.bytes), pdf.page_count);

    let second_page = squashed(&pdf_page_text(&pdf.bytes, 2));
    for header in ["SKU", "Description", "Qty", "Unit price", "Amount", "Tax"] {
        assert!(
            second_page.contains(header),
            "{header:?} missing on page 2:\n{second_page}"
        );
    }
    let footer = format!("Page 2 of {}", pdf.page_count);
    assert!(
        second_page.contains(&footer),
        "{footer:?} missing on page 2:\n{second_page}"
    );
    assert!(
        second_page.contains("INV-2026-0120"),
        "invoice number missing on page 2"
    );
}

#[test]
fn long_invoice_prints_every_line_and_total() {
    let pdf = Renderer::new().render(&long_input(120)).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    for index in [1, 60, 119, 120] {
        let sku = format!("WID-{index:03}");
        assert!(text.contains(&sku), "{sku} missing");
    }
    let last_line = text.find("WID-120").unwrap();
    let total = text.find("1,469.06 EUR").expect("total missing");
    let notes = text
        .find("Thank you for your order.")
        .expect("notes missing");
    assert!(last_line < total, "total printed before the last line");
    assert!(total < notes, "notes printed before the total");
}

#[test]
fn long_description_wraps_inside_table() {
    let mut input = input("en");
    let description = "A long description that goes on and on about the delivered goods, \
        their colour, their size and the warehouse they came from, "
        .repeat(6);
    input.invoice.lines[0].description = format!("{description}\nSecond paragraph line");

    let pdf = Renderer::new().render(&input).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert_eq!(pdf.page_count, 1);
    assert!(text.contains("the warehouse they came from"), "{text}");
    assert!(text.contains("Second paragraph line"), "{text}");
    assert!(text.contains("1,469.06 EUR"), "{text}");
}

#[test]
fn hostile_text_prints_literally() {
    let hostile = r#"#panic("x") ] [ $x^2$ *bold* _it_ <tag> @ref \ // no comment #let a = 1"#;
    let mut input = input("en");
    input.customer.name = hostile.into();
    input.invoice.notes = format!("{hostile}\n#set page(width: 1cm)");
    input.invoice.lines[0].description = "]#{ panic(\"y\") }[".into();

    let pdf = Renderer::new().render(&input).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert!(text.contains(r#"#panic("x")"#), "{text}");
    assert!(text.contains("] [ $x^2$ *bold* _it_ <tag> @ref"), "{text}");
    assert!(text.contains(r"\ // no comment #let a = 1"), "{text}");
    assert!(text.contains("#set page(width: 1cm)"), "{text}");
    assert!(text.contains(r#"]#{ panic("y") }["#), "{text}");
    assert_eq!(pdf.page_count, 1);
}

#[test]
fn render_is_deterministic() {
    let first = Renderer::new().render(&input("en")).unwrap();
    let second = Renderer::new().render(&input("en")).unwrap();
    assert_eq!(first.bytes, second.bytes);

    typst::comemo::evict(0);
    let fresh = Renderer::new().render(&input("en")).unwrap();
    assert_eq!(
        first.bytes, fresh.bytes,
        "bytes differ after clearing the typst cache"
    );
}

#[test]
fn render_is_identical_across_processes() {
    let own = Renderer::new().render(&input("en")).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let sha_file = folder.path().join("sha256");

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sample_sha256_for_parent_process",
            "--ignored",
            "--quiet",
        ])
        .env(SHA_FILE_VARIABLE, &sha_file)
        .status()
        .unwrap();
    assert!(status.success(), "child test process failed: {status}");

    let child_sha = std::fs::read_to_string(&sha_file).unwrap();
    assert_eq!(child_sha, own.sha256);
}

const SHA_FILE_VARIABLE: &str = "PDF_RENDER_TEST_SHA_FILE";

/// Writes the sample's SHA-256 for `render_is_identical_across_processes`, which runs this
/// test in a fresh process.
#[test]
#[ignore = "helper that render_is_identical_across_processes runs in a child process"]
fn sample_sha256_for_parent_process() {
    let path = std::env::var_os(SHA_FILE_VARIABLE).expect("run by the parent test only");
    let pdf = Renderer::new().render(&input("en")).unwrap();
    std::fs::write(path, pdf.sha256).unwrap();
}

#[test]
fn changed_revision_changes_bytes() {
    let first = Renderer::new().render(&input("en")).unwrap();
    let mut revised = input("en");
    revised.invoice.revision = 2;
    let second = Renderer::new().render(&revised).unwrap();

    assert_ne!(
        first.bytes, second.bytes,
        "the document id should include the revision"
    );
}

#[test]
fn unknown_template_is_rejected_with_known_names() {
    let mut input = input("en");
    input.template = "fancy".into();

    let error = Renderer::new().render(&input).unwrap_err();

    let RenderError::UnknownTemplate { name, known } = &error else {
        panic!("expected UnknownTemplate, got {error:?}");
    };
    assert_eq!(name, "fancy");
    assert_eq!(known, &["default"]);
    assert!(error.to_string().contains("default"), "{error}");
}

#[test]
fn default_template_by_name() {
    let mut named = input("en");
    named.template = "default".into();

    let by_name = Renderer::new().render(&named).unwrap();
    let by_default = Renderer::new().render(&input("en")).unwrap();

    assert_eq!(by_name.bytes, by_default.bytes);
}

#[test]
fn empty_invoice_number_is_rejected() {
    let mut input = input("en");
    input.invoice.number = " ".into();

    let error = Renderer::new().render(&input).unwrap_err();

    assert!(
        matches!(
            error,
            RenderError::InvalidInput {
                field: "invoice.number",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn file_name_of_unsafe_number_is_sanitised() {
    let mut input = input("en");
    input.invoice.number = "INV/2026:7*?".into();

    let pdf = Renderer::new().render(&input).unwrap();

    assert_eq!(pdf.file_name, "INV_2026_7__.pdf");
    assert!(
        squashed(&pdf_text(&pdf.bytes)).contains("INV/2026:7*?"),
        "number not printed as given"
    );
}

#[test]
fn chinook_first_invoice_renders() {
    let input = chinook_input();
    let pdf = Renderer::new().render(&input).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert_eq!(pdf.page_count, 1);
    assert_eq!(pdf.file_name, "CH-2021-0001.pdf");
    for expected in [
        "Rechnung",
        "CH-2021-0001",
        "Leonie Köhler",
        "Theodor-Heuss-Straße 34",
        "Balls to the Wall",
        "Restless and Wild",
        "0,99",
        "1,98 USD",
        "13.12.2021",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn many_renders_pass_cache_eviction() {
    let renderer = Renderer::new();
    let first = renderer.render(&input("en")).unwrap();
    for index in 0..120 {
        let mut input = input("en");
        input.invoice.number = format!("INV-EVICT-{index}");
        renderer.render(&input).unwrap();
    }
    let last = renderer.render(&input("en")).unwrap();

    assert_eq!(first.bytes, last.bytes);
}

#[test]
fn parallel_renders_match_sequential_ones() {
    let renderer = Renderer::new();
    let inputs: Vec<_> = ["en", "de", "pt", "fr-CA"]
        .into_iter()
        .enumerate()
        .map(|(index, language)| {
            let mut input = input(language);
            input.invoice.number = format!("INV-PARALLEL-{index}");
            input
        })
        .collect();
    let sequential: Vec<_> = inputs
        .iter()
        .map(|input| renderer.render(input).unwrap())
        .collect();

    typst::comemo::evict(0);
    let renderer = &renderer;
    let parallel: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|input| scope.spawn(move || renderer.render(input).unwrap()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });

    for (index, (alone, together)) in sequential.iter().zip(&parallel).enumerate() {
        assert_eq!(
            alone.bytes, together.bytes,
            "input {index} differs when rendered in parallel"
        );
    }
}

#[test]
fn minimal_invoice_renders() {
    let mut input = input("");
    input.seller = invoicer_pdf_render::Seller::default();
    input.customer.address.clear();
    input.customer.tax_id.clear();
    input.customer.code.clear();
    let invoice = &mut input.invoice;
    invoice.lines.clear();
    invoice.taxes.clear();
    invoice.order_number.clear();
    invoice.po_number.clear();
    invoice.terms.clear();
    invoice.notes.clear();
    invoice.due_date = None;
    invoice.subtotal = "0.00".into();
    invoice.total = "0.00".into();

    let pdf = Renderer::new().render(&input).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert_eq!(pdf.page_count, 1);
    assert!(text.contains("INV-2026-0001"), "{text}");
    assert!(text.contains("0.00 EUR"), "{text}");
    assert!(
        !text.contains("Due date"),
        "empty due date printed a label:\n{text}"
    );
    assert!(
        !text.contains("Notes"),
        "empty notes printed a label:\n{text}"
    );
}
