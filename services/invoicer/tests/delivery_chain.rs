//! Runs the five services as five `invoicer serve --services X` processes against the real
//! SMTP fixture and an OTLP receiver, sends a batch of three invoices, and checks what an
//! operator sees: one trace per delivery with spans from all five services down to the SMTP
//! stages, a batch trace linked from each delivery, the trace id in the email log and in
//! `invoicer log`, JSON log lines with trace ids, and the Prometheus endpoints.

mod otlp_receiver;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use invoicer_proto::orchestrator::v1 as orchestrator;
use invoicer_test_smtp::TestSmtpServer;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otlp_receiver::{ReceivedSpan, Receiver};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

const SERVICES: [&str; 5] = [
    "invoice-query",
    "pdf-render",
    "mail-delivery",
    "audit-log",
    "orchestrator",
];

/// Each process starts in well under a second; a debug build on a busy 2-core machine is
/// given far more.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const INVOICES: [&str; 3] = ["TR-2026-0001", "TR-2026-0002", "TR-2026-0003"];

/// The RPCs the orchestrator makes for one delivery, and the service that serves each.
const DELIVERY_CALLS: [(&str, &str); 4] = [
    ("GetInvoice", "invoice-query"),
    ("RenderInvoice", "pdf-render"),
    ("SendEmail", "mail-delivery"),
    ("AppendEntry", "audit-log"),
];

/// Stages of every message's SMTP transaction.
const SMTP_MESSAGE_STAGES: [&str; 3] = ["smtp.mail", "smtp.rcpt", "smtp.data"];
/// Stages of opening a connection: only the delivery that opens a pooled connection has them.
const SMTP_CONNECTION_STAGES: [&str; 2] = ["smtp.connect", "smtp.ehlo"];

const TRACESTATE: &str = "invoicer-test=chain,vendor=1";
/// Span id of the test's own call in the `traceparent` it sends.
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

fn export_json() -> String {
    let invoices: Vec<serde_json::Value> = INVOICES
        .iter()
        .enumerate()
        .map(|(index, number)| {
            serde_json::json!({
                "number": number,
                "customer": "C-TRACE",
                "kind": "invoice",
                "status": "posted",
                "issued_at": format!("2026-11-0{}T10:00:00Z", index + 1),
                "due_date": "2026-12-31",
                "currency": "EUR",
                "terms": "Net 30",
                "lines": [{
                    "sku": "SKU-1",
                    "description": "Consulting",
                    "quantity": "2",
                    "unit": "h",
                    "unit_price": "50.00",
                    "amount": "100.00"
                }],
                "subtotal": "100.00",
                "taxes": [],
                "total": "100.00"
            })
        })
        .collect();
    serde_json::json!({
        "format": "invoicer.erp-export.v1",
        "customers": [{
            "code": "C-TRACE",
            "name": "Trace Customer Ltd",
            "language": "en",
            "address": ["2 Example Road", "Springfield"],
            "contacts": [{
                "name": "Accounts Payable",
                "email": "ap@trace-customer.example",
                "invoice_role": "to"
            }]
        }],
        "invoices": invoices
    })
    .to_string()
}

/// One `invoicer serve --services NAME` process.
struct ServiceProcess {
    name: &'static str,
    child: Child,
    grpc: SocketAddr,
    metrics: SocketAddr,
    stderr_path: PathBuf,
}

/// Builds a command for the invoicer binary with no `INVOICER_*` or `OTEL_*` variables of the
/// caller in its environment.
fn invoicer(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invoicer"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("INVOICER_") || text.starts_with("OTEL_") || text == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Writes the configuration the processes share, with `[endpoints]` only when `grpc` is given.
/// The four services the orchestrator calls need no endpoints. They start first, on port 0,
/// because a port picked in advance can be taken by another socket before the process binds it.
fn write_config(dir: &Path, grpc: Option<&HashMap<&str, SocketAddr>>) -> Result<PathBuf> {
    let endpoints = match grpc {
        Some(grpc) => {
            let endpoint = |name: &str| format!("http://{}", grpc[name]);
            format!(
                r#"
[endpoints]
invoice_query = "{iq}"
pdf_render = "{pdf}"
mail_delivery = "{mail}"
audit_log = "{audit}"
"#,
                iq = endpoint("invoice-query"),
                pdf = endpoint("pdf-render"),
                mail = endpoint("mail-delivery"),
                audit = endpoint("audit-log"),
            )
        }
        None => String::new(),
    };
    let config = format!(
        r#"
data_dir = "{data}"

[batch.schedule]
enabled = false

[telemetry]
log_format = "json"
{endpoints}"#,
        data = dir.join("data").display(),
    );
    let path = dir.join("invoicer.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// Starts the services the orchestrator calls, then the orchestrator with their addresses.
async fn start_services(dir: &Path, otlp: &str, smtp_url: &str) -> Result<Vec<ServiceProcess>> {
    let config = write_config(dir, None)?;
    let mut processes = Vec::new();
    for name in SERVICES {
        if name == "orchestrator" {
            let grpc = processes
                .iter()
                .map(|process: &ServiceProcess| (process.name, process.grpc))
                .collect();
            write_config(dir, Some(&grpc))?;
        }
        processes.push(start_service(name, dir, &config, otlp, smtp_url).await?);
    }
    Ok(processes)
}

/// Starts `invoicer serve --services NAME` with its gRPC and metrics listeners on port 0 and
/// reads the bound addresses from its start-up log lines.
async fn start_service(
    name: &'static str,
    dir: &Path,
    config: &Path,
    otlp: &str,
    smtp_url: &str,
) -> Result<ServiceProcess> {
    let stderr_path = dir.join(format!("{name}.log"));
    let stderr = std::fs::File::create(&stderr_path)?;
    let mut child = invoicer(config)
        .args(["serve", "--services", name])
        .env("INVOICER_LISTEN", "127.0.0.1:0")
        .env("INVOICER_METRICS_LISTEN", "127.0.0.1:0")
        .env("INVOICER_SMTP_URL", smtp_url)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start invoicer serve --services {name}"))?;
    let grpc = logged_address(&mut child, &stderr_path, "server started").await?;
    let metrics = logged_address(
        &mut child,
        &stderr_path,
        "prometheus metrics endpoint listening on /metrics",
    )
    .await?;
    Ok(ServiceProcess {
        name,
        child,
        grpc,
        metrics,
        stderr_path,
    })
}

/// Waits for the JSON log line whose message is `message` and returns its `address` field.
/// Fails at once when the process exits first.
async fn logged_address(child: &mut Child, log: &Path, message: &str) -> Result<SocketAddr> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let address = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["fields"]["message"] == message)
            .and_then(|line| line["fields"]["address"].as_str().map(str::to_owned));
        if let Some(address) = address {
            return address.parse().with_context(|| {
                format!("invalid address {address:?} in the {message:?} log line")
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!("the process exited with {status} before logging {message:?}; log:\n{text}");
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("no {message:?} line after {START_TIMEOUT:?}; log:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one client command against `endpoint` and returns its stdout.
async fn cli(config: &Path, endpoint: &str, args: &[&str]) -> Result<String> {
    let output = invoicer(config)
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?
        .wait_with_output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
        .await
        .with_context(|| format!("invoicer {args:?} still running after {COMMAND_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "invoicer {args:?} exited with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// Sends SIGTERM, so that each process flushes its spans and metrics, and waits for it.
async fn stop_services(processes: Vec<ServiceProcess>) -> Result<HashMap<&'static str, String>> {
    for process in &processes {
        if let Some(pid) = process.child.id() {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
            ensure!(status.success(), "kill -TERM {pid} failed");
        }
    }
    let mut logs = HashMap::new();
    for mut process in processes {
        let status = tokio::time::timeout(STOP_TIMEOUT, process.child.wait())
            .await
            .with_context(|| format!("{} still running after SIGTERM", process.name))??;
        let log = std::fs::read_to_string(&process.stderr_path)?;
        ensure!(
            status.success(),
            "{} exited with {status}; log:\n{log}",
            process.name
        );
        logs.insert(process.name, log);
    }
    Ok(logs)
}

/// Fetches `/metrics` with a plain HTTP/1.1 request.
async fn scrape(address: SocketAddr) -> Result<String> {
    use tokio::io::AsyncWriteExt;

    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of the response head from {address}:\n{response}"))?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET /metrics on {address} answered:\n{head}"
    );
    ensure!(
        head.contains("text/plain; version=0.0.4"),
        "GET /metrics on {address} has no Prometheus content type:\n{head}"
    );
    Ok(body.to_owned())
}

/// Returns the value of the sample `name` (with its labels as written) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Calls PreviewInvoice with a caller's `traceparent` and `tracestate`, and returns the
/// caller's trace id.
async fn preview_with_trace_context(orchestrator_address: SocketAddr) -> Result<String> {
    let trace_id = "5c0ffee0000000000000000000000042";
    let traceparent = format!("00-{trace_id}-{CALLER_SPAN_ID}-01");
    let mut client = orchestrator::orchestrator_service_client::OrchestratorServiceClient::connect(
        format!("http://{orchestrator_address}"),
    )
    .await?;
    let mut request = tonic::Request::new(orchestrator::PreviewInvoiceRequest {
        invoice_number: INVOICES[0].to_owned(),
        revision: 0,
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse()?);
    request
        .metadata_mut()
        .insert("tracestate", TRACESTATE.parse()?);
    client.preview_invoice(request).await?;
    Ok(trace_id.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_traces_span_five_processes() -> Result<()> {
    let receiver = Receiver::start().await?;
    let smtp = TestSmtpServer::builder().start().await?;
    let dir = tempfile::tempdir()?;
    let processes = start_services(dir.path(), &receiver.endpoint(), &smtp.url()).await?;
    let config = dir.path().join("invoicer.toml");
    let grpc_of: HashMap<&str, SocketAddr> = processes
        .iter()
        .map(|process| (process.name, process.grpc))
        .collect();
    let endpoint = |name: &str| format!("http://{}", grpc_of[name]);
    let metrics_of: HashMap<&str, SocketAddr> = processes
        .iter()
        .map(|process| (process.name, process.metrics))
        .collect();

    let export = dir.path().join("export.json");
    std::fs::write(&export, export_json())?;
    let export_text = export.to_string_lossy().into_owned();
    cli(
        &config,
        &endpoint("invoice-query"),
        &["import", &export_text],
    )
    .await?;
    let batch_output = cli(
        &config,
        &endpoint("orchestrator"),
        &["batch", "run", "--lookback", "3650d", "--json"],
    )
    .await?;
    let batch_id = batch_id(&batch_output)?;
    let log_json = cli(&config, &endpoint("audit-log"), &["log", "--json"]).await?;
    let log_text = cli(&config, &endpoint("audit-log"), &["log"]).await?;
    let preview_trace = preview_with_trace_context(grpc_of["orchestrator"]).await?;

    check_prometheus(&metrics_of).await?;
    let logs = stop_services(processes).await?;
    let received = receiver.stop().await?;
    let spans = received.spans;
    eprintln!("received {} spans", spans.len());

    let deliveries = check_delivery_traces(&spans, &batch_id)?;
    check_no_address_in_spans(&spans);
    check_email_log(&log_json, &log_text, &deliveries)?;
    check_tracestate(&spans, &preview_trace);
    check_json_logs(&logs["orchestrator"], &deliveries)?;
    let exported: BTreeSet<&str> = received
        .metrics
        .iter()
        .map(|(_, name)| name.as_str())
        .collect();
    for name in [
        "invoicer.messages",
        "invoicer.render.duration",
        "invoicer.batch.duration",
    ] {
        assert!(
            exported.contains(name),
            "metric {name} was not exported over OTLP; got {exported:?}"
        );
    }
    Ok(())
}

/// Reads the batch id from the last line of `batch run --json`.
fn batch_id(output: &str) -> Result<String> {
    let last = output.lines().last().context("batch run printed nothing")?;
    let summary: serde_json::Value = serde_json::from_str(last)?;
    ensure!(
        summary["sent"] == 3,
        "expected 3 sent invoices, the batch reported {summary}"
    );
    summary["batch"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no batch id in {summary}"))
}

/// Checks the three delivery traces and the batch trace; returns the trace id per invoice.
fn check_delivery_traces(
    spans: &[ReceivedSpan],
    batch_id: &str,
) -> Result<HashMap<String, String>> {
    let batch_spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == "batch.run")
        .collect();
    assert_eq!(batch_spans.len(), 1, "expected one batch.run span");
    let batch = batch_spans[0];
    assert!(batch.is_root(), "batch.run must start its own trace");
    assert_eq!(batch.service, "orchestrator");
    assert_eq!(batch.attribute("batch.id"), Some(batch_id));

    let deliver_spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name == "invoice.deliver")
        .collect();
    assert_eq!(
        deliver_spans.len(),
        3,
        "expected one invoice.deliver span per invoice"
    );
    let mut trace_ids = HashMap::new();
    for root in deliver_spans {
        let invoice = root.attribute("invoice.number").unwrap_or_default();
        assert!(root.is_root(), "invoice.deliver of {invoice} has a parent");
        assert_ne!(
            root.trace_id, batch.trace_id,
            "{invoice} shares the batch's trace"
        );
        assert_eq!(root.attribute("batch.id"), Some(batch_id));
        assert!(
            root.attribute("delivery.id")
                .is_some_and(|id| !id.is_empty()),
            "invoice.deliver of {invoice} has no delivery.id"
        );
        assert!(
            root.links
                .iter()
                .any(|link| link.trace_id == batch.trace_id && link.span_id == batch.span_id),
            "invoice.deliver of {invoice} has no link to batch.run: {:?}",
            root.links
        );
        let trace: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|span| span.trace_id == root.trace_id)
            .collect();
        check_one_delivery(invoice, &trace);
        trace_ids.insert(invoice.to_owned(), root.trace_id.clone());
    }
    let distinct: BTreeSet<&String> = trace_ids.values().collect();
    assert_eq!(distinct.len(), 3, "deliveries share traces: {trace_ids:?}");
    for stage in SMTP_CONNECTION_STAGES {
        assert!(
            spans
                .iter()
                .any(|span| span.name == stage && span.service == "mail-delivery"),
            "no delivery trace has a {stage} span"
        );
    }
    Ok(trace_ids)
}

/// Checks the spans of one delivery's trace: every service, the client and server span of
/// each call with the RPC attributes, and the SMTP stages below SendEmail.
fn check_one_delivery(invoice: &str, trace: &[&ReceivedSpan]) {
    let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    let expected: BTreeSet<&str> = SERVICES.into_iter().collect();
    assert_eq!(services, expected, "services in the trace of {invoice}");

    for (method, service) in DELIVERY_CALLS {
        let of_method = |kind: SpanKind| -> Vec<&&ReceivedSpan> {
            trace
                .iter()
                .filter(|span| span.attribute("rpc.method") == Some(method))
                .filter(|span| span.kind == kind as i32)
                .collect()
        };
        let servers = of_method(SpanKind::Server);
        let clients = of_method(SpanKind::Client);
        assert!(!servers.is_empty(), "{invoice}: no server span of {method}");
        assert!(!clients.is_empty(), "{invoice}: no client span of {method}");
        for span in servers.iter().chain(clients.iter()) {
            assert_eq!(span.attribute("rpc.system"), Some("grpc"), "{span:?}");
            assert_eq!(
                span.attribute("rpc.grpc.status_code"),
                Some("0"),
                "{span:?}"
            );
            assert!(
                span.attribute("rpc.service")
                    .is_some_and(|name| name.starts_with("invoicer.")),
                "{span:?}"
            );
            assert_eq!(
                span.attribute("server.address"),
                Some("127.0.0.1"),
                "{span:?}"
            );
            assert!(span.attribute("server.port").is_some(), "{span:?}");
            assert!(span.name.ends_with(&format!("/{method}")), "{span:?}");
        }
        for span in &servers {
            assert_eq!(span.service, service, "server span of {method}");
        }
        for span in &clients {
            assert_eq!(span.service, "orchestrator", "client span of {method}");
        }
        let server_parents: BTreeSet<&str> = servers
            .iter()
            .map(|span| span.parent_span_id.as_str())
            .collect();
        let client_ids: BTreeSet<&str> = clients.iter().map(|span| span.span_id.as_str()).collect();
        assert!(
            server_parents.is_subset(&client_ids),
            "{invoice}: the server spans of {method} are not children of its client spans"
        );
    }

    let send = trace
        .iter()
        .find(|span| span.name == "smtp.send")
        .unwrap_or_else(|| panic!("{invoice}: no smtp.send span"));
    for stage in SMTP_CONNECTION_STAGES {
        if let Some(found) = trace.iter().find(|span| span.name == stage) {
            assert_eq!(
                found.parent_span_id, send.span_id,
                "{invoice}: {stage} is not a child of smtp.send"
            );
        }
    }
    for stage in SMTP_MESSAGE_STAGES {
        let found = trace
            .iter()
            .find(|span| span.name == stage)
            .unwrap_or_else(|| panic!("{invoice}: no {stage} span"));
        assert_eq!(found.service, "mail-delivery");
        assert_eq!(
            found.parent_span_id, send.span_id,
            "{invoice}: {stage} is not a child of smtp.send"
        );
    }
}

fn check_no_address_in_spans(spans: &[ReceivedSpan]) {
    for span in spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains('@'),
                "span {:?} of {} has attribute {key}={value:?} with an '@'",
                span.name,
                span.service
            );
        }
        for event in &span.event_attributes {
            for (key, value) in event {
                assert!(
                    !value.contains('@'),
                    "an event of span {:?} has attribute {key}={value:?} with an '@'",
                    span.name
                );
            }
        }
    }
}

/// Checks that every email log entry names its delivery's trace, in `--json` and in text.
fn check_email_log(
    log_json: &str,
    log_text: &str,
    deliveries: &HashMap<String, String>,
) -> Result<()> {
    let mut seen = 0;
    for line in log_json.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)?;
        let invoice = entry["invoice"].as_str().unwrap_or_default();
        let expected = deliveries
            .get(invoice)
            .with_context(|| format!("log entry of an unexpected invoice: {entry}"))?;
        assert_eq!(
            entry["trace_id"].as_str(),
            Some(expected.as_str()),
            "log entry of {invoice}"
        );
        seen += 1;
    }
    assert_eq!(seen, 3, "expected one email log entry per invoice");
    for (invoice, trace_id) in deliveries {
        let line = log_text
            .lines()
            .find(|line| line.contains(invoice.as_str()))
            .with_context(|| format!("`invoicer log` lists no {invoice}:\n{log_text}"))?;
        assert!(
            line.contains(trace_id.as_str()),
            "`invoicer log` shows no trace id {trace_id} for {invoice}: {line}"
        );
    }
    assert!(
        log_text
            .lines()
            .next()
            .is_some_and(|head| head.contains("trace id"))
    );
    Ok(())
}

/// Checks that the caller's trace context reached invoice-query through the orchestrator,
/// with its `tracestate`, and that the orchestrator's server span is the caller's child.
fn check_tracestate(spans: &[ReceivedSpan], trace_id: &str) {
    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .collect();
    let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    assert!(
        services.contains("invoice-query"),
        "no invoice-query span in the caller's trace {trace_id}; services: {services:?}"
    );
    let entry = trace
        .iter()
        .find(|span| span.attribute("rpc.method") == Some("PreviewInvoice"))
        .unwrap_or_else(|| panic!("no PreviewInvoice span in the caller's trace"));
    assert_eq!(
        entry.parent_span_id, CALLER_SPAN_ID,
        "parent of PreviewInvoice"
    );
    for span in trace {
        assert_eq!(
            span.trace_state, TRACESTATE,
            "tracestate of {:?} in {}",
            span.name, span.service
        );
    }
}

/// Checks that the orchestrator's JSON log lines inside a span carry its trace and span id,
/// and that the deliveries' lines name their traces.
fn check_json_logs(log: &str, deliveries: &HashMap<String, String>) -> Result<()> {
    let mut trace_ids_seen = BTreeSet::new();
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("log line is not JSON: {line}"))?;
        let in_span = value["spans"]
            .as_array()
            .is_some_and(|spans| !spans.is_empty());
        if !in_span {
            continue;
        }
        let trace_id = value["trace_id"].as_str().unwrap_or_default();
        let span_id = value["span_id"].as_str().unwrap_or_default();
        assert_eq!(
            trace_id.len(),
            32,
            "no trace_id in a line inside a span: {line}"
        );
        assert_eq!(
            span_id.len(),
            16,
            "no span_id in a line inside a span: {line}"
        );
        trace_ids_seen.insert(trace_id.to_owned());
    }
    let logged_deliveries = deliveries
        .values()
        .filter(|trace_id| trace_ids_seen.contains(trace_id.as_str()))
        .count();
    assert!(
        logged_deliveries > 0,
        "no orchestrator log line names a delivery's trace id; seen {trace_ids_seen:?}"
    );
    Ok(())
}

/// Scrapes each process's `/metrics` after the batch.
async fn check_prometheus(metrics_of: &HashMap<&str, SocketAddr>) -> Result<()> {
    let mail = scrape(metrics_of["mail-delivery"]).await?;
    assert_eq!(
        sample(&mail, "invoicer_messages_total{outcome=\"sent\"}"),
        Some(3.0),
        "{mail}"
    );
    // Each message has one RCPT TO and one end of DATA, and the fixture replies 250 to both.
    assert_eq!(
        sample(&mail, "invoicer_smtp_replies_total{class=\"2xx\"}"),
        Some(6.0),
        "{mail}"
    );
    assert_eq!(
        sample(
            &mail,
            "invoicer_send_duration_seconds_count{outcome=\"sent\"}"
        ),
        Some(3.0),
        "{mail}"
    );

    let render = scrape(metrics_of["pdf-render"]).await?;
    assert_eq!(
        sample(&render, "invoicer_render_duration_seconds_count"),
        Some(3.0),
        "{render}"
    );

    let orchestrator = scrape(metrics_of["orchestrator"]).await?;
    assert_eq!(
        sample(
            &orchestrator,
            "invoicer_batch_size_count{status=\"completed\"}"
        ),
        Some(1.0),
        "{orchestrator}"
    );
    assert_eq!(
        sample(
            &orchestrator,
            "invoicer_batch_size_sum{status=\"completed\"}"
        ),
        Some(3.0),
        "{orchestrator}"
    );
    assert_eq!(
        sample(&orchestrator, "invoicer_deferred_depth"),
        Some(0.0),
        "{orchestrator}"
    );
    assert!(
        orchestrator.contains("# TYPE invoicer_batch_duration_seconds histogram"),
        "{orchestrator}"
    );
    Ok(())
}
