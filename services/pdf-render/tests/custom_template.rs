//! A company's own Typst template from `pdf.template`: it renders with the files beside it,
//! and a broken one stops the start-up with the file, line and message.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{input, pdf_text, squashed};
use invoicer_kit::{Config, ServicePlugin, server};
use invoicer_pdf_render::{PdfRenderPlugin, RenderSettings, Renderer, SetupError};

const LOGO_PNG: &[u8] = include_bytes!("fixtures/logo.png");

const GOOD_TEMPLATE: &str = r#"#import "parts/heading.typ": banner
#let data = json("/data.json")
#set page(paper: "a5")
#set text(font: "Noto Sans")
#banner(data.labels.title + " " + data.number)
#image("stamp.png", width: 1cm)
#for line in data.lines [
  #line.sku: #line.description \
]
Custom total #data.total
"#;

const HEADING: &str = "#let banner(title) = text(size: 14pt, [CUSTOM LAYOUT #title])\n";

fn write_template(folder: &Path, main: &str) -> PathBuf {
    std::fs::create_dir_all(folder.join("parts")).unwrap();
    std::fs::write(folder.join("parts/heading.typ"), HEADING).unwrap();
    std::fs::write(folder.join("stamp.png"), LOGO_PNG).unwrap();
    let path = folder.join("invoice.typ");
    std::fs::write(&path, main).unwrap();
    path
}

fn settings(template: PathBuf) -> RenderSettings {
    RenderSettings {
        template: Some(template),
        ..RenderSettings::default()
    }
}

#[test]
fn custom_template_renders_with_its_files() {
    let folder = tempfile::tempdir().unwrap();
    let renderer =
        Renderer::with_settings(&settings(write_template(folder.path(), GOOD_TEMPLATE))).unwrap();

    let pdf = renderer.render(&input("de")).unwrap();
    let text = squashed(&pdf_text(&pdf.bytes));

    assert!(
        text.contains("CUSTOM LAYOUT Rechnung INV-2026-0001"),
        "{text}"
    );
    assert!(text.contains("WID-001: Widget number 1, blue"), "{text}");
    assert!(text.contains("Custom total 1.469,06 €"), "{text}");
}

#[test]
fn custom_template_leaves_default_selectable() {
    let folder = tempfile::tempdir().unwrap();
    let renderer =
        Renderer::with_settings(&settings(write_template(folder.path(), GOOD_TEMPLATE))).unwrap();
    let mut named = input("en");
    named.template = "default".into();

    let text = squashed(&pdf_text(&renderer.render(&named).unwrap().bytes));

    assert_eq!(renderer.template_names(), ["default", "custom"]);
    assert!(!text.contains("CUSTOM LAYOUT"), "{text}");
    assert!(text.contains("Invoice number"), "{text}");
}

#[test]
fn broken_template_names_file_line_and_message() {
    let folder = tempfile::tempdir().unwrap();
    let broken = "#let data = json(\"/data.json\")\n\n#data.no_such_field\n";
    let path = write_template(folder.path(), broken);

    let error = Renderer::with_settings(&settings(path.clone()))
        .err()
        .expect("setup should fail");

    let SetupError::TemplateCheck { diagnostics, .. } = &error else {
        panic!("expected TemplateCheck, got {error:?}");
    };
    let location = format!("{}:3:", path.display());
    assert!(
        diagnostics.iter().any(|line| line.starts_with(&location)),
        "no diagnostic at {location}: {diagnostics:?}"
    );
    let message = error.to_string();
    assert!(message.contains("no_such_field"), "{message}");
}

#[test]
fn syntax_error_in_imported_file_names_that_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = write_template(folder.path(), GOOD_TEMPLATE);
    std::fs::write(
        folder.path().join("parts/heading.typ"),
        "#let banner(title = \n",
    )
    .unwrap();

    let error = Renderer::with_settings(&settings(path))
        .err()
        .expect("setup should fail");

    let imported = folder.path().join("parts/heading.typ");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{}:1:", imported.display())),
        "{message}"
    );
}

#[test]
fn missing_template_file_names_path() {
    let error = Renderer::with_settings(&settings("/nonexistent/invoice.typ".into()))
        .err()
        .expect("setup should fail");

    assert!(
        matches!(error, SetupError::TemplateRead { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("/nonexistent/invoice.typ"),
        "{error}"
    );
}

#[tokio::test]
async fn service_start_fails_on_broken_template() {
    let folder = tempfile::tempdir().unwrap();
    let path = write_template(
        folder.path(),
        "#let data = json(\"/data.json\")\n#panic(\"oops\")\n",
    );
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.pdf.template = Some(path.clone());
    let plugins: Vec<Arc<dyn ServicePlugin>> = vec![Arc::new(PdfRenderPlugin)];

    let error = server::start(Arc::new(config), plugins)
        .await
        .err()
        .expect("start should fail");

    let message = error.to_string();
    assert!(
        message.contains(&format!("{}:2:", path.display())),
        "{message}"
    );
    assert!(message.contains("oops"), "{message}");
}
