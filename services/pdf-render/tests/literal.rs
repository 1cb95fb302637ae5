//! Customer data is data: each character Typst markup gives a meaning to, put into every text
//! field, prints literally and changes neither the fonts (no bold or italic appears) nor the
//! page count. One test per character, so a failure names it.

mod common;

use std::sync::OnceLock;

use common::{input, pdf_fonts, pdf_text, squashed};
use invoicer_pdf_render::{RenderInput, Renderer};

/// Field names and setters for every text field that the default template prints.
type Setter = fn(&mut RenderInput, String);

const FIELDS: &[(&str, Setter)] = &[
    ("seller.name", |input, value| input.seller.name = value),
    ("seller.address", |input, value| {
        input.seller.address[0] = value
    }),
    ("seller.tax_id", |input, value| input.seller.tax_id = value),
    ("seller.email", |input, value| input.seller.email = value),
    ("seller.phone", |input, value| input.seller.phone = value),
    ("seller.website", |input, value| {
        input.seller.website = value
    }),
    ("customer.code", |input, value| input.customer.code = value),
    ("customer.name", |input, value| input.customer.name = value),
    ("customer.address", |input, value| {
        input.customer.address[0] = value
    }),
    ("customer.tax_id", |input, value| {
        input.customer.tax_id = value
    }),
    ("invoice.number", |input, value| {
        input.invoice.number = value
    }),
    ("invoice.order_number", |input, value| {
        input.invoice.order_number = value
    }),
    ("invoice.po_number", |input, value| {
        input.invoice.po_number = value
    }),
    ("invoice.terms", |input, value| input.invoice.terms = value),
    ("invoice.currency", |input, value| {
        input.invoice.currency = value
    }),
    ("invoice.notes", |input, value| input.invoice.notes = value),
    ("line.sku", |input, value| {
        input.invoice.lines[0].sku = value
    }),
    ("line.description", |input, value| {
        input.invoice.lines[0].description = value
    }),
    ("line.unit", |input, value| {
        input.invoice.lines[0].unit = value
    }),
    ("tax.name", |input, value| {
        input.invoice.taxes[0].name = value
    }),
];

/// Builds the value of field `index`, with the character alone, doubled, after a space and at
/// the end, so that pairs such as `**`, `//` and `==` and a leading `#` or `=` are covered.
fn value(index: usize, character: char) -> String {
    let c = character;
    format!("f{index}{c}a{c}{c}b {c}c{c}")
}

fn input_with(character: char) -> RenderInput {
    let mut input = input("en");
    for (index, (_, set)) in FIELDS.iter().enumerate() {
        set(&mut input, value(index, character));
    }
    input
}

/// Page count and fonts of the same invoice with the letter `x` in place of the character.
fn baseline() -> &'static (u32, Vec<String>) {
    static BASELINE: OnceLock<(u32, Vec<String>)> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let pdf = Renderer::new().render(&input_with('x')).unwrap();
        (pdf.page_count, pdf_fonts(&pdf.bytes))
    })
}

fn check_literal(character: char) {
    let pdf = Renderer::new()
        .render(&input_with(character))
        .unwrap_or_else(|error| panic!("{character:?}: render failed: {error}"));
    let text = squashed(&pdf_text(&pdf.bytes));

    for (index, (field, _)) in FIELDS.iter().enumerate() {
        let expected = value(index, character);
        assert!(
            text.contains(&expected),
            "{character:?} in {field}: {expected:?} is not printed literally in:\n{text}"
        );
    }
    let (pages, fonts) = baseline();
    assert_eq!(
        pdf.page_count, *pages,
        "{character:?} changed the page count"
    );
    assert_eq!(
        &pdf_fonts(&pdf.bytes),
        fonts,
        "{character:?} changed the fonts, so some text was styled"
    );
}

macro_rules! literal_tests {
    ($($name:ident => $character:expr,)*) => {
        $(
            #[test]
            fn $name() {
                check_literal($character);
            }
        )*
    };
}

literal_tests! {
    backslash_prints_literally => '\\',
    hash_prints_literally => '#',
    open_bracket_prints_literally => '[',
    close_bracket_prints_literally => ']',
    dollar_prints_literally => '$',
    asterisk_prints_literally => '*',
    underscore_prints_literally => '_',
    less_than_prints_literally => '<',
    greater_than_prints_literally => '>',
    at_sign_prints_literally => '@',
    slash_prints_literally => '/',
    double_quote_prints_literally => '"',
    single_quote_prints_literally => '\'',
    tilde_prints_literally => '~',
    equals_prints_literally => '=',
    minus_prints_literally => '-',
    plus_prints_literally => '+',
    backtick_prints_literally => '`',
}
