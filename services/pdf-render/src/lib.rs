//! pdf-render: turns an invoice into a PDF with Typst, in process, with the templates and fonts
//! embedded in the binary. It keeps no state. This is the only crate that depends on Typst.
//!
//! Other crates either call it over gRPC (`PdfRenderService`, served by [`PdfRenderPlugin`])
//! or, like benchmarks, call [`Renderer::render`] directly.

mod api;
mod document;
mod error;
mod file_name;
mod input;
mod locale;
mod render;
mod templates;
mod validate;
mod world;

use invoicer_kit::{BoxError, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

pub use error::RenderError;
pub use file_name::pdf_file_name;
pub use input::{Customer, Invoice, InvoiceKind, InvoiceLine, RenderInput, Seller, Tax};
pub use locale::Locale;
pub use render::{RenderedPdf, Renderer};
pub use templates::DEFAULT_TEMPLATE;

/// The pdf-render service for the `invoicer` host. It needs no configuration and no store.
#[derive(Debug, Clone, Copy, Default)]
pub struct PdfRenderPlugin;

#[tonic::async_trait]
impl ServicePlugin for PdfRenderPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::PdfRender
    }

    async fn start(
        &self,
        _context: ServiceContext,
        routes: &mut RoutesBuilder,
    ) -> Result<(), BoxError> {
        // Loading the fonts and templates here keeps that cost out of the first request.
        let renderer = tokio::task::spawn_blocking(Renderer::new).await?;
        tracing::info!(templates = %renderer.template_names().join(","), "pdf renderer ready");
        api::add_service(routes, renderer);
        Ok(())
    }
}
