//! The one trait through which a service plugs into the `invoicer` host.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use tonic::service::RoutesBuilder;

use crate::client::Channels;
use crate::config::Config;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The five services, by the names the `--services` flag and the config use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    InvoiceQuery,
    PdfRender,
    MailDelivery,
    AuditLog,
    Orchestrator,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::InvoiceQuery,
        ServiceName::PdfRender,
        ServiceName::MailDelivery,
        ServiceName::AuditLog,
        ServiceName::Orchestrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::InvoiceQuery => "invoice-query",
            ServiceName::PdfRender => "pdf-render",
            ServiceName::MailDelivery => "mail-delivery",
            ServiceName::AuditLog => "audit-log",
            ServiceName::Orchestrator => "orchestrator",
        }
    }

    /// Fully qualified gRPC service name, as health checks and reflection report it.
    pub fn grpc_service(self) -> &'static str {
        match self {
            ServiceName::InvoiceQuery => "invoicer.invoice_query.v1.InvoiceQueryService",
            ServiceName::PdfRender => "invoicer.pdf_render.v1.PdfRenderService",
            ServiceName::MailDelivery => "invoicer.mail_delivery.v1.MailDeliveryService",
            ServiceName::AuditLog => "invoicer.audit_log.v1.AuditLogService",
            ServiceName::Orchestrator => "invoicer.orchestrator.v1.OrchestratorService",
        }
    }

    /// File name stem of the service's SQLite database in the data folder.
    pub fn database_stem(self) -> &'static str {
        match self {
            ServiceName::InvoiceQuery => "invoice_query",
            ServiceName::PdfRender => "pdf_render",
            ServiceName::MailDelivery => "mail_delivery",
            ServiceName::AuditLog => "audit_log",
            ServiceName::Orchestrator => "orchestrator",
        }
    }

    /// Parses a `--services` value: `all` or a comma-separated list of names.
    pub fn parse_list(list: &str) -> Result<Vec<ServiceName>, String> {
        let list = list.trim();
        if list.is_empty() || list == "all" {
            return Ok(Self::ALL.to_vec());
        }
        let mut names = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let name = part.parse::<ServiceName>()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|n| n.as_str()).collect();
                format!(
                    "unknown service {s:?}: expected `all` or a comma-separated list of {}",
                    known.join(", ")
                )
            })
    }
}

/// Resolves when the host begins its shutdown. Cloneable; background tasks select on it.
/// It also counts the plugins' in-flight work (`begin_work`), which the host lets finish,
/// up to its grace period, before it stops serving.
#[derive(Clone)]
pub struct Shutdown {
    receiver: tokio::sync::watch::Receiver<bool>,
    work: Arc<tokio::sync::watch::Sender<usize>>,
}

/// One piece of in-flight work; dropping it tells the host the work ended.
pub struct WorkGuard {
    work: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        self.work
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}

impl Shutdown {
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        let (work, _) = tokio::sync::watch::channel(0);
        let shutdown = Shutdown {
            receiver,
            work: Arc::new(work),
        };
        (sender, shutdown)
    }

    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    pub async fn triggered(&mut self) {
        // An error means the sender is gone, which also means shutdown.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Registers in-flight work that a draining host waits for; it ends when the guard drops.
    pub fn begin_work(&self) -> WorkGuard {
        self.work.send_modify(|count| *count += 1);
        WorkGuard {
            work: self.work.clone(),
        }
    }

    /// Returns the number of pieces of work in flight.
    pub fn work_in_flight(&self) -> usize {
        *self.work.borrow()
    }

    /// Resolves once no work is in flight.
    pub async fn work_done(&self) {
        let mut receiver = self.work.subscribe();
        let _ = receiver.wait_for(|count| *count == 0).await;
    }
}

/// The handles a service gets from the host when it starts.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    /// Channels to the other services, whether they run in this process or elsewhere.
    pub channels: Channels,
    pub shutdown: Shutdown,
}

/// A service that plugs into the host. The host calls `start` once, adds the routes to its
/// server and reports the service as serving on `grpc.health.v1` once every plugin started.
#[tonic::async_trait]
pub trait ServicePlugin: Send + Sync + 'static {
    fn name(&self) -> ServiceName;

    /// Opens the service's stores, runs its migrations and adds its gRPC server to `routes`.
    /// Background work (such as a scheduler) is spawned here and stops on `ctx.shutdown`.
    async fn start(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) -> Result<(), BoxError>;

    /// Checks the settings that `start` reads from `config` and would stop on, without
    /// opening a store, creating a folder or connecting anywhere. The default has none.
    fn check_config(&self, config: &Config) -> Result<(), BoxError> {
        let _ = config;
        Ok(())
    }
}
