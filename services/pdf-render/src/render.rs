//! Compiles a template with the invoice data and exports the PDF, deterministically: the same
//! input gives the same bytes, in this process and in any other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use sha2::{Digest, Sha256};
use typst::World;
use typst::WorldExt;
use typst::diag::{SourceDiagnostic, Warned};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::syntax::Source;
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

use crate::document::{DocumentOptions, InvoiceDocument};
use crate::error::{RenderError, SetupError};
use crate::facturx;
use crate::file_name::pdf_file_name;
use crate::glyphs;
use crate::input::{Invoice, RenderInput};
use crate::sample;
use crate::settings::{PaymentDetails, RenderSettings};
use crate::templates::{CUSTOM_TEMPLATE, DEFAULT_TEMPLATE, Template, project_file};
use crate::world::{ASSETS, Assets, ExtraFile, RenderWorld};
use invoicer_domain::Locale;

/// Renders between two evictions of Typst's global memoization cache. A debug build of the
/// benchmark retained about 1 MB of memoized results per distinct one-page invoice, so the
/// cache must be evicted often to bound the memory.
const RENDERS_PER_EVICTION: u64 = 25;

/// Cache entries unused for more than this many evictions are dropped, so a result that only
/// one invoice used survives 25 to 50 renders. Entries that every render uses (the parsed
/// template, the fonts) are refreshed by each use and stay.
const EVICTION_MAX_AGE: usize = 1;

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

/// Renders invoices with the bundled fonts, the built-in template and, when configured, the
/// company's own template, logo and bank details. Cheap to clone: clones share their state.
#[derive(Clone)]
pub struct Renderer {
    state: Arc<RendererState>,
}

struct RendererState {
    assets: &'static Assets,
    custom: Option<Template>,
    /// The logo, served at the path in `logo_path`.
    extras: Vec<ExtraFile>,
    logo_path: Option<&'static str>,
    fallback_locale: Locale,
    payment: PaymentDetails,
    factur_x: Option<FacturX>,
}

/// The Factur-X additions of a render: the seller country and a main file per template that
/// attaches the XML.
struct FacturX {
    seller_country: String,
    builtin_main: Source,
    custom_main: Option<Source>,
}

impl FacturX {
    /// Returns the XML file to serve and the main file that attaches it to `template`.
    fn parts(
        &self,
        input: &RenderInput,
        template: &Template,
        payment: &PaymentDetails,
    ) -> Result<(ExtraFile, Source), RenderError> {
        let xml = facturx::invoice_xml(input, &self.seller_country, payment)?;
        let file = ExtraFile {
            id: project_file(facturx::XML_PATH),
            bytes: Bytes::new(xml.into_bytes()),
        };
        let main = match (&self.custom_main, template.name) {
            (Some(custom_main), CUSTOM_TEMPLATE) => custom_main.clone(),
            _ => self.builtin_main.clone(),
        };
        Ok((file, main))
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// Returns a renderer with the built-in template and no logo, bank details or Factur-X.
    pub fn new() -> Renderer {
        Renderer::from_state(RendererState {
            assets: &ASSETS,
            custom: None,
            extras: Vec::new(),
            logo_path: None,
            fallback_locale: Locale::English,
            payment: PaymentDetails::default(),
            factur_x: None,
        })
    }

    /// Builds a renderer from the company's settings: reads the custom template and the
    /// logo, then renders a sample invoice with them. A broken template or logo so stops the
    /// start-up with the file, line and message instead of failing every invoice.
    pub fn with_settings(settings: &RenderSettings) -> Result<Renderer, SetupError> {
        let country = settings.seller_country.trim();
        let valid_country = country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic());
        if settings.factur_x && !valid_country {
            return Err(SetupError::FacturXCountry {
                value: settings.seller_country.clone(),
            });
        }
        let custom = settings
            .template
            .as_deref()
            .map(Template::read)
            .transpose()?;
        let (extras, logo_path) = match &settings.logo {
            Some(path) => {
                let (extra, logo_path) = read_logo(path)?;
                (vec![extra], Some(logo_path))
            }
            None => (Vec::new(), None),
        };
        let fallback_locale =
            Locale::from_language_tag(&settings.default_language).unwrap_or(Locale::English);
        if Locale::from_language_tag(&settings.default_language).is_none() {
            tracing::warn!(
                language = %settings.default_language,
                "company.language has no pdf labels; customers without a known language get english"
            );
        }
        let factur_x = settings.factur_x.then(|| FacturX {
            seller_country: settings.seller_country.trim().to_ascii_uppercase(),
            builtin_main: facturx::attaching_main(&ASSETS.builtin),
            custom_main: custom.as_ref().map(facturx::attaching_main),
        });
        let renderer = Renderer::from_state(RendererState {
            assets: &ASSETS,
            custom,
            extras,
            logo_path,
            fallback_locale,
            payment: settings.payment.clone(),
            factur_x,
        });
        renderer.check_with_sample(settings)?;
        Ok(renderer)
    }

    fn from_state(state: RendererState) -> Renderer {
        Renderer {
            state: Arc::new(state),
        }
    }

    fn check_with_sample(&self, settings: &RenderSettings) -> Result<(), SetupError> {
        for name in self.template_names() {
            let mut input = sample::invoice();
            input.template = name.to_owned();
            match (self.render(&input), &settings.template) {
                (Ok(_), _) => {}
                (Err(RenderError::Compile { diagnostics, .. }), Some(path))
                    if name == CUSTOM_TEMPLATE =>
                {
                    return Err(SetupError::TemplateCheck {
                        path: path.clone(),
                        diagnostics,
                    });
                }
                (Err(error), _) => return Err(SetupError::SampleRender(error)),
            }
        }
        Ok(())
    }

    /// Names of the templates a request can select: `default`, and `custom` when the company
    /// set its own template, which requests without a name then get.
    pub fn template_names(&self) -> Vec<&'static str> {
        let mut names = vec![DEFAULT_TEMPLATE];
        if self.state.custom.is_some() {
            names.push(CUSTOM_TEMPLATE);
        }
        names
    }

    /// Renders one invoice to PDF. CPU-bound (a few milliseconds for one page): async callers
    /// run it on a blocking thread.
    pub fn render(&self, input: &RenderInput) -> Result<RenderedPdf, RenderError> {
        let state = &*self.state;
        let template = self.find_template(&input.template)?;
        let invoice = &input.invoice;
        if invoice.number.trim().is_empty() {
            return Err(RenderError::InvalidInput {
                field: "invoice.number",
                message: "must not be empty".to_owned(),
            });
        }

        let options = DocumentOptions {
            fallback_locale: state.fallback_locale,
            logo: state.logo_path,
            payment: &state.payment,
        };
        let data = InvoiceDocument::new(input, &options).to_json();
        let mut pdf_options = pdf_options(invoice, &data)?;
        let today = typst_date(invoice.issued_at)?;

        let mut extras = state.extras.clone();
        let mut main = None;
        if let Some(factur_x) = &state.factur_x {
            let (xml, wrapper) = factur_x.parts(input, template, &state.payment)?;
            extras.push(xml);
            main = Some(wrapper);
            pdf_options.standards = PdfStandards::new(&[PdfStandard::A_3b])
                .expect("PDF/A-3b alone is a valid set of standards");
        }

        let mut world = RenderWorld::new(state.assets, template, data, today).with_extras(&extras);
        if let Some(main) = main {
            world = world.with_main(main);
        }
        let document = compile(&world, &invoice.number)?;
        let missing = glyphs::missing_characters(&document);
        if !missing.is_empty() {
            return Err(RenderError::MissingGlyphs {
                characters: missing,
            });
        }
        let mut bytes =
            typst_pdf::pdf(&document, &pdf_options).map_err(|errors| RenderError::Export {
                template: template.name,
                diagnostics: describe_all(&world, &errors),
            })?;
        if state.factur_x.is_some() {
            bytes = facturx::add_xmp_metadata(&bytes)?;
        }
        evict_now_and_then();

        Ok(RenderedPdf {
            sha256: hex::encode(Sha256::digest(&bytes)),
            page_count: u32::try_from(document.pages().len()).unwrap_or(u32::MAX),
            file_name: pdf_file_name(&invoice.number),
            bytes,
        })
    }

    fn find_template(&self, name: &str) -> Result<&Template, RenderError> {
        let state = &*self.state;
        match name.trim() {
            "" => Ok(state.custom.as_ref().unwrap_or(&state.assets.builtin)),
            DEFAULT_TEMPLATE => Ok(&state.assets.builtin),
            CUSTOM_TEMPLATE if state.custom.is_some() => Ok(state.custom.as_ref().unwrap()),
            _ => Err(RenderError::UnknownTemplate {
                name: name.to_owned(),
                known: self.template_names(),
            }),
        }
    }
}

/// Reads the logo and returns it with the virtual path templates load it from.
fn read_logo(path: &std::path::Path) -> Result<(ExtraFile, &'static str), SetupError> {
    let extension = path
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    let logo_path = match extension.as_deref() {
        Some("png") => "/invoicer-logo.png",
        Some("jpg" | "jpeg") => "/invoicer-logo.jpg",
        Some("svg") => "/invoicer-logo.svg",
        _ => {
            return Err(SetupError::LogoFormat {
                path: path.to_owned(),
            });
        }
    };
    let bytes = std::fs::read(path).map_err(|cause| SetupError::LogoRead {
        path: path.to_owned(),
        cause,
    })?;
    let extra = ExtraFile {
        id: project_file(logo_path),
        bytes: Bytes::new(bytes),
    };
    Ok((extra, logo_path))
}

fn compile(world: &RenderWorld<'_>, invoice_number: &str) -> Result<PagedDocument, RenderError> {
    let template = world.template();
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
    let path = world.template().display_path(id);
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
    use super::*;

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
        let text = "#let data = json(\"/data.json\")\n#panic(\"template bug\")\n";
        let template = Template::single("broken", "/broken/main.typ", text);
        let data = br#"{"customer": {"name": "Secret Customer"}}"#.to_vec();
        let today = Datetime::from_ymd(2026, 12, 3).unwrap();
        let world = RenderWorld::new(&ASSETS, &template, data, today);

        let error = compile(&world, "INV-1").expect_err("the template panics");

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
