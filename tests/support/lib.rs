//! The system under test: every service in one host on 127.0.0.1:0, a real SMTP server over a
//! socket, and SQLite or PostgreSQL; plus helpers that read what the SMTP server received.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use invoicer_kit::Config;
use invoicer_kit::server::RunningServer;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::audit_log::v1::audit_log_service_client::AuditLogServiceClient;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{ReceivedMessage, TestSmtpServer};
use tonic::transport::Channel;

/// The Chinook sample as an ERP export: 59 customers, 412 posted invoices.
pub const CHINOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../services/invoicer/sample/chinook-export.json"
);

/// A lookback that covers every invoice of the five-year sample.
pub const WHOLE_SAMPLE: &str = "3650d";

pub struct System {
    pub smtp: TestSmtpServer,
    pub config: Arc<Config>,
    pub endpoint: String,
    server: Option<RunningServer>,
    database: Option<TestDatabase>,
}

/// What one CLI run printed and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    pub code: ExitCode,
    pub stdout: String,
}

impl CliOutput {
    /// Parses each stdout line as JSON.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line}")))
            .collect()
    }
}

impl System {
    /// Starts every service against `database` and `smtp`.
    pub async fn start(database: TestDatabase, smtp: TestSmtpServer) -> Result<System> {
        System::start_with(database, smtp, |_| {}).await
    }

    /// Starts every service, with `configure` applied to the test configuration.
    pub async fn start_with(
        database: TestDatabase,
        smtp: TestSmtpServer,
        configure: impl FnOnce(&mut Config),
    ) -> Result<System> {
        let mut config = test_config(&database, &smtp);
        configure(&mut config);
        let config = Arc::new(config);
        let server = invoicer::host::start(config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let endpoint = format!("http://{}", server.local_addr());
        Ok(System {
            smtp,
            config,
            endpoint,
            server: Some(server),
            database: Some(database),
        })
    }

    /// Stops the server and starts it again on the same database and SMTP server, as after
    /// downtime, with `configure` applied to a fresh test configuration.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut Config)) -> Result<()> {
        if let Some(server) = self.server.take() {
            server
                .shutdown("test restart")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let database = self.database.as_ref().context("database already removed")?;
        let mut config = test_config(database, &self.smtp);
        configure(&mut config);
        let config = Arc::new(config);
        let server = invoicer::host::start(config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.endpoint = format!("http://{}", server.local_addr());
        self.config = config;
        self.server = Some(server);
        Ok(())
    }

    /// Runs `invoicer ARGS --endpoint <this system>` in this process and captures stdout.
    pub async fn cli(&self, args: &[&str]) -> Result<CliOutput> {
        let mut argv: Vec<String> = vec![
            "invoicer".to_owned(),
            "--endpoint".to_owned(),
            self.endpoint.clone(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut stdout: Vec<u8> = Vec::new();
        let code = invoicer::run(argv, &mut stdout).await?;
        Ok(CliOutput {
            code,
            stdout: String::from_utf8(stdout)?,
        })
    }

    /// Writes `content` to a file in the test's folder and imports it with the CLI.
    pub async fn import_text(&self, name: &str, content: &str) -> Result<CliOutput> {
        let path = self.file(name);
        std::fs::write(&path, content)?;
        self.cli(&["import", path.to_str().context("non-UTF-8 path")?, "--json"])
            .await
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.database
            .as_ref()
            .map_or_else(|| PathBuf::from(name), |d| d.folder().join(name))
    }

    fn channel(&self) -> Result<Channel> {
        Ok(Channel::from_shared(self.endpoint.clone())?.connect_lazy())
    }

    pub fn orchestrator(&self) -> Result<OrchestratorServiceClient<Channel>> {
        Ok(OrchestratorServiceClient::new(self.channel()?).max_decoding_message_size(64 << 20))
    }

    pub fn audit(&self) -> Result<AuditLogServiceClient<Channel>> {
        Ok(AuditLogServiceClient::new(self.channel()?).max_decoding_message_size(64 << 20))
    }

    /// Reads a batch with all its deliveries, page by page.
    pub async fn get_batch(&self, id: &str) -> Result<pb::Batch> {
        let mut client = self.orchestrator()?;
        let mut request = pb::GetBatchRequest {
            id: id.to_owned(),
            ..Default::default()
        };
        let mut deliveries = Vec::new();
        loop {
            let page = client.get_batch(request.clone()).await?.into_inner();
            let mut batch = page.batch.context("GetBatch returned no batch")?;
            deliveries.append(&mut batch.deliveries);
            if page.next_page_token.is_empty() {
                batch.deliveries = deliveries;
                return Ok(batch);
            }
            request.page_token = page.next_page_token;
        }
    }

    /// Runs a batch over gRPC and returns it with the deliveries that need attention: those
    /// not sent and those sent with a reason.
    pub async fn run_batch(&self, lookback: &str) -> Result<pb::Batch> {
        let request = pb::RunBatchRequest {
            cutoff: String::new(),
            lookback: lookback.to_owned(),
            dry_run: false,
            business_date: String::new(),
        };
        let response = self.orchestrator()?.run_batch(request).await?;
        response
            .into_inner()
            .batch
            .context("RunBatch returned no batch")
    }

    /// Reads every email log entry matching `filter`, newest first.
    pub async fn log_entries(
        &self,
        mut filter: audit::ListEntriesRequest,
    ) -> Result<Vec<audit::Entry>> {
        let mut client = self.audit()?;
        let mut entries = Vec::new();
        filter.page_size = 1000;
        loop {
            let page = client.list_entries(filter.clone()).await?.into_inner();
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                return Ok(entries);
            }
            filter.page_token = page.next_page_token;
        }
    }

    /// Waits until the SMTP server has accepted `count` messages.
    pub async fn wait_for_messages(&self, count: usize) -> Result<Vec<ReceivedMessage>> {
        self.smtp
            .wait_for_messages(count, Duration::from_secs(120))
            .await
            .with_context(|| {
                format!(
                    "expected {count} messages, got {}",
                    self.smtp.messages().len()
                )
            })
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server
                .shutdown("test finished")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if let Some(database) = self.database.take() {
            database.remove().await?;
        }
        Ok(())
    }
}

/// Returns the test configuration: loopback, the test's data folder or database, the test SMTP
/// server, no schedule.
pub fn test_config(database: &TestDatabase, smtp: &TestSmtpServer) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.shutdown_grace_secs = 5;
    config.data_dir = database.data_dir();
    config.database_url = database.database_url();
    config.mail.smtp_url = Some(smtp.url());
    config.mail.from = "Billing <billing@seller.example>".to_owned();
    config.company.name = "Seller Example GmbH".to_owned();
    config.batch.schedule.enabled = false;
    config.batch.retry_first_delay = "1h".to_owned();
    config
}

/// One received message, parsed.
pub struct ParsedMessage {
    pub envelope_to: Vec<String>,
    pub message_id: String,
    pub subject: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub has_bcc_header: bool,
    pub attachment_name: String,
    pub attachment: Vec<u8>,
    pub delivery_key: String,
    /// The plain text body.
    pub text_body: String,
}

fn address_list(address: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    address
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address.as_ref().map(|s| s.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_message(message: &ReceivedMessage) -> Result<ParsedMessage> {
    use mail_parser::MimeHeaders;

    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .context("message does not parse as RFC 5322")?;
    let attachments: Vec<_> = parsed.attachments().collect();
    if attachments.len() != 1 {
        bail!("expected one attachment, found {}", attachments.len());
    }
    let attachment = attachments[0];
    Ok(ParsedMessage {
        envelope_to: message.rcpt_to.clone(),
        message_id: parsed.message_id().unwrap_or_default().to_owned(),
        subject: parsed.subject().unwrap_or_default().to_owned(),
        to: address_list(parsed.to()),
        cc: address_list(parsed.cc()),
        has_bcc_header: parsed.header_raw("Bcc").is_some(),
        attachment_name: attachment.attachment_name().unwrap_or_default().to_owned(),
        attachment: attachment.contents().to_vec(),
        delivery_key: parsed
            .header_raw("X-Invoicer-Delivery")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        text_body: parsed.body_text(0).unwrap_or_default().into_owned(),
    })
}

/// Extracts the text of a PDF with poppler's `pdftotext` (Debian package poppler-utils).
pub fn pdf_text(pdf: &[u8], folder: &Path) -> Result<String> {
    let path = folder.join(format!("{}.pdf", sha256_hex(pdf)));
    std::fs::write(&path, pdf)?;
    let output = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .context(
            "cannot run pdftotext; install poppler-utils (`apt-get install -y poppler-utils`)",
        )?;
    if !output.status.success() {
        bail!(
            "pdftotext rejected the PDF: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
