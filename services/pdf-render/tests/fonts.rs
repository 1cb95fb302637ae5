//! The bundled fonts: Latin, Greek, Cyrillic, Chinese, Japanese, Korean and Arabic text renders
//! with a real font, and text in a script no bundled font covers fails the render with the
//! missing characters named.

mod common;

use common::{input, pdf_fonts, pdf_text, squashed};
use invoicer_pdf_render::{RenderError, Renderer};

fn render_customer_name(name: &str) -> Result<invoicer_pdf_render::RenderedPdf, RenderError> {
    let mut input = input("en");
    input.customer.name = name.into();
    Renderer::new().render(&input)
}

fn check_script(script: &str, name: &str, font: &str) {
    let pdf = render_customer_name(name)
        .unwrap_or_else(|error| panic!("{script}: render of {name:?} failed: {error}"));
    let fonts = pdf_fonts(&pdf.bytes);
    assert!(
        fonts.iter().any(|used| used.starts_with(font)),
        "{script}: font {font} not used, the PDF has {fonts:?}"
    );
    let text = squashed(&pdf_text(&pdf.bytes));
    let reversed: String = name.chars().rev().collect();
    assert!(
        text.contains(name) || text.contains(&reversed),
        "{script}: {name:?} missing from:\n{text}"
    );
}

#[test]
fn latin_text_uses_noto_sans() {
    check_script("Latin", "Łukasz Šťastný Øre Ærø Œuvre", "NotoSans");
}

#[test]
fn greek_text_uses_noto_sans() {
    check_script("Greek", "Ελληνική Εταιρεία", "NotoSans");
}

#[test]
fn cyrillic_text_uses_noto_sans() {
    check_script("Cyrillic", "Общество Ромашка", "NotoSans");
}

#[test]
fn chinese_text_uses_wenquanyi() {
    check_script("Chinese", "北京测试有限公司", "WenQuanYiMicroHei");
}

#[test]
fn japanese_text_uses_wenquanyi() {
    check_script("Japanese", "株式会社テストひらがな", "WenQuanYiMicroHei");
}

#[test]
fn korean_text_uses_wenquanyi() {
    check_script("Korean", "주식회사 테스트", "WenQuanYiMicroHei");
}

#[test]
fn arabic_text_uses_noto_sans_arabic() {
    let pdf = render_customer_name("شركة الاختبار").expect("arabic renders");
    let fonts = pdf_fonts(&pdf.bytes);
    assert!(
        fonts.iter().any(|font| font.starts_with("NotoSansArabic")),
        "Noto Sans Arabic not used, the PDF has {fonts:?}"
    );
}

#[test]
fn uncovered_script_fails_naming_characters() {
    let error = render_customer_name("บริษัท ทดสอบ").expect_err("thai has no bundled font");

    let RenderError::MissingGlyphs { characters } = &error else {
        panic!("expected MissingGlyphs, got {error:?}");
    };
    assert!(characters.contains(&'บ'), "{characters:?}");
    let message = error.to_string();
    assert!(message.contains("U+0E1A 'บ'"), "{message}");
    assert!(
        !message.contains("U+0020"),
        "spaces are not missing: {message}"
    );
}

#[test]
fn uncovered_character_in_line_fails() {
    let mut input = input("en");
    input.invoice.lines[0].description = "Widget \u{1F600}".into();

    let error = Renderer::new()
        .render(&input)
        .expect_err("emoji has no bundled font");

    assert!(error.to_string().contains("U+1F600"), "{error}");
}
