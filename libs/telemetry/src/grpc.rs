//! Spans of gRPC calls after OpenTelemetry's RPC semantic conventions: one client span per
//! outgoing call (`ClientTracing`) and one server span per incoming request (`server_span`),
//! both named `<package>.<Service>/<Method>`. The span stays open until the response body has
//! ended, so that it also covers streaming responses, and it records `rpc.grpc.status_code`
//! from the `grpc-status` header or trailer.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http_body::{Body, Frame};
use tracing::Instrument;

use crate::propagation;

/// Wraps a channel so that every call gets a client span and carries its trace context.
#[derive(Clone)]
pub struct ClientTracing<S> {
    inner: S,
    host: String,
    port: Option<u16>,
}

impl<S> ClientTracing<S> {
    /// Wraps `inner`, a channel to `url` (such as `http://127.0.0.1:50051`).
    pub fn new(inner: S, url: &str) -> ClientTracing<S> {
        let uri: Option<http::Uri> = url.parse().ok();
        let host = uri
            .as_ref()
            .and_then(|uri| uri.host())
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.as_ref().and_then(|uri| {
            uri.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
        });
        ClientTracing { inner, host, port }
    }
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for ClientTracing<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (service, method) = split_rpc_path(&path);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = %self.host,
            server.port = self.port.map(i64::from),
        );
        propagation::inject_into_headers(&span, request.headers_mut());

        // Clone-and-swap keeps the instance that poll_ready found ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call_span = span.clone();
        Box::pin(
            async move {
                match inner.call(request).await {
                    Ok(response) => Ok(observe_response(response, span, Side::Client)),
                    Err(error) => {
                        // The call never reached the server: gRPC clients report UNAVAILABLE.
                        record_status(&span, tonic::Code::Unavailable as i32, Side::Client);
                        tracing::debug!(%error, "grpc call failed before a response");
                        Err(error)
                    }
                }
            }
            .instrument(call_span),
        )
    }
}

/// Builds the server span of one request, a child of the caller's trace context in the
/// request headers. `local` is the address the server listens on.
pub fn server_span<B>(request: &http::Request<B>, local: std::net::SocketAddr) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = split_rpc_path(path);
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        server.address = %local.ip(),
        server.port = i64::from(local.port()),
    );
    propagation::set_parent_from_headers(&span, request.headers());
    span
}

/// Keeps `span` open until the response body of a server span ends, and records its status.
pub fn observe_server_response(
    response: http::Response<tonic::body::Body>,
    span: tracing::Span,
) -> http::Response<tonic::body::Body> {
    observe_response(response, span, Side::Server)
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

fn observe_response(
    response: http::Response<tonic::body::Body>,
    span: tracing::Span,
    side: Side,
) -> http::Response<tonic::body::Body> {
    // A trailers-only response (an error status before any message) carries the status in
    // its headers; every other response carries it in the trailers.
    if let Some(code) = status_of(response.headers()) {
        record_status(&span, code, side);
        return response;
    }
    response.map(|body| {
        tonic::body::Body::new(StatusBody {
            inner: body,
            span,
            side,
            recorded: false,
        })
    })
}

fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
}

/// Sets `rpc.grpc.status_code`, and marks the span as an error as the RPC conventions
/// specify. On the client that is any status but OK, on the server only the codes that mean a
/// server fault.
fn record_status(span: &tracing::Span, code: i32, side: Side) {
    span.record("rpc.grpc.status_code", i64::from(code));
    let error = match side {
        Side::Client => code != tonic::Code::Ok as i32,
        Side::Server => matches!(
            tonic::Code::from_i32(code),
            tonic::Code::Unknown
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unimplemented
                | tonic::Code::Internal
                | tonic::Code::Unavailable
                | tonic::Code::DataLoss
        ),
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
}

/// A response body that records the status from the trailers and keeps the span open until
/// the body ends or is dropped.
struct StatusBody {
    inner: tonic::body::Body,
    span: tracing::Span,
    side: Side,
    recorded: bool,
}

impl Body for StatusBody {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(code) = status_of(trailers)
        {
            record_status(&self.span, code, self.side);
            self.recorded = true;
        }
        if let Poll::Ready(Some(Err(_))) = &polled
            && !self.recorded
        {
            // The stream broke before a status arrived.
            record_status(&self.span, tonic::Code::Unknown as i32, self.side);
            self.recorded = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn split_rpc_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_path_splits_into_service_and_method() {
        assert_eq!(
            split_rpc_path("/invoicer.pdf_render.v1.PdfRenderService/RenderInvoice"),
            ("invoicer.pdf_render.v1.PdfRenderService", "RenderInvoice")
        );
        assert_eq!(split_rpc_path("/broken"), ("broken", ""));
    }

    #[test]
    fn client_address_from_url() {
        let traced = ClientTracing::new((), "http://127.0.0.1:50051");
        assert_eq!(traced.host, "127.0.0.1");
        assert_eq!(traced.port, Some(50051));
        let traced = ClientTracing::new((), "https://[::1]");
        assert_eq!(traced.host, "::1");
        assert_eq!(traced.port, Some(443));
    }

    #[test]
    fn status_from_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_of(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(status_of(&headers), Some(14));
    }
}
