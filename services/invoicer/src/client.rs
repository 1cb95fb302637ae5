//! gRPC clients the CLI commands use, dialing `client.endpoint`.

use std::time::Duration;

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
        // The error names the endpoint, or the TLS setting that failed.
        let channel = lazy_channel(endpoint, Some(timeout), &config.client.tls).map_err(|e| {
            anyhow::anyhow!(
                "{e}; the endpoint comes from --endpoint or INVOICER_ENDPOINT, a URL such as http://127.0.0.1:50051"
            )
        })?;
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

/// Turns a gRPC error into a message for the operator, naming the endpoint when it is down,
/// when the server there is not an invoicer server, or when the call timed out.
pub(crate) fn describe(endpoint: &str, status: tonic::Status) -> anyhow::Error {
    let message = status.message();
    // rustls' words for a reply that is not TLS, as from a plaintext server.
    if endpoint.starts_with("https://") && message.contains("InvalidContentType") {
        return anyhow::anyhow!(
            "the server at {endpoint} did not respond with TLS ({message}); if it serves plaintext, dial http:// instead"
        );
    }
    // tonic's words for a client deadline that passed, here `client.timeout_secs`.
    if status.code() == tonic::Code::Cancelled && message == "Timeout expired" {
        return anyhow::anyhow!(
            "no response from {endpoint} within client.timeout_secs; the server may still finish the request, so check its result before repeating it, or raise client.timeout_secs"
        );
    }
    // tonic's words for a peer that does not speak HTTP/2, such as a Redis or HTTP/1 server.
    if message.contains("h2 protocol error") {
        return anyhow::anyhow!(
            "the server at {endpoint} is not an invoicer gRPC server ({message}); check the address and port in --endpoint or INVOICER_ENDPOINT (the server's default is http://127.0.0.1:50051)"
        );
    }
    // A connection closed before any response: a PostgreSQL server gave either, and so does
    // an invoicer server that stops in the middle of a call.
    let closed = status.code() == tonic::Code::Cancelled
        || (status.code() == tonic::Code::Unknown && message == "transport error");
    if closed {
        return anyhow::anyhow!(
            "the connection to {endpoint} closed without a gRPC response ({message}): either the address is not an invoicer server (check --endpoint or INVOICER_ENDPOINT) or the server stopped during the call (check its log)"
        );
    }
    match status.code() {
        tonic::Code::Unavailable => {
            // "tcp connect error" alone hides why; the innermost error has the system's reason.
            let cause = innermost_cause(&status)
                .filter(|cause| cause != message)
                .map(|cause| format!(" ({cause})"))
                .unwrap_or_default();
            anyhow::anyhow!(
                "cannot reach invoicer at {endpoint}: {message}{cause}; start it with `invoicer serve` or set INVOICER_ENDPOINT"
            )
        }
        tonic::Code::Unauthenticated => anyhow::anyhow!(
            "{message} (Unauthenticated); set INVOICER_TOKEN to a token the server accepts"
        ),
        code => anyhow::anyhow!("{message} ({code:?})"),
    }
}

/// Returns the text of the last error in `status`'s source chain, such as "Connection refused
/// (os error 111)".
fn innermost_cause(status: &tonic::Status) -> Option<String> {
    let mut cause = std::error::Error::source(status)?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}
