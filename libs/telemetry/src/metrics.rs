//! The service metrics, recorded through OpenTelemetry instruments. They are exported over
//! OTLP when an endpoint is set, and read by the Prometheus endpoint when it listens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// Bucket bounds in seconds for render, send and batch-run durations: 1 ms to 30 min.
const DURATION_BOUNDS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 1800.0,
];

/// Bucket bounds in seconds for one delivery, finer where a healthy delivery ends (5 to 500 ms)
/// so that percentiles read from the buckets are close.
const DELIVERY_BOUNDS: [f64; 24] = [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds for the number of invoices in a batch.
const SIZE_BOUNDS: [f64; 10] = [
    0.0, 1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 100000.0,
];

/// The instruments every service records into.
pub struct Metrics {
    messages: Counter<u64>,
    smtp_replies: Counter<u64>,
    render_duration: Histogram<f64>,
    send_duration: Histogram<f64>,
    batch_duration: Histogram<f64>,
    batch_size: Histogram<u64>,
    delivery_duration: Histogram<f64>,
    deferred: Arc<DeferredSnapshot>,
}

/// The deferred queue as the orchestrator last counted it. The gauges report nothing before
/// the first count.
#[derive(Default)]
struct DeferredSnapshot {
    depth: AtomicU64,
    oldest_age_millis: AtomicU64,
    counted: std::sync::atomic::AtomicBool,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Returns the process's instruments, created on first use from the global meter provider.
/// `init` installs that provider first, so call this only after it (or accept no-op
/// instruments, as in tests that set up no telemetry).
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("invoicer")))
}

impl Metrics {
    fn new(meter: &Meter) -> Metrics {
        let deferred = Arc::new(DeferredSnapshot::default());
        let depth_source = deferred.clone();
        meter
            .u64_observable_gauge("invoicer.deferred.depth")
            .with_description("Deliveries waiting in the deferred state for a retry")
            .with_unit("{delivery}")
            .with_callback(move |observer| {
                if depth_source.counted.load(Ordering::Relaxed) {
                    observer.observe(depth_source.depth.load(Ordering::Relaxed), &[]);
                }
            })
            .build();
        let age_source = deferred.clone();
        meter
            .f64_observable_gauge("invoicer.deferred.oldest_age")
            .with_description("Age of the oldest deferred delivery since it was created")
            .with_unit("s")
            .with_callback(move |observer| {
                if age_source.counted.load(Ordering::Relaxed) {
                    let millis = age_source.oldest_age_millis.load(Ordering::Relaxed);
                    observer.observe(millis as f64 / 1000.0, &[]);
                }
            })
            .build();
        Metrics {
            messages: meter
                .u64_counter("invoicer.messages")
                .with_description("Email messages handed to mail-delivery, by outcome")
                .with_unit("{message}")
                .build(),
            smtp_replies: meter
                .u64_counter("invoicer.smtp.replies")
                .with_description("SMTP replies to RCPT TO and to the end of DATA, by code class")
                .with_unit("{reply}")
                .build(),
            render_duration: meter
                .f64_histogram("invoicer.render.duration")
                .with_description("Time to render one invoice PDF")
                .with_unit("s")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            send_duration: meter
                .f64_histogram("invoicer.send.duration")
                .with_description("Time to send one message over SMTP or write it to the outbox")
                .with_unit("s")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            batch_duration: meter
                .f64_histogram("invoicer.batch.duration")
                .with_description("Time from the start of a batch to its reconciliation")
                .with_unit("s")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            batch_size: meter
                .u64_histogram("invoicer.batch.size")
                .with_description("Eligible invoice deliveries in a batch")
                .with_unit("{delivery}")
                .with_boundaries(SIZE_BOUNDS.to_vec())
                .build(),
            delivery_duration: meter
                .f64_histogram("invoicer.delivery.duration")
                .with_description(
                    "Time to take one delivery from claimed to its end state: read, render, send, log",
                )
                .with_unit("s")
                .with_boundaries(DELIVERY_BOUNDS.to_vec())
                .build(),
            deferred,
        }
    }

    /// Counts one message with its outcome (`sent`, `failed`, `deferred`, `unknown`, ...).
    pub fn record_message(&self, outcome: &str) {
        self.messages
            .add(1, &[KeyValue::new("outcome", outcome.to_owned())]);
    }

    /// Counts one SMTP reply by its class (`2xx`, `4xx`, `5xx`); a code of 0 (no reply) is
    /// counted as `none`.
    pub fn record_smtp_reply(&self, code: u32) {
        self.smtp_replies
            .add(1, &[KeyValue::new("class", reply_class(code))]);
    }

    pub fn record_render(&self, elapsed: Duration) {
        self.render_duration.record(elapsed.as_secs_f64(), &[]);
    }

    pub fn record_send(&self, elapsed: Duration, outcome: &str) {
        self.send_duration.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("outcome", outcome.to_owned())],
        );
    }

    /// Records a finished batch: its run time, and its eligible deliveries.
    pub fn record_batch(&self, elapsed: Duration, eligible: u64, status: &str) {
        let attributes = [KeyValue::new("status", status.to_owned())];
        self.batch_duration
            .record(elapsed.as_secs_f64(), &attributes);
        self.batch_size.record(eligible, &attributes);
    }

    /// Records one delivery's time from claimed to its end state (`sent`, `skipped`, ...).
    pub fn record_delivery(&self, elapsed: Duration, state: &str) {
        self.delivery_duration.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("state", state.to_owned())],
        );
    }

    /// Stores the latest count of deferred deliveries and the age of the oldest one.
    pub fn set_deferred(&self, depth: u64, oldest_age: Duration) {
        let millis = u64::try_from(oldest_age.as_millis()).unwrap_or(u64::MAX);
        self.deferred.depth.store(depth, Ordering::Relaxed);
        self.deferred
            .oldest_age_millis
            .store(millis, Ordering::Relaxed);
        self.deferred.counted.store(true, Ordering::Relaxed);
    }
}

fn reply_class(code: u32) -> &'static str {
    match code {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_classes() {
        assert_eq!(reply_class(250), "2xx");
        assert_eq!(reply_class(354), "3xx");
        assert_eq!(reply_class(451), "4xx");
        assert_eq!(reply_class(550), "5xx");
        assert_eq!(reply_class(0), "none");
        assert_eq!(reply_class(99), "none");
    }
}
