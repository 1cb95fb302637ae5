//! Logging, tracing and metrics: the `tracing` subscriber (text or JSON lines with trace ids),
//! OpenTelemetry traces and metrics with OTLP/gRPC export, the Prometheus endpoint, and W3C
//! trace-context propagation across gRPC calls.

pub mod grpc;
mod log_format;
mod metrics;
mod prometheus;
mod propagation;
mod sampler;

use std::io::IsTerminal;
use std::net::SocketAddr;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::{Layer as _, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

pub use metrics::{Metrics, metrics};
pub use propagation::{
    current_span_context, current_trace_id, inject_context, inject_into_headers, link_to_current,
    set_parent_from_headers,
};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("invalid log format {0:?}: expected `text` or `json`")]
    Format(String),
    #[error("cannot set up OTLP export to {endpoint}: {message}")]
    Otlp { endpoint: String, message: String },
    #[error("invalid trace sampler: {0}")]
    Sampler(String),
    #[error(
        "invalid metrics exporter {0:?} (OTEL_METRICS_EXPORTER): expected `otlp`, `prometheus` \
         or `none`, separated by commas"
    )]
    MetricsExporter(String),
    #[error(
        "cannot serve metrics on {address}: {cause}; set telemetry.metrics_listen to a free address"
    )]
    MetricsListen {
        address: SocketAddr,
        cause: std::io::Error,
    },
    #[error("a global tracing subscriber is already set")]
    AlreadySet,
}

pub struct TelemetryOptions<'a> {
    /// `service.name` of the resource: `OTEL_SERVICE_NAME`, or one the host derives.
    pub service_name: &'a str,
    /// `text` or `json`.
    pub log_format: &'a str,
    /// Used when `RUST_LOG` is unset.
    pub log_filter: &'a str,
    /// OTLP/gRPC endpoint for traces and metrics; `None` exports nothing.
    pub otlp_endpoint: Option<&'a str>,
    /// Sampler name and argument as `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` spell
    /// them; `None` samples every trace (a child follows its parent's decision).
    pub traces_sampler: Option<&'a str>,
    pub traces_sampler_arg: Option<&'a str>,
    /// `OTEL_METRICS_EXPORTER`: `otlp` (the default), `prometheus`, `none`, comma-separated.
    /// OTLP metrics are exported only when it names `otlp` and an endpoint is set.
    pub metrics_exporter: Option<&'a str>,
    /// Address of the Prometheus `/metrics` endpoint; `None` serves none.
    pub metrics_listen: Option<SocketAddr>,
}

/// Keeps the exporters alive; dropping it flushes the spans and metrics still buffered.
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    metrics_address: Option<SocketAddr>,
}

impl TelemetryGuard {
    /// Address the Prometheus endpoint listens on, when it was started.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.meter_provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing metrics at exit failed");
        }
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing traces at exit failed");
        }
    }
}

/// Installs the global subscriber, tracer provider and meter provider.
///
/// Every span gets a trace id, also with export off, so that the email log and the log lines
/// can name it. Spans and metrics are exported over OTLP only when an endpoint is given.
/// Must run inside a tokio runtime when `metrics_listen` is set.
pub fn init(options: &TelemetryOptions<'_>) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => options.log_filter.to_owned(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| TelemetryError::Filter {
        filter: filter.clone(),
        message: e.to_string(),
    })?;
    if options.log_format != "text" && options.log_format != "json" {
        return Err(TelemetryError::Format(options.log_format.to_owned()));
    }
    let sampler = sampler::parse(options.traces_sampler, options.traces_sampler_arg)
        .map_err(TelemetryError::Sampler)?;
    let exporters = MetricsExporters::parse(options.metrics_exporter)?;

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = resource(options.service_name);
    let tracer_provider = tracer_provider(options.otlp_endpoint, sampler, resource.clone())?;
    let (meter_provider, metrics_address) = meter_provider(options, &exporters, resource)?;
    if let Some(provider) = &meter_provider {
        opentelemetry::global::set_meter_provider(provider.clone());
    }

    // Each layer has its own filter: the log filter decides which lines are written, and the
    // trace filter which spans get a trace id, whatever the log level.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer_provider.tracer("invoicer"))
        .with_filter(trace_filter());
    let registry = tracing_subscriber::registry().with(otel_layer);
    let result = if options.log_format == "json" {
        let fmt_layer = tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(log_format::JsonWithTraceIds)
            .with_writer(std::io::stderr)
            .with_filter(env_filter);
        registry.with(fmt_layer).try_init()
    } else {
        // Colours only on a terminal, because a log file or the journal keeps escape codes.
        // An empty NO_COLOR counts as unset, as in tracing-subscriber 0.3.23's own default.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let ansi = std::io::stderr().is_terminal() && !no_color;
        let fmt_layer = tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .event_format(log_format::TextWithTraceIds::new())
            .with_writer(std::io::stderr)
            .with_filter(env_filter);
        registry.with(fmt_layer).try_init()
    };
    result.map_err(|_| TelemetryError::AlreadySet)?;
    // The listener is bound before the subscriber exists, so its address is logged here.
    if let Some(address) = metrics_address {
        tracing::info!(%address, "prometheus metrics endpoint listening on /metrics");
    }
    Ok(TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider,
        metrics_address,
    })
}

/// Spans that become OpenTelemetry spans: ours and the libraries' at `info`, except those of the
/// database and HTTP/2 libraries. Events (log lines) stay out of the traces, because a line
/// may name a Message-ID or an address and span data must not. The log lines name their
/// trace instead.
fn trace_filter() -> impl tracing_subscriber::layer::Filter<Registry> {
    let targets = Targets::new()
        .with_default(Level::INFO)
        .with_target("sqlx", Level::WARN)
        .with_target("sea_orm", Level::WARN)
        .with_target("sea_orm_migration", Level::WARN)
        .with_target("h2", Level::WARN)
        .with_target("hyper", Level::WARN)
        .with_target("tower", Level::WARN);
    targets.and(filter_fn(|metadata| metadata.is_span()))
}

fn resource(service_name: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
}

fn tracer_provider(
    endpoint: Option<&str>,
    sampler: opentelemetry_sdk::trace::Sampler,
    resource: opentelemetry_sdk::Resource,
) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;

    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_resource(resource);
    if let Some(endpoint) = endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| otlp_error(endpoint, e))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Builds the meter provider with a reader for each exporter that is on, or none when neither
/// OTLP nor the Prometheus endpoint is. Then the global no-op provider stays, because an SDK
/// provider without readers logs an error for every observable gauge created on it.
fn meter_provider(
    options: &TelemetryOptions<'_>,
    exporters: &MetricsExporters,
    resource: opentelemetry_sdk::Resource,
) -> Result<(Option<SdkMeterProvider>, Option<SocketAddr>), TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;

    let otlp = exporters.otlp && options.otlp_endpoint.is_some();
    if !otlp && options.metrics_listen.is_none() {
        return Ok((None, None));
    }
    let mut builder = SdkMeterProvider::builder().with_resource(resource);
    if let (true, Some(endpoint)) = (exporters.otlp, options.otlp_endpoint) {
        // The periodic reader takes its interval from OTEL_METRIC_EXPORT_INTERVAL
        // (milliseconds, 60 s when unset).
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| otlp_error(endpoint, e))?;
        builder = builder.with_periodic_exporter(exporter);
    }
    let mut metrics_address = None;
    if let Some(address) = options.metrics_listen {
        let reader = prometheus::SharedReader::new();
        builder = builder.with_reader(reader.clone());
        let local = prometheus::serve(address, reader)
            .map_err(|cause| TelemetryError::MetricsListen { address, cause })?;
        metrics_address = Some(local);
    }
    Ok((Some(builder.build()), metrics_address))
}

fn otlp_error(endpoint: &str, error: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Otlp {
        endpoint: endpoint.to_owned(),
        message: error.to_string(),
    }
}

/// The metrics exporters that `OTEL_METRICS_EXPORTER` names. The Prometheus endpoint is started
/// by `metrics_listen`, so `prometheus` only keeps OTLP off unless `otlp` is named too.
struct MetricsExporters {
    otlp: bool,
}

impl MetricsExporters {
    fn parse(value: Option<&str>) -> Result<MetricsExporters, TelemetryError> {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            return Ok(MetricsExporters { otlp: true });
        };
        let mut otlp = false;
        for name in value.split(',').map(str::trim) {
            match name {
                "otlp" => otlp = true,
                "prometheus" | "none" => {}
                _ => return Err(TelemetryError::MetricsExporter(value.to_owned())),
            }
        }
        Ok(MetricsExporters { otlp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_exporter_default_is_otlp() {
        assert!(MetricsExporters::parse(None).unwrap().otlp);
        assert!(MetricsExporters::parse(Some(" ")).unwrap().otlp);
    }

    #[test]
    fn metrics_exporter_none_and_prometheus_turn_otlp_off() {
        assert!(!MetricsExporters::parse(Some("none")).unwrap().otlp);
        assert!(!MetricsExporters::parse(Some("prometheus")).unwrap().otlp);
        assert!(
            MetricsExporters::parse(Some("prometheus, otlp"))
                .unwrap()
                .otlp
        );
    }

    fn options<'a>(
        otlp_endpoint: Option<&'a str>,
        metrics_listen: Option<SocketAddr>,
    ) -> TelemetryOptions<'a> {
        TelemetryOptions {
            service_name: "telemetry-test",
            log_format: "text",
            log_filter: "info",
            otlp_endpoint,
            traces_sampler: None,
            traces_sampler_arg: None,
            metrics_exporter: None,
            metrics_listen,
        }
    }

    #[test]
    fn no_metrics_exporter_builds_no_meter_provider() {
        let exporters = MetricsExporters::parse(None).unwrap();
        let (provider, address) =
            meter_provider(&options(None, None), &exporters, resource("test")).unwrap();
        assert!(provider.is_none());
        assert!(address.is_none());

        // An endpoint with OTLP metrics turned off is no exporter either.
        let exporters = MetricsExporters::parse(Some("none")).unwrap();
        let options = options(Some("http://127.0.0.1:4317"), None);
        let (provider, _) = meter_provider(&options, &exporters, resource("test")).unwrap();
        assert!(provider.is_none());
    }

    #[tokio::test]
    async fn prometheus_endpoint_builds_a_meter_provider() {
        // The endpoint is started by its address alone, whatever OTEL_METRICS_EXPORTER names.
        let exporters = MetricsExporters::parse(Some("none")).unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let (provider, address) =
            meter_provider(&options(None, Some(listen)), &exporters, resource("test")).unwrap();
        assert!(provider.is_some());
        let address = address.expect("the endpoint's bound address");
        assert!(address.ip().is_loopback(), "{address}");
        assert_ne!(address.port(), 0, "{address}");
    }

    #[test]
    fn metrics_exporter_unknown_is_rejected() {
        let error = MetricsExporters::parse(Some("console")).err().unwrap();
        assert!(error.to_string().contains("\"console\""), "{error}");
    }
}
