//! Logging and tracing: the `tracing` subscriber, OTLP trace export, and W3C trace-context
//! propagation across gRPC calls.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("invalid log format {0:?}: expected `text` or `json`")]
    Format(String),
    #[error("cannot set up OTLP export to {endpoint}: {message}")]
    Otlp { endpoint: String, message: String },
    #[error("a global tracing subscriber is already set")]
    AlreadySet,
}

pub struct TelemetryOptions<'a> {
    pub service_name: &'a str,
    /// `text` or `json`.
    pub log_format: &'a str,
    /// Used when `RUST_LOG` is unset.
    pub log_filter: &'a str,
    pub otlp_endpoint: Option<&'a str>,
}

/// Keeps the exporter alive; dropping it flushes the spans still buffered.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing traces at exit failed");
        }
    }
}

/// Installs the global subscriber: logs to stderr, and spans to OTLP when an endpoint is given.
pub fn init(options: &TelemetryOptions<'_>) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => options.log_filter.to_owned(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| TelemetryError::Filter {
        filter: filter.clone(),
        message: e.to_string(),
    })?;

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = match options.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(endpoint, options.service_name)?),
        None => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("invoicer")));

    let registry = tracing_subscriber::registry()
        .with(env_filter)
        .with(otel_layer);
    let result = match options.log_format {
        "text" => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        "json" => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        other => return Err(TelemetryError::Format(other.to_owned())),
    };
    result.map_err(|_| TelemetryError::AlreadySet)?;
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Otlp {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Writes the current span's trace context into outgoing gRPC metadata (`traceparent`).
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// Makes `span` a child of the trace context in incoming request headers, when there is one.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(context);
}

/// Trace id of the current span as 32 hex digits, or empty when there is no trace.
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt;

    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        String::new()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_str()) else {
            return;
        };
        self.0.insert(key, value);
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
