//! The access table: which roles may call each RPC. Health checks are exempt so that probes
//! need no credentials; every other path must be listed, or the server denies it.

use super::Role;

/// Paths under this prefix need no credentials.
pub const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

const VIEWER: &[Role] = &[Role::Viewer, Role::Operator, Role::Admin];
const VIEWER_OR_SERVICE: &[Role] = &[Role::Viewer, Role::Operator, Role::Admin, Role::Service];
const OPERATOR: &[Role] = &[Role::Operator, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_OR_SERVICE: &[Role] = &[Role::Admin, Role::Service];
const SERVICE: &[Role] = &[Role::Service];

/// Every RPC by its HTTP/2 path, with the roles admitted. Reflection only describes the API,
/// so any known caller may use it.
pub const RPC_ACCESS: &[(&str, &[Role])] = &[
    // invoice-query: importing is admin work; reads serve people and the orchestrator.
    (
        "/invoicer.invoice_query.v1.InvoiceQueryService/UpsertInvoices",
        ADMIN,
    ),
    (
        "/invoicer.invoice_query.v1.InvoiceQueryService/GetInvoice",
        VIEWER_OR_SERVICE,
    ),
    (
        "/invoicer.invoice_query.v1.InvoiceQueryService/ListInvoicesToNotify",
        VIEWER_OR_SERVICE,
    ),
    (
        "/invoicer.invoice_query.v1.InvoiceQueryService/GetCustomer",
        VIEWER_OR_SERVICE,
    ),
    // pdf-render: people preview through the orchestrator, which keeps the notifier's view.
    (
        "/invoicer.pdf_render.v1.PdfRenderService/RenderInvoice",
        ADMIN_OR_SERVICE,
    ),
    // mail-delivery: only the orchestrator sends, so every message ends up in the email log.
    (
        "/invoicer.mail_delivery.v1.MailDeliveryService/SendEmail",
        SERVICE,
    ),
    // audit-log: only the orchestrator appends.
    (
        "/invoicer.audit_log.v1.AuditLogService/AppendEntry",
        SERVICE,
    ),
    (
        "/invoicer.audit_log.v1.AuditLogService/ListEntries",
        VIEWER_OR_SERVICE,
    ),
    (
        "/invoicer.audit_log.v1.AuditLogService/GetEntry",
        VIEWER_OR_SERVICE,
    ),
    (
        "/invoicer.audit_log.v1.AuditLogService/VerifyLog",
        VIEWER_OR_SERVICE,
    ),
    // orchestrator
    (
        "/invoicer.orchestrator.v1.OrchestratorService/RunBatch",
        OPERATOR,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/WatchBatch",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/GetBatch",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/ListBatches",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/ResendInvoice",
        OPERATOR,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/PreviewInvoice",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/GetNotifier",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/UpdateNotifier",
        ADMIN,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/ListNotifiers",
        VIEWER,
    ),
    (
        "/invoicer.orchestrator.v1.OrchestratorService/ListNotifierChanges",
        VIEWER,
    ),
    // server reflection, both versions
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        VIEWER_OR_SERVICE,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        VIEWER_OR_SERVICE,
    ),
];

/// Returns the roles that may call `path`, or `None` for a path missing from the table.
pub fn allowed_roles(path: &str) -> Option<&'static [Role]> {
    RPC_ACCESS
        .iter()
        .find(|(listed, _)| *listed == path)
        .map(|(_, roles)| *roles)
}
