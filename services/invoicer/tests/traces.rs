//! Checks that `invoicer demo` exports each invoice's delivery chain as one OpenTelemetry trace:
//! the orchestrator's `invoice.deliver` root span, and the server span of every gRPC call it
//! makes for that invoice, linked by parent span ids.

mod demo_process;
mod otlp_receiver;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use demo_process::run_demo;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otlp_receiver::{ReceivedSpan, Receiver};

/// The demo imports 412 invoices and renders and mails each one. A debug build on 2 cores took
/// 18 to 43 s while other builds ran, so this limit leaves a wide margin.
const DEMO_TIMEOUT: Duration = Duration::from_secs(300);

/// The invoice whose trace the test inspects: the first one of the Chinook sample.
const INVOICE: &str = "CH-2021-0001";

/// The RPCs the orchestrator makes while delivering one invoice, in call order.
const DELIVERY_METHODS: [&str; 4] = ["GetInvoice", "RenderInvoice", "SendEmail", "AppendEntry"];

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Walks from `span` up through the parents in `by_id` until it meets `ancestor_span_id`, and
/// returns the names passed on the way. The error describes where the chain broke.
fn chain_to<'a>(
    span: &'a ReceivedSpan,
    ancestor_span_id: &str,
    by_id: &HashMap<&str, &'a ReceivedSpan>,
) -> Result<Vec<&'a str>, String> {
    let mut names = vec![span.name.as_str()];
    let mut current = span;
    // Bounds the walk in case a bug makes the parent links circular.
    for _ in 0..by_id.len() {
        if current.parent_span_id == ancestor_span_id {
            return Ok(names);
        }
        if current.is_root() {
            return Err(format!(
                "{names:?} ends at the root span {:?} without reaching span {ancestor_span_id}",
                current.name
            ));
        }
        let Some(parent) = by_id.get(current.parent_span_id.as_str()) else {
            return Err(format!(
                "{names:?} has parent span {} that is not in the trace",
                current.parent_span_id
            ));
        };
        names.push(parent.name.as_str());
        current = parent;
    }
    Err(format!("{names:?} has circular parent links"))
}

/// Reads the number of eligible invoices from the demo's batch summary line
/// (`eligible 412  sent 412  ...`).
fn eligible_count(stdout: &str) -> Result<usize> {
    let count = stdout
        .lines()
        .find_map(|line| line.strip_prefix("eligible "))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no `eligible N` line in the demo output:\n{stdout}"))?;
    Ok(count.parse()?)
}

/// Asserts that the span of ListEntries arrived. The demo's last RPC ends moments before the
/// process exits, so only the flush at exit can export its span.
fn check_exit_flush(spans: &[ReceivedSpan]) {
    let exported = spans
        .iter()
        .any(|span| span.attribute("rpc.method") == Some("ListEntries"));
    assert!(
        exported,
        "no server span of ListEntries, the demo's last RPC, arrived: spans still buffered at \
         exit were not flushed"
    );
}

fn name_counts(spans: &[&ReceivedSpan]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for span in spans {
        *counts.entry(span.name.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_exports_one_trace_per_invoice() -> Result<()> {
    let receiver = Receiver::start().await?;
    let data_dir = tempfile::tempdir()?;
    let endpoint = receiver.endpoint();

    let started = Instant::now();
    let otlp = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let output = run_demo(data_dir.path(), "3650d", &otlp, DEMO_TIMEOUT).await?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "invoicer demo exited with {}; last log lines:\n{}",
        output.status,
        last_lines(&stderr, 40)
    );
    let spans = receiver.stop().await?.spans;
    eprintln!(
        "invoicer demo took {elapsed:?} and exported {} spans",
        spans.len()
    );

    let deliver_spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == "invoice.deliver")
        .collect();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let eligible = eligible_count(&stdout)?;
    assert_eq!(
        deliver_spans.len(),
        eligible,
        "the batch had {eligible} eligible invoices but {} invoice.deliver spans arrived: the \
         exporter dropped spans or did not flush them at exit; last log lines:\n{}",
        deliver_spans.len(),
        last_lines(&stderr, 20)
    );
    check_exit_flush(&spans);

    let invoice_deliver: Vec<&ReceivedSpan> = deliver_spans
        .iter()
        .copied()
        .filter(|span| span.attribute("invoice.number") == Some(INVOICE))
        .collect();
    assert_eq!(
        invoice_deliver.len(),
        1,
        "expected one invoice.deliver span with invoice.number={INVOICE} among {} invoice.deliver \
         spans of {} spans received; last log lines:\n{}",
        deliver_spans.len(),
        spans.len(),
        last_lines(&stderr, 20)
    );
    let root = invoice_deliver[0];
    assert!(
        root.is_root(),
        "invoice.deliver of {INVOICE} has parent span {}, but each delivery must start its own trace",
        root.parent_span_id
    );

    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == root.trace_id)
        .collect();
    let by_id: HashMap<&str, &ReceivedSpan> = trace
        .iter()
        .map(|span| (span.span_id.as_str(), *span))
        .collect();
    eprintln!("trace {} of {INVOICE}:", root.trace_id);
    for span in &trace {
        let parent = by_id.get(span.parent_span_id.as_str());
        eprintln!(
            "  {} (parent: {})",
            span.name,
            parent.map_or("none", |parent| parent.name.as_str())
        );
    }

    check_server_spans(root, &trace, &by_id);
    check_render_span(root, &trace, &by_id);
    check_no_span_leaves_trace(root, &spans, &by_id);
    check_one_trace_per_invoice(root, &deliver_spans);
    Ok(())
}

/// Asserts that each RPC of the delivery has a server span in the invoice's trace, below
/// `invoice.deliver`.
fn check_server_spans(
    root: &ReceivedSpan,
    trace: &[&ReceivedSpan],
    by_id: &HashMap<&str, &ReceivedSpan>,
) {
    let names = name_counts(trace);
    for method in DELIVERY_METHODS {
        let server_spans: Vec<&ReceivedSpan> = trace
            .iter()
            .copied()
            .filter(|span| span.attribute("rpc.method") == Some(method))
            .filter(|span| span.kind == SpanKind::Server as i32)
            .collect();
        assert!(
            !server_spans.is_empty(),
            "trace {} of {INVOICE} has no server span with rpc.method={method}; it contains {names:?}",
            root.trace_id
        );
        for span in server_spans {
            assert!(
                span.name.ends_with(&format!("/{method}")),
                "server span of {method} is exported as {:?}, expected `<package>.<service>/{method}` \
                 from otel.name",
                span.name
            );
            if let Err(broken) = chain_to(span, &root.span_id, by_id) {
                panic!(
                    "server span of {method} does not link to invoice.deliver of {INVOICE}: {broken}"
                );
            }
        }
    }
}

/// Asserts that pdf-render's `invoice.render` span is in the trace, below the RenderInvoice
/// server span.
fn check_render_span(
    root: &ReceivedSpan,
    trace: &[&ReceivedSpan],
    by_id: &HashMap<&str, &ReceivedSpan>,
) {
    let render_spans: Vec<&ReceivedSpan> = trace
        .iter()
        .copied()
        .filter(|span| span.name == "invoice.render")
        .collect();
    assert_eq!(
        render_spans.len(),
        1,
        "trace {} of {INVOICE} should contain one invoice.render span; it contains {:?}",
        root.trace_id,
        name_counts(trace)
    );
    let render = render_spans[0];
    assert_eq!(
        render.attribute("invoice.number"),
        Some(INVOICE),
        "invoice.render in the trace of {INVOICE} names another invoice"
    );
    let parent = by_id.get(render.parent_span_id.as_str());
    assert_eq!(
        parent.and_then(|span| span.attribute("rpc.method")),
        Some("RenderInvoice"),
        "invoice.render should be a child of the RenderInvoice server span, but its parent is {:?}",
        parent.map(|span| &span.name)
    );
}

/// Asserts that no span names a span of the trace as its parent while carrying another trace
/// id, and that every span with the invoice's `invoice.number` attribute is in the trace.
fn check_no_span_leaves_trace(
    root: &ReceivedSpan,
    spans: &[ReceivedSpan],
    by_id: &HashMap<&str, &ReceivedSpan>,
) {
    for span in spans {
        if by_id.contains_key(span.parent_span_id.as_str()) {
            assert_eq!(
                span.trace_id, root.trace_id,
                "span {:?} is a child of a span in the trace of {INVOICE} but has another trace id",
                span.name
            );
        }
        if span.attribute("invoice.number") == Some(INVOICE) {
            assert_eq!(
                span.trace_id, root.trace_id,
                "span {:?} with invoice.number={INVOICE} is outside the trace of invoice.deliver",
                span.name
            );
        }
    }
}

/// Asserts that another invoice's delivery has its own trace, and that no two deliveries share
/// one.
fn check_one_trace_per_invoice(root: &ReceivedSpan, deliver_spans: &[&ReceivedSpan]) {
    let other = deliver_spans
        .iter()
        .find(|span| span.attribute("invoice.number") != Some(INVOICE));
    let Some(other) = other else {
        panic!("no invoice.deliver span of an invoice other than {INVOICE} was received");
    };
    assert_ne!(
        other.trace_id,
        root.trace_id,
        "invoices {INVOICE} and {} share trace {}",
        other.attribute("invoice.number").unwrap_or_default(),
        root.trace_id
    );

    let trace_ids: HashSet<&str> = deliver_spans
        .iter()
        .map(|span| span.trace_id.as_str())
        .collect();
    assert_eq!(
        trace_ids.len(),
        deliver_spans.len(),
        "{} invoice.deliver spans share {} trace ids, expected one trace per delivery",
        deliver_spans.len(),
        trace_ids.len()
    );
}
