//! Factur-X: with `factur_x` on, the PDF is PDF/A-3b with the invoice as EN 16931 XML, checked
//! by the `factur-x` Python package (XSD validation) through `tests/facturx_check.py`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{input, pdf_text, squashed};
use invoicer_pdf_render::{InvoiceKind, PaymentDetails, RenderSettings, Renderer};

fn factur_x_renderer() -> Renderer {
    Renderer::with_settings(&RenderSettings {
        factur_x: true,
        seller_country: "NO".into(),
        payment: PaymentDetails {
            account_holder: "Nordlys Software AS".into(),
            iban: "NO93 8601 1117 947".into(),
            bic: "DNBANOKK".into(),
            ..PaymentDetails::default()
        },
        ..RenderSettings::default()
    })
    .unwrap()
}

/// Returns whether the checker can run; outside CI a missing package skips the test, unless
/// `INVOICER_TEST_REQUIRE_PEERS=1`, which `.ci/run` sets.
fn checker_available() -> bool {
    let available = Command::new("python3")
        .args(["-c", "import facturx, pypdf, lxml"])
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        assert!(
            std::env::var("INVOICER_TEST_REQUIRE_PEERS").as_deref() != Ok("1"),
            "python3 with the factur-x package is required: pip install factur-x"
        );
        eprintln!("skipped: python3 with the factur-x package is missing (pip install factur-x)");
    }
    available
}

fn check_with_factur_x_package(pdf: &[u8]) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/facturx_check.py");

    let output = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "factur-x check failed: {stdout}\n{stderr}"
    );
}

#[test]
fn factur_x_invoice_passes_xsd_check() {
    if !checker_available() {
        return;
    }
    let pdf = factur_x_renderer().render(&input("de")).unwrap();
    check_with_factur_x_package(&pdf.bytes);
}

#[test]
fn factur_x_credit_note_passes_xsd_check() {
    if !checker_available() {
        return;
    }
    let mut credit_note = input("en");
    credit_note.invoice.kind = InvoiceKind::CreditNote;
    let pdf = factur_x_renderer().render(&credit_note).unwrap();
    check_with_factur_x_package(&pdf.bytes);
}

#[test]
fn factur_x_long_invoice_passes_xsd_check() {
    if !checker_available() {
        return;
    }
    let pdf = factur_x_renderer().render(&common::long_input(40)).unwrap();
    check_with_factur_x_package(&pdf.bytes);
}

#[test]
fn factur_x_pdf_is_deterministic_and_readable() {
    let renderer = factur_x_renderer();
    let first = renderer.render(&input("en")).unwrap();
    let second = renderer.render(&input("en")).unwrap();

    assert_eq!(
        first.bytes, second.bytes,
        "factur-x output differs between renders"
    );
    let text = squashed(&pdf_text(&first.bytes));
    assert!(text.contains("Total 1,469.06 EUR"), "{text}");
    assert_eq!(first.page_count, 1);
}

#[test]
fn factur_x_pdf_declares_pdf_a_3b() {
    let pdf = factur_x_renderer().render(&input("en")).unwrap();
    let raw = String::from_utf8_lossy(&pdf.bytes);

    assert!(
        raw.contains("<pdfaid:part>3</pdfaid:part>"),
        "no PDF/A part 3 in the XMP"
    );
    assert!(
        raw.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "no conformance B"
    );
    assert!(raw.contains("factur-x.xml"), "no factur-x.xml attachment");
}

#[test]
fn factur_x_off_has_no_attachment() {
    let pdf = Renderer::new().render(&input("en")).unwrap();
    assert!(!String::from_utf8_lossy(&pdf.bytes).contains("factur-x.xml"));
}

#[test]
fn factur_x_without_country_fails_setup() {
    let error = Renderer::with_settings(&RenderSettings {
        factur_x: true,
        ..RenderSettings::default()
    })
    .err()
    .expect("setup should fail");

    assert!(error.to_string().contains("company.country"), "{error}");
}
