//! W3C trace context (`traceparent` and `tracestate`) in gRPC metadata and HTTP headers, and
//! the trace and span ids of the current span.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// Writes `span`'s trace context into outgoing request headers.
pub fn inject_into_headers(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace context in incoming request headers, when there is one.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// Returns the span context of the current span, when it belongs to a trace.
pub fn current_span_context() -> Option<SpanContext> {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Adds a link from `span` to the span that is current now (the batch that started a
/// delivery, for example), when there is one.
pub fn link_to_current(span: &tracing::Span) {
    if let Some(span_context) = current_span_context() {
        span.add_link(span_context);
    }
}

/// Trace id of the current span as 32 hex digits, or empty when there is no trace.
pub fn current_trace_id() -> String {
    current_span_context()
        .map(|span_context| span_context.trace_id().to_string())
        .unwrap_or_default()
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

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(name) = http::header::HeaderName::from_bytes(key.as_bytes()) else {
            return;
        };
        let Ok(value) = http::HeaderValue::from_str(&value) else {
            return;
        };
        self.0.insert(name, value);
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

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACESTATE: &str = "vendor=opaque,other=1";

    #[test]
    fn traceparent_and_tracestate_pass_through() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert("traceparent", http::HeaderValue::from_static(TRACEPARENT));
        incoming.insert("tracestate", http::HeaderValue::from_static(TRACESTATE));
        let context = TraceContextPropagator::new().extract(&HeaderExtractor(&incoming));
        let span_context = context.span().span_context().clone();
        assert!(span_context.is_remote());
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.trace_state().header(), TRACESTATE);

        let mut outgoing = http::HeaderMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut outgoing));
        assert_eq!(outgoing["traceparent"], TRACEPARENT);
        assert_eq!(outgoing["tracestate"], TRACESTATE);

        let mut metadata = tonic::metadata::MetadataMap::new();
        TraceContextPropagator::new()
            .inject_context(&context, &mut MetadataInjector(&mut metadata));
        assert_eq!(metadata.get("traceparent").unwrap(), TRACEPARENT);
        assert_eq!(metadata.get("tracestate").unwrap(), TRACESTATE);
    }

    #[test]
    fn invalid_traceparent_is_ignored() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert("traceparent", http::HeaderValue::from_static("00-zz-01"));
        let context = TraceContextPropagator::new().extract(&HeaderExtractor(&incoming));
        assert!(!context.span().span_context().is_valid());
    }
}
