//! gRPC clients the CLI commands use, dialing `client.endpoint`.

use std::time::Duration;

use anyhow::Context;
use invoicer_kit::auth::{Secret, read_token_file};
use invoicer_kit::client::{OutgoingInterceptor, lazy_channel};
use invoicer_kit::{Config, GrpcChannel};
use invoicer_proto::audit_log::v1::audit_log_service_client::AuditLogServiceClient;
use invoicer_proto::invoice_query::v1::invoice_query_service_client::InvoiceQueryServiceClient;
use invoicer_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use invoicer_telemetry::grpc::ClientTracing;
use tonic::service::interceptor::InterceptedService;

const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct Clients {
    pub(crate) invoices: InvoiceQueryServiceClient<GrpcChannel>,
    pub(crate) orchestrator: OrchestratorServiceClient<GrpcChannel>,
    pub(crate) audit: AuditLogServiceClient<GrpcChannel>,
    pub(crate) endpoint: String,
}

impl Clients {
    pub(crate) fn new(config: &Config, endpoint: &str) -> anyhow::Result<Clients> {
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            anyhow::bail!(
                "invalid endpoint {endpoint:?}: use a URL such as http://127.0.0.1:50051 (--endpoint or INVOICER_ENDPOINT)"
            );
        }
        let timeout = Duration::from_secs(config.client.timeout_secs);
        let channel = lazy_channel(endpoint, Some(timeout), &config.client.tls)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("invalid endpoint {endpoint:?}; set INVOICER_ENDPOINT to a URL such as http://127.0.0.1:50051"))?;
        let token = client_token(config)?;
        let interceptor = OutgoingInterceptor::new(token.as_ref().map(Secret::expose))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let channel = InterceptedService::new(ClientTracing::new(channel, endpoint), interceptor);
        Ok(Clients {
            invoices: InvoiceQueryServiceClient::new(channel.clone()),
            orchestrator: OrchestratorServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            audit: AuditLogServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES),
            endpoint: endpoint.to_owned(),
        })
    }
}

/// Returns the bearer token the CLI sends: `INVOICER_TOKEN`, else the first line of
/// `client.token_file`, else none.
fn client_token(config: &Config) -> anyhow::Result<Option<Secret>> {
    if let Some(token) = &config.client.token {
        return Ok(Some(token.clone()));
    }
    match &config.client.token_file {
        Some(path) => Ok(Some(read_token_file("client.token_file", path)?)),
        None => Ok(None),
    }
}

/// Turns a gRPC error into a message for the operator, naming the endpoint when it is down.
pub(crate) fn describe(endpoint: &str, status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable => anyhow::anyhow!(
            "cannot reach invoicer at {endpoint}: {}; start it with `invoicer serve` or set INVOICER_ENDPOINT",
            status.message()
        ),
        tonic::Code::Unauthenticated => anyhow::anyhow!(
            "{} (Unauthenticated); set INVOICER_TOKEN to a token the server accepts",
            status.message()
        ),
        code => anyhow::anyhow!("{} ({code:?})", status.message()),
    }
}
