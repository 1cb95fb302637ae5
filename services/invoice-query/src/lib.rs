//! invoice-query: owns customers, contacts and invoices as the ERP posted them. It imports
//! ERP exports (`UpsertInvoices`), keeps every invoice revision, and serves `GetInvoice`,
//! `GetCustomer` and `ListInvoicesToNotify` for the orchestrator.

mod api;
mod canonical;
mod error;
mod import;
mod model;
mod paging;
mod service;
mod store;
mod validate;

use std::sync::Arc;

use invoicer_kit::{BoxError, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

pub use api::MAX_CHUNK_BYTES;
pub use import::FORMAT as EXPORT_FORMAT;
pub use service::MAX_DOCUMENT_BYTES;

/// The invoice-query service as a host plugin: opens its database, runs the migrations and
/// serves `invoicer.invoice_query.v1.InvoiceQueryService`.
#[derive(Debug, Default, Clone, Copy)]
pub struct InvoiceQueryPlugin;

impl InvoiceQueryPlugin {
    pub fn new() -> Self {
        InvoiceQueryPlugin
    }
}

#[tonic::async_trait]
impl ServicePlugin for InvoiceQueryPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::InvoiceQuery
    }

    async fn start(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) -> Result<(), BoxError> {
        let url = ctx.config.database_url_for(ServiceName::InvoiceQuery);
        let store = store::Store::connect(&url).await?;
        tracing::info!(
            database = store.backend_name(),
            "invoice-query started, migrations applied"
        );
        let service = Arc::new(service::InvoiceQuery::new(store));
        routes.add_service(api::server(service));
        Ok(())
    }
}
