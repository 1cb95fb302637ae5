//! The Prometheus endpoint: `GET /metrics` returns the metrics in the Prometheus text format
//! (version 0.0.4), read on each request from an OpenTelemetry `ManualReader`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Gauge, Histogram, Metric, MetricData, ResourceMetrics, Sum,
};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head the endpoint reads; scrapers send a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A `ManualReader` that the meter provider and the endpoint share.
#[derive(Debug, Clone)]
pub(crate) struct SharedReader(Arc<ManualReader>);

impl SharedReader {
    pub(crate) fn new() -> SharedReader {
        SharedReader(Arc::new(
            ManualReader::builder()
                .with_temporality(Temporality::Cumulative)
                .build(),
        ))
    }

    /// Collects every instrument now and renders the Prometheus text.
    pub(crate) fn render(&self) -> Result<String, String> {
        let mut collected = ResourceMetrics::default();
        self.0
            .collect(&mut collected)
            .map_err(|error| format!("collecting metrics failed: {error}"))?;
        Ok(render_text(&collected))
    }
}

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Binds `address` now, so that a taken port is an error at start-up, and serves the endpoint
/// on the current tokio runtime.
pub(crate) fn serve(address: SocketAddr, reader: SharedReader) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let listener = TcpListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let reader = reader.clone();
                    tokio::spawn(async move {
                        let answered =
                            tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &reader)).await;
                        match answered {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "metrics request failed");
                            }
                            Err(_) => tracing::debug!(%peer, "metrics request timed out"),
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a metrics connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(local)
}

/// Reads one request head and writes one response, then closes the connection.
async fn answer(mut stream: TcpStream, reader: &SharedReader) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
        if head.len() > MAX_REQUEST_BYTES {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    let request_line = String::from_utf8_lossy(&head);
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return respond(&mut stream, "404 Not Found", "only /metrics is served\n").await;
    }
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "use GET\n").await;
    }
    match reader.render() {
        Ok(text) => respond(&mut stream, "200 OK", &text).await,
        Err(error) => {
            tracing::warn!(%error, "metrics request failed");
            respond(
                &mut stream,
                "500 Internal Server Error",
                &format!("{error}\n"),
            )
            .await
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Renders every metric in the Prometheus text format. Names follow the OpenTelemetry to
/// Prometheus mapping: dots become underscores, the unit `s` adds `_seconds`, and a
/// monotonic sum adds `_total`.
pub(crate) fn render_text(collected: &ResourceMetrics) -> String {
    let mut out = String::new();
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            render_metric(&mut out, metric);
        }
    }
    out
}

fn render_metric(out: &mut String, metric: &Metric) {
    let base = base_name(metric.name(), metric.unit());
    match metric.data() {
        AggregatedMetrics::F64(data) => render_data(out, &base, metric.description(), data),
        AggregatedMetrics::U64(data) => render_data(out, &base, metric.description(), data),
        AggregatedMetrics::I64(data) => render_data(out, &base, metric.description(), data),
    }
}

fn render_data<T: Copy + Into<Number>>(
    out: &mut String,
    base: &str,
    help: &str,
    data: &MetricData<T>,
) {
    match data {
        MetricData::Sum(sum) => render_sum(out, base, help, sum),
        MetricData::Gauge(gauge) => render_gauge(out, base, help, gauge),
        MetricData::Histogram(histogram) => render_histogram(out, base, help, histogram),
        // NOTE: no instrument here uses exponential histograms, so they are left out.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn render_sum<T: Copy + Into<Number>>(out: &mut String, base: &str, help: &str, sum: &Sum<T>) {
    let (name, kind) = if sum.is_monotonic() {
        (format!("{base}_total"), "counter")
    } else {
        (base.to_owned(), "gauge")
    };
    header(out, &name, help, kind);
    for point in sum.data_points() {
        sample(
            out,
            &name,
            &labels(point.attributes(), None),
            point.value().into(),
        );
    }
}

fn render_gauge<T: Copy + Into<Number>>(
    out: &mut String,
    base: &str,
    help: &str,
    gauge: &Gauge<T>,
) {
    header(out, base, help, "gauge");
    for point in gauge.data_points() {
        sample(
            out,
            base,
            &labels(point.attributes(), None),
            point.value().into(),
        );
    }
}

fn render_histogram<T: Copy + Into<Number>>(
    out: &mut String,
    base: &str,
    help: &str,
    histogram: &Histogram<T>,
) {
    header(out, base, help, "histogram");
    let bucket = format!("{base}_bucket");
    for point in histogram.data_points() {
        let mut cumulative = 0u64;
        let bounds: Vec<f64> = point.bounds().collect();
        for (index, count) in point.bucket_counts().enumerate() {
            cumulative += count;
            let le = bounds
                .get(index)
                .map_or_else(|| "+Inf".to_owned(), |bound| format_float(*bound));
            let labels = labels(point.attributes(), Some(&le));
            sample(out, &bucket, &labels, Number::Unsigned(cumulative));
        }
        let labels = labels(point.attributes(), None);
        sample(out, &format!("{base}_sum"), &labels, point.sum().into());
        sample(
            out,
            &format!("{base}_count"),
            &labels,
            Number::Unsigned(point.count()),
        );
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: Number) {
    let value = match value {
        Number::Float(number) => format_float(number),
        Number::Unsigned(number) => number.to_string(),
        Number::Signed(number) => number.to_string(),
    };
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// One sample value; Prometheus reads integers and floats alike.
pub(crate) enum Number {
    Float(f64),
    Unsigned(u64),
    Signed(i64),
}

impl From<f64> for Number {
    fn from(value: f64) -> Number {
        Number::Float(value)
    }
}

impl From<u64> for Number {
    fn from(value: u64) -> Number {
        Number::Unsigned(value)
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Number {
        Number::Signed(value)
    }
}

fn format_float(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value.is_nan() {
        return "NaN".to_owned();
    }
    value.to_string()
}

fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = attributes
        .map(|pair| {
            format!(
                "{}=\"{}\"",
                sanitize(pair.key.as_str()),
                escape_label(&value_text(&pair.value))
            )
        })
        .collect();
    pairs.sort();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.as_str().to_owned(),
        other => other.to_string(),
    }
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Turns an OpenTelemetry name and unit into a Prometheus metric name.
fn base_name(name: &str, unit: &str) -> String {
    let mut base = sanitize(name);
    let suffix = match unit {
        "s" => "_seconds",
        "By" => "_bytes",
        "ms" => "_milliseconds",
        _ => "",
    };
    if !suffix.is_empty() && !base.ends_with(suffix) {
        base.push_str(suffix);
    }
    base
}

/// Replaces every character that a Prometheus name may not contain with `_`.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    fn provider() -> (SdkMeterProvider, SharedReader) {
        let reader = SharedReader::new();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        (provider, reader)
    }

    #[test]
    fn counter_renders_with_total_suffix_and_labels() {
        let (provider, reader) = provider();
        let counter = provider
            .meter("test")
            .u64_counter("invoicer.messages")
            .with_description("Messages")
            .build();
        counter.add(2, &[KeyValue::new("outcome", "sent")]);
        counter.add(1, &[KeyValue::new("outcome", "deferred")]);
        let text = reader.render().unwrap();
        assert!(
            text.contains("# TYPE invoicer_messages_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_messages_total{outcome=\"sent\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_messages_total{outcome=\"deferred\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let (provider, reader) = provider();
        let histogram = provider
            .meter("test")
            .f64_histogram("invoicer.render.duration")
            .with_unit("s")
            .with_boundaries(vec![0.01, 0.1])
            .build();
        histogram.record(0.005, &[]);
        histogram.record(0.05, &[]);
        histogram.record(0.5, &[]);
        let text = reader.render().unwrap();
        assert!(
            text.contains("# TYPE invoicer_render_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_render_duration_seconds_bucket{le=\"0.01\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_render_duration_seconds_bucket{le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_render_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_render_duration_seconds_count 3\n"),
            "{text}"
        );
        assert!(
            text.contains("invoicer_render_duration_seconds_sum 0.555"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(
            base_name("invoicer.smtp.replies", "{reply}"),
            "invoicer_smtp_replies"
        );
        assert_eq!(
            base_name("invoicer.deferred.oldest_age", "s"),
            "invoicer_deferred_oldest_age_seconds"
        );
        assert_eq!(sanitize("1-x"), "_1_x");
    }
}
