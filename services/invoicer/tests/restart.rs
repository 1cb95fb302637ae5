//! Restart after a kill: all five services run in one `invoicer serve` process, which is killed
//! with SIGKILL while the mail server delays its reply to a message. Started again, the process
//! must serve at once. It settles the delivery it left `submitting` as `unknown` before it
//! serves, but its email log entry goes to audit-log, which this same process hosts, so the
//! entry is appended once the host serves, by the first retry round.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use invoicer_test_smtp::{Stage, TestSmtpServer};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

/// How long the restarted process may take to serve. A start that appended the log entries
/// itself waited for one audit-log call timeout per delivery it settled.
const SERVE_DEADLINE: Duration = Duration::from_secs(20);

struct Server {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn write_config(&self, smtp_url: &str) -> Result<PathBuf> {
        let config = format!(
            r#"data_dir = "{data}"

[server]
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 5

[mail]
smtp_url = "{smtp_url}"
from = "Billing <billing@seller.example>"
timeout_secs = 300

[batch.schedule]
enabled = false
"#,
            data = self.dir.join("data").display(),
            port = self.port,
        );
        let path = self.dir.join("invoicer.toml");
        std::fs::write(&path, config)?;
        Ok(path)
    }

    /// Starts `invoicer serve` and returns without waiting for it to serve.
    fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("invoicer.log"))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_invoicer"));
        command
            .arg("--config")
            .arg(self.dir.join("invoicer.toml"))
            .arg("serve")
            .current_dir(&self.dir);
        for (variable, _) in std::env::vars_os() {
            let text = variable.to_string_lossy();
            if text.starts_with("INVOICER_") || text.starts_with("OTEL_") {
                command.env_remove(&variable);
            }
        }
        command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(command.spawn().context("cannot start invoicer serve")?);
        Ok(())
    }

    /// Waits until the process reports SERVING in its health checks, for at most `deadline`.
    async fn wait_serving(&mut self, deadline: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("invoicer serve exited at start with {status}");
            }
            if let Ok(channel) = Channel::from_shared(self.endpoint())?.connect().await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let request = tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                };
                let check = tokio::time::timeout(Duration::from_secs(2), health.check(request));
                if let Ok(Ok(response)) = check.await
                    && response.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > deadline {
                bail!(
                    "invoicer serve is not serving {} s after its start; its log:\n{}",
                    deadline.as_secs(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("invoicer.log")).unwrap_or_default()
    }

    /// Returns a client command of the binary, aimed at this server.
    fn client(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_invoicer"));
        command
            .arg("--endpoint")
            .arg(self.endpoint())
            .args(args)
            .env_remove("INVOICER_CONFIG")
            .env_remove("INVOICER_ENDPOINT")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }
}

fn write_export(path: &Path) -> Result<()> {
    let issued = (chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let document = serde_json::json!({
        "format": "invoicer.erp-export.v1",
        "customers": [{
            "code": "C-1",
            "name": "Customer One",
            "language": "en",
            "address": ["1 Main Street", "Springfield"],
            "contacts": [{"name": "Billing", "email": "billing@buyer.example", "invoice_role": "to"}],
        }],
        "invoices": [{
            "number": "RS-1",
            "customer": "C-1",
            "kind": "invoice",
            "status": "posted",
            "issued_at": issued,
            "currency": "EUR",
            "terms": "Net 30",
            "lines": [{"sku": "W-1", "description": "Widget", "quantity": "1", "unit": "pcs", "unit_price": "12.50", "amount": "12.50"}],
            "subtotal": "12.50",
            "taxes": [],
            "total": "12.50",
        }],
    });
    std::fs::write(path, document.to_string())?;
    Ok(())
}

#[tokio::test]
async fn restart_after_kill_serves_at_once() -> Result<()> {
    // The reply to the final dot comes only after the test has ended, so the delivery is
    // `submitting` when the process is killed.
    let smtp = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_secs(600))
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let mut server = Server {
        dir: dir.path().to_owned(),
        port: TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        child: None,
    };
    server.write_config(&smtp.url())?;
    server.start()?;
    server.wait_serving(Duration::from_secs(60)).await?;

    let export = dir.path().join("export.json");
    write_export(&export)?;
    let import = server
        .client(&["import", export.to_str().context("path")?])
        .output()
        .await?;
    ensure!(
        import.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let mut batch = server
        .client(&["batch", "run", "--lookback", "30d"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    while !smtp.commands().iter().any(|command| command == "DATA") {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the message did not reach DATA in 60 s; the log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The message body follows DATA; give the client a moment to send it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().await?;
    let _ = batch.kill().await;

    server.start()?;
    let took = server.wait_serving(SERVE_DEADLINE).await?;
    eprintln!("serving {} ms after the restart", took.as_millis());

    // The first retry round appends the entry of the delivery settled as `unknown`.
    let started = Instant::now();
    loop {
        let log = server
            .client(&["log", "--invoice", "RS-1", "--json"])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&log.stdout);
        if log.status.success() && text.contains("unknown") {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no unknown entry for RS-1 in the email log 60 s after the restart; `invoicer log` printed {text:?}; the server log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.kill().await?;
    Ok(())
}
