//! audit-log: the append-only email log. One entry per outcome of a send attempt, linked
//! into a SHA-256 hash chain that `VerifyLog` recomputes.

mod api;
mod chain;
mod entry;
mod error;
mod query;
mod service;
mod store;
mod validate;

use invoicer_kit::{BoxError, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

use crate::service::AuditLog;
use crate::store::Store;

/// The audit-log service for the `invoicer` host.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLogPlugin;

#[tonic::async_trait]
impl ServicePlugin for AuditLogPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::AuditLog
    }

    /// Connects to the service's database, migrates it and adds `AuditLogService`.
    async fn start(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) -> Result<(), BoxError> {
        let url = ctx.config.database_url_for(ServiceName::AuditLog);
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        let backend = store.backend_name();
        routes.add_service(api::server(AuditLog::new(store)));
        tracing::info!(service = %ServiceName::AuditLog, database = backend, "audit-log started");
        Ok(())
    }
}
