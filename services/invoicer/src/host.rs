//! Starts the chosen services in this process, each a plugin behind the one server.

use std::sync::Arc;

use invoicer_kit::server::{self, RunningServer};
use invoicer_kit::{BoxError, Config, ServiceName, ServicePlugin};

/// Returns the plugin of a service name.
pub fn plugin(name: ServiceName) -> Arc<dyn ServicePlugin> {
    match name {
        ServiceName::InvoiceQuery => Arc::new(invoicer_invoice_query::InvoiceQueryPlugin::new()),
        ServiceName::PdfRender => Arc::new(invoicer_pdf_render::PdfRenderPlugin),
        ServiceName::MailDelivery => Arc::new(invoicer_mail_delivery::MailDeliveryPlugin),
        ServiceName::AuditLog => Arc::new(invoicer_audit_log::AuditLogPlugin),
        ServiceName::Orchestrator => Arc::new(invoicer_orchestrator::OrchestratorPlugin),
    }
}

/// Starts `config.server.services` on `config.server.listen`.
pub async fn start(config: Arc<Config>) -> Result<RunningServer, BoxError> {
    let names = ServiceName::parse_list(&config.server.services)?;
    let plugins = names.into_iter().map(plugin).collect();
    server::start(config, plugins).await
}
