//! Labels, numbers, dates and amounts per customer language, read back with `pdftotext`.

mod common;

use common::{input, pdf_text, squashed};
use invoicer_pdf_render::{RenderSettings, Renderer};

/// Renders the common one-page invoice for `language` and checks every expected text.
fn check(language: &str, expected: &[&str]) {
    let pdf = Renderer::new().render(&input(language)).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));
    for expected in expected {
        assert!(
            text.contains(expected),
            "{language}: {expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn english_labels_and_formats() {
    check(
        "en-GB",
        &[
            "Invoice number INV-2026-0001",
            "Invoice date 3 December 2026",
            "Due date 2 January 2027",
            "617.25",
            "1,234.50",
            "19%",
            "Total 1,469.06 EUR",
            "Amount due 1,469.06 EUR",
            "Page 1 of 1",
        ],
    );
}

#[test]
fn german_labels_and_formats() {
    check(
        "de",
        &[
            "Rechnungsnummer INV-2026-0001",
            "Rechnungsdatum 03.12.2026",
            "Fällig am 02.01.2027",
            "617,25",
            "1.234,50",
            "19 %",
            "Gesamtbetrag 1.469,06 €",
            "Zahlbetrag 1.469,06 €",
            "Seite 1 von 1",
        ],
    );
}

#[test]
fn french_labels_and_formats() {
    check(
        "fr-FR",
        &[
            "Numéro de facture INV-2026-0001",
            "Date de facture 3 décembre 2026",
            "Date d’échéance 2 janvier 2027",
            "617,25",
            "1 234,50",
            "19 %",
            "Total 1 469,06 €",
            "Montant dû 1 469,06 €",
            "Page 1 sur 1",
        ],
    );
}

#[test]
fn spanish_labels_and_formats() {
    check(
        "es",
        &[
            "Número de factura INV-2026-0001",
            "Fecha de factura 3 de diciembre de 2026",
            "Fecha de vencimiento 2 de enero de 2027",
            "617,25",
            "1234,50",
            "19 %",
            "Total 1469,06 €",
            "Importe a pagar 1469,06 €",
            "Página 1 de 1",
        ],
    );
}

#[test]
fn portuguese_labels_and_formats() {
    check(
        "pt-BR",
        &[
            "Número da fatura INV-2026-0001",
            "Data da fatura 3 de dezembro de 2026",
            "Data de vencimento 2 de janeiro de 2027",
            "617,25",
            "1.234,50",
            "19%",
            "Total € 1.469,06",
            "Valor a pagar € 1.469,06",
            "Página 1 de 1",
        ],
    );
}

#[test]
fn dutch_labels_and_formats() {
    check(
        "nl",
        &[
            "Factuurnummer INV-2026-0001",
            "Factuurdatum 3 december 2026",
            "Vervaldatum 2 januari 2027",
            "617,25",
            "1.234,50",
            "19%",
            "Totaal € 1.469,06",
            "Te betalen € 1.469,06",
            "Pagina 1 van 1",
        ],
    );
}

#[test]
fn unknown_language_uses_company_language() {
    let settings = RenderSettings {
        default_language: "nl".into(),
        ..RenderSettings::default()
    };
    let renderer = Renderer::with_settings(&settings).unwrap();

    for language in ["sv-SE", ""] {
        let pdf = renderer.render(&input(language)).unwrap();
        let text = squashed(&pdf_text(&pdf.bytes));
        assert!(text.contains("Factuurnummer"), "{language:?}: {text}");
        assert!(text.contains("Totaal € 1.469,06"), "{language:?}: {text}");
    }
}

#[test]
fn amounts_keep_every_erp_digit() {
    let mut input = input("de");
    input.invoice.lines[0].quantity = "0.333333".into();
    input.invoice.lines[0].unit_price = "3703.703703".into();
    input.invoice.currency = "JPY".into();
    input.invoice.total = "1469".into();

    let text = squashed(&pdf_text(&Renderer::new().render(&input).unwrap().bytes));

    assert!(text.contains("0,333333"), "{text}");
    assert!(text.contains("3.703,703703"), "{text}");
    assert!(text.contains("Gesamtbetrag 1.469 JPY"), "{text}");
}
