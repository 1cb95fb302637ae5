//! An OTLP/gRPC receiver on 127.0.0.1 for the tests: stores every span and the names of the
//! metrics it is sent.

// Each test binary that includes this module reads a different part of what was received.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

/// A link from a span to another span, ids in lowercase hex.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedLink {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
}

/// One span as the receiver got it, with ids in lowercase hex.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedSpan {
    /// `service.name` of the resource that exported the span.
    pub(crate) service: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_span_id: String,
    pub(crate) trace_state: String,
    pub(crate) name: String,
    pub(crate) kind: i32,
    pub(crate) attributes: BTreeMap<String, String>,
    /// Attributes of the span's events (its log lines), one map per event.
    pub(crate) event_attributes: Vec<BTreeMap<String, String>>,
    pub(crate) links: Vec<ReceivedLink>,
}

impl ReceivedSpan {
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub(crate) fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }
}

#[derive(Clone, Default)]
struct Store {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// `(service.name, metric name)` of every metric received.
    metrics: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = service_name(resource_spans.resource.as_ref().map(|r| &r.attributes[..]));
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    trace_state: span.trace_state,
                    name: span.name,
                    kind: span.kind,
                    attributes: attribute_map(&span.attributes),
                    event_attributes: span
                        .events
                        .iter()
                        .map(|event| attribute_map(&event.attributes))
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|link| ReceivedLink {
                            trace_id: hex::encode(&link.trace_id),
                            span_id: hex::encode(&link.span_id),
                        })
                        .collect(),
                });
            }
        }
        self.spans
            .lock()
            .map_err(|_| tonic::Status::internal("span store lock poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_metrics in request.into_inner().resource_metrics {
            let service = service_name(
                resource_metrics
                    .resource
                    .as_ref()
                    .map(|r| &r.attributes[..]),
            );
            for metric in resource_metrics
                .scope_metrics
                .into_iter()
                .flat_map(|scope| scope.metrics)
            {
                received.push((service.clone(), metric.name));
            }
        }
        self.metrics
            .lock()
            .map_err(|_| tonic::Status::internal("metric store lock poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn service_name(attributes: Option<&[KeyValue]>) -> String {
    attributes
        .map(attribute_map)
        .and_then(|map| map.get("service.name").cloned())
        .unwrap_or_default()
}

fn attribute_map(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|pair| (pair.key.clone(), any_value_text(pair.value.as_ref())))
        .collect()
}

fn any_value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// What the receiver got until it stopped.
pub(crate) struct Received {
    pub(crate) spans: Vec<ReceivedSpan>,
    pub(crate) metrics: Vec<(String, String)>,
}

/// A receiver serving traces and metrics on a loopback port until `stop`.
pub(crate) struct Receiver {
    pub(crate) address: SocketAddr,
    store: Store,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Receiver {
    pub(crate) async fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let store = Store::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(store.clone()))
            .add_service(MetricsServiceServer::new(store.clone()))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            });
        let task = tokio::spawn(server);
        Ok(Receiver {
            address,
            store,
            stop,
            task,
        })
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving and returns everything received.
    pub(crate) async fn stop(self) -> Result<Received> {
        let _ = self.stop.send(());
        self.task.await??;
        let spans = self
            .store
            .spans
            .lock()
            .map_err(|_| anyhow::anyhow!("span store lock poisoned"))?
            .clone();
        let metrics = self
            .store
            .metrics
            .lock()
            .map_err(|_| anyhow::anyhow!("metric store lock poisoned"))?
            .clone();
        Ok(Received { spans, metrics })
    }
}
