//! Compiles a template with the invoice data and exports the PDF, deterministically: the same
//! input gives the same bytes, in this process and in any other.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use sha2::{Digest, Sha256};
use typst::World;
use typst::WorldExt;
use typst::diag::{SourceDiagnostic, Warned};
use typst::foundations::{Datetime, Smart};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, Timestamp};

use crate::document::InvoiceDocument;
use crate::error::RenderError;
use crate::file_name::pdf_file_name;
use crate::input::{Invoice, RenderInput};
use crate::templates::{DEFAULT_TEMPLATE, Template};
use crate::world::{ASSETS, Assets, RenderWorld};

/// Renders between two evictions of Typst's global memoization cache.
const RENDERS_PER_EVICTION: u64 = 100;

/// Cache entries unused for this many evictions are dropped. With an eviction every 100
/// renders, a result therefore survives at least 100 renders without a cache hit.
const EVICTION_MAX_AGE: usize = 2;

/// Counts renders across all renderers, because the cache they share is global too.
static RENDER_COUNT: AtomicU64 = AtomicU64::new(0);

/// A rendered invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPdf {
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lowercase hex.
    pub sha256: String,
    pub page_count: u32,
    /// `<invoice number>.pdf`, safe as a file name on common file systems.
    pub file_name: String,
}

/// Renders invoices with the embedded templates and fonts. Cheap to create and to clone:
/// every renderer shares the fonts and parsed templates, which load on first use.
#[derive(Clone, Copy)]
pub struct Renderer {
    assets: &'static Assets,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        Renderer { assets: &ASSETS }
    }

    /// Names of the embedded templates.
    pub fn template_names(&self) -> Vec<&'static str> {
        self.assets.template_names()
    }

    /// Renders one invoice to PDF. CPU-bound (a few milliseconds for one page): async callers
    /// run it on a blocking thread.
    pub fn render(&self, input: &RenderInput) -> Result<RenderedPdf, RenderError> {
        let template = self.find_template(&input.template)?;
        let invoice = &input.invoice;
        if invoice.number.trim().is_empty() {
            return Err(RenderError::InvalidInput {
                field: "invoice.number",
                message: "must not be empty".to_owned(),
            });
        }

        let data = InvoiceDocument::new(input).to_json();
        let options = pdf_options(invoice, &data)?;
        let today = typst_date(invoice.issued_at)?;
        let world = RenderWorld::new(self.assets, template, data, today);
        let document = compile(&world, template, &invoice.number)?;
        let bytes = typst_pdf::pdf(&document, &options).map_err(|errors| RenderError::Export {
            template: template.name,
            diagnostics: describe_all(&world, &errors),
        })?;
        evict_now_and_then();

        Ok(RenderedPdf {
            sha256: hex::encode(Sha256::digest(&bytes)),
            page_count: u32::try_from(document.pages().len()).unwrap_or(u32::MAX),
            file_name: pdf_file_name(&invoice.number),
            bytes,
        })
    }

    fn find_template(&self, name: &str) -> Result<&'static Template, RenderError> {
        let name = if name.trim().is_empty() {
            DEFAULT_TEMPLATE
        } else {
            name
        };
        self.assets
            .template(name)
            .ok_or_else(|| RenderError::UnknownTemplate {
                name: name.to_owned(),
                known: self.template_names(),
            })
    }
}

fn compile(
    world: &RenderWorld<'_>,
    template: &Template,
    invoice_number: &str,
) -> Result<PagedDocument, RenderError> {
    let Warned { output, warnings } = typst::compile::<PagedDocument>(world);
    if !warnings.is_empty() {
        tracing::warn!(
            invoice = %invoice_number,
            template = template.name,
            warnings = %describe_all(world, &warnings).join("; "),
            "typst compile produced warnings"
        );
    }
    output.map_err(|errors| RenderError::Compile {
        template: template.name,
        diagnostics: describe_all(world, &errors),
    })
}

/// Builds the PDF identifier and creation date from the invoice, so that they never depend on
/// the clock or the process.
fn pdf_options(invoice: &Invoice, data: &[u8]) -> Result<PdfOptions, RenderError> {
    let content_hash = match invoice.content_sha256.trim() {
        "" => hex::encode(Sha256::digest(data)),
        hash => hash.to_owned(),
    };
    Ok(PdfOptions {
        ident: Smart::Custom(format!(
            "invoicer:{}:{}:{content_hash}",
            invoice.number, invoice.revision
        )),
        timestamp: Some(pdf_timestamp(invoice.issued_at)?),
        ..PdfOptions::default()
    })
}

/// Converts the issue instant, in the offset the ERP sent, to a PDF timestamp. An offset that
/// is not a whole number of minutes, which PDF dates cannot express, becomes the same instant
/// in UTC.
fn pdf_timestamp(issued_at: DateTime<FixedOffset>) -> Result<Timestamp, RenderError> {
    let offset_seconds = issued_at.offset().local_minus_utc();
    if offset_seconds % 60 == 0 {
        let local = typst_datetime(issued_at)?;
        if let Some(timestamp) = Timestamp::new_local(local, offset_seconds / 60) {
            return Ok(timestamp);
        }
    }
    let utc = issued_at.with_timezone(&FixedOffset::east_opt(0).expect("zero is a valid offset"));
    Ok(Timestamp::new_utc(typst_datetime(utc)?))
}

fn typst_datetime(instant: DateTime<FixedOffset>) -> Result<Datetime, RenderError> {
    Datetime::from_ymd_hms(
        instant.year(),
        u8::try_from(instant.month()).unwrap_or_default(),
        u8::try_from(instant.day()).unwrap_or_default(),
        u8::try_from(instant.hour()).unwrap_or_default(),
        u8::try_from(instant.minute()).unwrap_or_default(),
        u8::try_from(instant.second()).unwrap_or_default(),
    )
    .ok_or_else(|| out_of_range(instant))
}

fn typst_date(instant: DateTime<FixedOffset>) -> Result<Datetime, RenderError> {
    let month = u8::try_from(instant.month()).unwrap_or_default();
    let day = u8::try_from(instant.day()).unwrap_or_default();
    Datetime::from_ymd(instant.year(), month, day).ok_or_else(|| out_of_range(instant))
}

fn out_of_range(instant: DateTime<FixedOffset>) -> RenderError {
    RenderError::InvalidInput {
        field: "invoice.issued_at",
        message: format!(
            "{} is outside the years -9999 to 9999 that a PDF can hold",
            instant
        ),
    }
}

fn evict_now_and_then() {
    let count = RENDER_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if count.is_multiple_of(RENDERS_PER_EVICTION) {
        typst::comemo::evict(EVICTION_MAX_AGE);
        tracing::debug!(renders = count, "evicted typst memoization cache");
    }
}

fn describe_all(world: &RenderWorld<'_>, diagnostics: &[SourceDiagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|diagnostic| describe(world, diagnostic))
        .collect()
}

/// Formats one diagnostic as `path:line:column: message (hint: ...)`. The path and position
/// point into the template sources or the data file; the text of the data is never included.
fn describe(world: &RenderWorld<'_>, diagnostic: &SourceDiagnostic) -> String {
    let mut text = match location(world, diagnostic) {
        Some(location) => format!("{location}: {}", diagnostic.message),
        None => diagnostic.message.to_string(),
    };
    for hint in &diagnostic.hints {
        text.push_str(&format!(" (hint: {})", hint.v));
    }
    text
}

fn location(world: &RenderWorld<'_>, diagnostic: &SourceDiagnostic) -> Option<String> {
    let id = diagnostic.span.id()?;
    let path = id.vpath().get_with_slash();
    let position = world.source(id).ok().and_then(|source| {
        let range = world.range(diagnostic.span)?;
        source.lines().byte_to_line_column(range.start)
    });
    Some(match position {
        Some((line, column)) => format!("{path}:{}:{}", line + 1, column + 1),
        None => path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use typst::syntax::Source;

    use super::*;
    use crate::templates::project_file;

    fn instant(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn timestamp_accepts_whole_minute_offsets() {
        for text in [
            "2026-12-03T16:20:00-06:00",
            "2026-12-03T16:20:00+05:45",
            "2026-12-03T16:20:00Z",
        ] {
            assert!(pdf_timestamp(instant(text)).is_ok(), "{text}");
        }
    }

    #[test]
    fn timestamp_of_second_offset_falls_back_to_utc() {
        let offset = FixedOffset::east_opt(3_601).unwrap();
        let issued_at = instant("2026-12-03T16:20:00Z").with_timezone(&offset);

        assert!(pdf_timestamp(issued_at).is_ok());
    }

    #[test]
    fn timestamp_rejects_year_past_9999() {
        let midnight = chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0);
        let issued_at = midnight.unwrap().and_utc().fixed_offset();

        let error = pdf_timestamp(issued_at).expect_err("year 10000 should be rejected");

        assert!(
            matches!(
                error,
                RenderError::InvalidInput {
                    field: "invoice.issued_at",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn compile_error_names_template_position() {
        let main = project_file("/broken/main.typ");
        let text = "#let data = json(\"/data.json\")\n#panic(\"template bug\")\n";
        let template = Template {
            name: "broken",
            main,
            sources: vec![Source::new(main, text.into())],
        };
        let data = br#"{"customer": {"name": "Secret Customer"}}"#.to_vec();
        let today = Datetime::from_ymd(2026, 12, 3).unwrap();
        let world = RenderWorld::new(&ASSETS, &template, data, today);

        let error = compile(&world, &template, "INV-1").expect_err("the template panics");

        let RenderError::Compile {
            template: name,
            diagnostics,
        } = &error
        else {
            panic!("expected a compile error, got {error:?}");
        };
        assert_eq!(*name, "broken");
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(
            diagnostics[0].starts_with("/broken/main.typ:2:2: "),
            "{diagnostics:?}"
        );
        assert!(diagnostics[0].contains("template bug"), "{diagnostics:?}");
        assert!(!diagnostics[0].contains("Secret"), "{diagnostics:?}");
    }
}
