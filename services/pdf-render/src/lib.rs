//! pdf-render: turns an invoice into a PDF with Typst, in process, with the built-in template
//! and fonts embedded in the binary, or the company's own template read at start-up. It keeps
//! no state. This is the only crate that depends on Typst.
//!
//! Other crates either call it over gRPC (`PdfRenderService`, served by [`PdfRenderPlugin`])
//! or, like benchmarks, call [`Renderer::render`] directly.

mod api;
mod document;
mod error;
mod facturx;
mod file_name;
mod glyphs;
mod input;
mod labels;
mod render;
pub mod sample;
mod settings;
mod templates;
mod validate;
mod world;

use invoicer_kit::{BoxError, Config, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

pub use api::render_request;
pub use error::{RenderError, SetupError};
pub use file_name::pdf_file_name;
pub use input::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};
pub use invoicer_domain::Locale;
pub use render::{RenderedPdf, Renderer};
pub use settings::{PaymentDetails, RenderSettings};
pub use templates::{CUSTOM_TEMPLATE, DEFAULT_TEMPLATE};

/// The pdf-render service for the `invoicer` host. It reads the `[pdf]` and `[company]`
/// configuration at start and keeps no store.
#[derive(Debug, Clone, Copy, Default)]
pub struct PdfRenderPlugin;

#[tonic::async_trait]
impl ServicePlugin for PdfRenderPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::PdfRender
    }

    async fn start(
        &self,
        context: ServiceContext,
        routes: &mut RoutesBuilder,
    ) -> Result<(), BoxError> {
        // Loading the fonts and templates and rendering the sample invoice here keeps that
        // cost out of the first request, and a broken template or logo stops the start.
        let settings = RenderSettings::from_config(&context.config);
        let renderer = tokio::task::spawn_blocking(move || Renderer::with_settings(&settings))
            .await?
            .inspect_err(|error| tracing::error!(error = %error, "pdf renderer setup failed"))?;
        tracing::info!(
            templates = %renderer.template_names().join(","),
            factur_x = context.config.pdf.factur_x,
            "pdf renderer ready"
        );
        api::add_service(routes, renderer).inspect_err(
            |error| tracing::error!(error = %error, "starting the render threads failed"),
        )?;
        Ok(())
    }

    /// Reads the template and the logo and renders the sample invoice, as `start` does.
    fn check_config(&self, config: &Config) -> Result<(), BoxError> {
        Renderer::with_settings(&RenderSettings::from_config(config))?;
        Ok(())
    }
}
