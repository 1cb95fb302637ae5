//! Configuration: built-in defaults, then the TOML file, then `INVOICER_*` environment
//! variables. `deploy/config/invoicer.example.toml` documents every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::auth::Secret;
use crate::auth::{Role, TokenEntry};
use crate::plugin::ServiceName;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The causes are part of the message and deliberately not `#[source]`, so a caller that
    // prints the error chain shows them once.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("invalid config file {path}: {cause}")]
    Parse {
        path: PathBuf,
        cause: Box<toml::de::Error>,
    },
    #[error("invalid environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    /// An `INVOICER_AUTH_TOKENS` entry; the value is not repeated, in case a raw token was
    /// pasted by mistake.
    #[error("invalid entry {position} of INVOICER_AUTH_TOKENS: {message}")]
    AuthTokens { position: usize, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder for the SQLite files and the file outbox. `INVOICER_DATA_DIR`.
    pub data_dir: PathBuf,
    /// PostgreSQL (or SQLite) URL shared by every service; unset means one SQLite file per
    /// service in `data_dir`. `INVOICER_DATABASE_URL`.
    pub database_url: Option<String>,
    pub server: ServerConfig,
    pub client: ClientConfig,
    pub endpoints: EndpointsConfig,
    pub company: CompanyConfig,
    pub mail: MailConfig,
    pub batch: BatchConfig,
    pub notifier: NotifierConfig,
    pub telemetry: TelemetryConfig,
    pub pdf: PdfConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `INVOICER_LISTEN`.
    pub listen: SocketAddr,
    /// `all` or a comma-separated list of service names.
    pub services: String,
    /// Removed: a plain-text shared token. The server rejects a config that still sets it and
    /// names the replacement (`tokens`).
    pub auth_token: Option<String>,
    /// Accepted bearer tokens, stored as SHA-256 hashes, each with its role. Entries of
    /// `INVOICER_AUTH_TOKENS` are added to them.
    pub tokens: Vec<TokenEntry>,
    /// File with the token that services send each other (and accept with role `service`).
    /// `INVOICER_SERVICE_TOKEN` overrides it; unset in both, each process makes up its own,
    /// which is enough when one process serves every service.
    pub service_token_file: Option<PathBuf>,
    /// The service token from `INVOICER_SERVICE_TOKEN`; never read from or written to a file.
    #[serde(skip)]
    pub service_token: Option<Secret>,
    /// Allows a listen address other than loopback without TLS.
    pub plaintext: bool,
    /// Second address that serves only `grpc.health.v1`, in plaintext and without
    /// credentials, for probes that cannot speak TLS. Unset serves health on `listen` only.
    pub health_listen: Option<SocketAddr>,
    /// TLS for the gRPC server; unset serves plaintext (loopback only unless `plaintext`).
    pub tls: Option<ServerTlsConfig>,
    /// Requests handled at once across all connections; further ones get RESOURCE_EXHAUSTED.
    /// Health checks are not counted.
    pub max_concurrent_requests: usize,
    /// Seconds to wait for in-flight requests at shutdown.
    pub shutdown_grace_secs: u64,
}

/// Certificate and key of the server, and the optional client-certificate check (mTLS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to; unset requests none.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: reject a connection without a client certificate.
    #[serde(default)]
    pub client_cert_required: bool,
    /// Role of a client certificate by its subject common name or a DNS name of its subject
    /// alternative names.
    #[serde(default)]
    pub client_roles: BTreeMap<String, Role>,
}

/// TLS settings of clients (the CLI and the services calling each other) for `https://` endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM CA certificates that the server's certificate must chain to; unset uses the
    /// Mozilla root set built in (webpki-roots). `INVOICER_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mTLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Name checked against the server certificate instead of the endpoint's host.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// URL the CLI commands dial. `INVOICER_ENDPOINT`.
    pub endpoint: String,
    /// Seconds before a CLI call gives up.
    pub timeout_secs: u64,
    /// File with the bearer token the CLI sends. `INVOICER_TOKEN` overrides it.
    pub token_file: Option<PathBuf>,
    /// The bearer token from `INVOICER_TOKEN`; never read from or written to a file.
    #[serde(skip)]
    pub token: Option<Secret>,
    pub tls: ClientTlsConfig,
}

/// Endpoints of the services that do not run in this process. An unset entry means this
/// process's own listen address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    pub invoice_query: Option<String>,
    pub pdf_render: Option<String>,
    pub mail_delivery: Option<String>,
    pub audit_log: Option<String>,
    pub orchestrator: Option<String>,
}

impl EndpointsConfig {
    pub fn get(&self, name: ServiceName) -> Option<&str> {
        let endpoint = match name {
            ServiceName::InvoiceQuery => &self.invoice_query,
            ServiceName::PdfRender => &self.pdf_render,
            ServiceName::MailDelivery => &self.mail_delivery,
            ServiceName::AuditLog => &self.audit_log,
            ServiceName::Orchestrator => &self.orchestrator,
        };
        endpoint.as_deref()
    }
}

/// The company that sends the invoices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompanyConfig {
    pub name: String,
    pub address: Vec<String>,
    pub tax_id: String,
    pub email: String,
    pub phone: String,
    pub website: String,
    /// IANA timezone that turns instants into business dates.
    pub timezone: String,
    /// BCP 47 tag of the language used for a customer whose language has no PDF labels.
    pub language: String,
    /// ISO 3166-1 alpha-2 code of the company's country, written into Factur-X invoices.
    pub country: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// From header and envelope sender, for example `Billing <billing@company.example>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// `smtp://`, `smtp://...?tls=starttls` or `smtps://`, with optional `user:password@`.
    /// Unset writes each message as an `.eml` file to the outbox. `INVOICER_SMTP_URL`.
    pub smtp_url: Option<String>,
    /// Outbox folder; unset means `<data_dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// Seconds for each SMTP command before it counts as a transient failure.
    pub timeout_secs: u64,
    /// Domain for generated Message-IDs; unset uses the From address's domain.
    pub message_id_domain: Option<String>,
    /// Hosts that may get mail without TLS (`tls=none` or `tls=opportunistic`); loopback
    /// always may.
    pub allow_plaintext_hosts: Vec<String>,
    /// Hosts whose TLS certificate is not checked at all.
    pub insecure_skip_verify_hosts: Vec<String>,
    /// File whose content (without a trailing line break) is the SMTP password for the
    /// user in `smtp_url`.
    pub password_file: Option<PathBuf>,
    /// The SMTP password from `INVOICER_SMTP_PASSWORD`; never read from or written to the
    /// config file.
    #[serde(skip)]
    pub password: Option<Secret>,
    /// Connections open at once to the SMTP server, idle pooled ones included; at least 1.
    pub max_connections: usize,
    /// Messages started per second on the SMTP server; 0 sets no limit.
    pub max_messages_per_second: f64,
    /// Seconds a pooled SMTP connection may wait for its next message; 0 closes each
    /// connection after its message.
    pub pool_idle_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// How far back from the cutoff invoices stay eligible, such as `30d` or `36h`.
    pub lookback: String,
    /// Deliveries in flight at once. More of them than render threads keep the render threads
    /// busy while other deliveries wait for the database or the mail server.
    pub concurrency: usize,
    /// Invoices a batch plans at a time, at most. The next chunk is planned while one is
    /// delivered, so up to three chunks of deliveries are in memory at once. The first chunk
    /// has `concurrency` invoices (at most this many) and each next one twice as many, so
    /// that sending starts before a whole chunk is planned.
    pub plan_chunk: usize,
    /// Attempts before a deferred delivery stops being retried (it fails, or ends sent when a
    /// To recipient accepted an earlier attempt); 0 leaves only `retry_lifetime`.
    pub max_attempts: u32,
    /// Delay before the first retry of a deferred delivery, such as `5m`; each later one
    /// doubles it. `INVOICER_RETRY_FIRST_DELAY`.
    pub retry_first_delay: String,
    /// Upper bound of the delay between two retries, such as `4h`.
    pub retry_max_delay: String,
    /// How long after its first deferral a delivery is retried, such as `5d`; it then ends as
    /// for `max_attempts`. `INVOICER_RETRY_LIFETIME`.
    pub retry_lifetime: String,
    /// How long a replica's claim on a delivery lasts without renewal, such as `60s`; a
    /// replica that dies leaves its deliveries to the others after this long.
    pub lease_duration: String,
    pub schedule: ScheduleConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// Cron expression with five fields (minute hour day-of-month month day-of-week).
    pub cron: String,
    /// IANA timezone of the cron expression; unset uses `company.timezone`.
    pub timezone: Option<String>,
    /// At start-up after downtime, run the latest missed scheduled batch once.
    pub catch_up: bool,
}

/// The default notifier: the rules for emailing every customer's invoices. A customer's own
/// notifier (`invoicer notifier set`) overrides it field by field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifierConfig {
    /// `false` sends no invoice; each stays listed as skipped and goes out once it is `true`.
    pub enabled: bool,
    /// Invoice kinds that are sent: `invoice`, `credit_note`; empty means every kind.
    pub kinds: Vec<String>,
    /// Addresses added to every message beside the contacts' roles.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// `per_invoice` (one message with every recipient) or `per_to_contact` (one message per
    /// To recipient, each with the same Cc and Bcc).
    pub split: String,
    /// minijinja templates by language tag; a missing one uses the built-in template.
    pub templates: BTreeMap<String, MessageTemplateConfig>,
}

/// The subject and bodies of an invoice email in one language.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageTemplateConfig {
    pub subject: Option<String>,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body; values are HTML-escaped.
    pub html: Option<String>,
}

/// Settings of the invoice PDF that pdf-render lays out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PdfConfig {
    /// Typst file that replaces the built-in template; its folder is the template's root.
    pub template: Option<PathBuf>,
    /// PNG, JPEG or SVG file printed above the seller's name.
    pub logo: Option<PathBuf>,
    /// Writes PDF/A-3b with the invoice as embedded Factur-X (EN 16931) XML.
    /// `INVOICER_PDF_FACTUR_X`.
    pub factur_x: bool,
    pub payment: PaymentConfig,
}

/// The bank account printed as payment instructions on invoices (not on credit notes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentConfig {
    pub account_holder: String,
    pub bank_name: String,
    pub iban: String,
    pub bic: String,
    /// Free text printed below the bank details, such as a request to quote the number.
    pub instructions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` or `json`.
    pub log_format: String,
    /// `tracing` filter directives; `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP/gRPC collector such as `http://127.0.0.1:4317`; unset exports no traces.
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces and metrics; unset names the one service a process
    /// serves, or `invoicer` for several. `OTEL_SERVICE_NAME` overrides it.
    pub service_name: Option<String>,
    /// Trace sampler such as `parentbased_traceidratio`; unset samples every trace.
    /// `OTEL_TRACES_SAMPLER` overrides it.
    pub traces_sampler: Option<String>,
    /// Argument of a ratio sampler, from 0 to 1. `OTEL_TRACES_SAMPLER_ARG` overrides it.
    pub traces_sampler_arg: Option<String>,
    /// `otlp`, `prometheus` or `none`, comma-separated; unset means `otlp`.
    /// `OTEL_METRICS_EXPORTER` overrides it.
    pub metrics_exporter: Option<String>,
    /// Address of the Prometheus `/metrics` HTTP endpoint; unset serves none.
    /// `INVOICER_METRICS_LISTEN` overrides it.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("invoicer-data"),
            database_url: None,
            server: ServerConfig::default(),
            client: ClientConfig::default(),
            endpoints: EndpointsConfig::default(),
            company: CompanyConfig::default(),
            mail: MailConfig::default(),
            batch: BatchConfig::default(),
            notifier: NotifierConfig::default(),
            telemetry: TelemetryConfig::default(),
            pdf: PdfConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            services: "all".to_owned(),
            auth_token: None,
            tokens: Vec::new(),
            service_token_file: None,
            service_token: None,
            plaintext: false,
            health_listen: None,
            tls: None,
            max_concurrent_requests: 256,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            timeout_secs: 300,
            token_file: None,
            token: None,
            tls: ClientTlsConfig::default(),
        }
    }
}

impl Config {
    /// Lists the sender settings still at their demo values (`company.name`, `company.email`,
    /// `mail.from`), which would put the demo company on real invoices.
    pub fn demo_sender_settings(&self) -> Vec<&'static str> {
        let company = CompanyConfig::default();
        let mut found = Vec::new();
        if self.company.name == company.name {
            found.push("company.name");
        }
        if self.company.email == company.email {
            found.push("company.email");
        }
        if self.mail.from == MailConfig::default().from {
            found.push("mail.from");
        }
        found
    }
}

impl Default for CompanyConfig {
    fn default() -> Self {
        CompanyConfig {
            name: "Invoicer Demo Company".to_owned(),
            address: vec!["1 Example Street".to_owned(), "Springfield".to_owned()],
            tax_id: String::new(),
            email: "billing@invoicer.example".to_owned(),
            phone: String::new(),
            website: String::new(),
            timezone: "UTC".to_owned(),
            language: "en".to_owned(),
            country: String::new(),
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "Billing <billing@invoicer.example>".to_owned(),
            reply_to: None,
            smtp_url: None,
            outbox_dir: None,
            timeout_secs: 30,
            message_id_domain: None,
            allow_plaintext_hosts: Vec::new(),
            insecure_skip_verify_hosts: Vec::new(),
            password_file: None,
            password: None,
            max_connections: 4,
            max_messages_per_second: 0.0,
            pool_idle_secs: 60,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            lookback: "30d".to_owned(),
            concurrency: 16,
            plan_chunk: 500,
            max_attempts: 0,
            retry_first_delay: "5m".to_owned(),
            retry_max_delay: "4h".to_owned(),
            retry_lifetime: "5d".to_owned(),
            lease_duration: "60s".to_owned(),
            schedule: ScheduleConfig::default(),
        }
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            cron: "0 2 * * *".to_owned(),
            timezone: None,
            catch_up: true,
        }
    }
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            enabled: true,
            kinds: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            split: "per_invoice".to_owned(),
            templates: BTreeMap::new(),
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: "text".to_owned(),
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            service_name: None,
            traces_sampler: None,
            traces_sampler_arg: None,
            metrics_exporter: None,
            metrics_listen: None,
        }
    }
}

impl Config {
    /// Loads the layers: defaults, then `file` when given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        toml::from_str(&text).map_err(|cause| ConfigError::Parse {
            path: path.to_owned(),
            cause: Box::new(cause),
        })
    }

    /// Applies the `INVOICER_*` overrides; `lookup` reads one variable.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(dir) = non_empty("INVOICER_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(listen) = non_empty("INVOICER_LISTEN") {
            self.server.listen = listen.parse().map_err(|_| ConfigError::Env {
                name: "INVOICER_LISTEN",
                value: listen.clone(),
                message: "expected an address and port such as 127.0.0.1:50051".to_owned(),
            })?;
        }
        if let Some(endpoint) = non_empty("INVOICER_ENDPOINT") {
            self.client.endpoint = endpoint;
        }
        if let Some(url) = non_empty("INVOICER_SMTP_URL") {
            self.mail.smtp_url = Some(url);
        }
        if let Some(password) = lookup("INVOICER_SMTP_PASSWORD").filter(|v| !v.is_empty()) {
            self.mail.password = Some(Secret::new(password));
        }
        if let Some(url) = non_empty("INVOICER_DATABASE_URL") {
            self.database_url = Some(url);
        }
        if let Some(delay) = non_empty("INVOICER_RETRY_FIRST_DELAY") {
            self.batch.retry_first_delay = checked_duration("INVOICER_RETRY_FIRST_DELAY", delay)?;
        }
        if let Some(lifetime) = non_empty("INVOICER_RETRY_LIFETIME") {
            self.batch.retry_lifetime = checked_duration("INVOICER_RETRY_LIFETIME", lifetime)?;
        }
        if let Some(value) = non_empty("INVOICER_PDF_FACTUR_X") {
            self.pdf.factur_x = parse_bool(&value).ok_or_else(|| ConfigError::Env {
                name: "INVOICER_PDF_FACTUR_X",
                value: value.clone(),
                message: "expected true or false".to_owned(),
            })?;
        }
        if let Some(endpoint) = non_empty("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.telemetry.otlp_endpoint = Some(endpoint);
        }
        if let Some(name) = non_empty("OTEL_SERVICE_NAME") {
            self.telemetry.service_name = Some(name);
        }
        if let Some(sampler) = non_empty("OTEL_TRACES_SAMPLER") {
            self.telemetry.traces_sampler = Some(sampler);
        }
        if let Some(argument) = non_empty("OTEL_TRACES_SAMPLER_ARG") {
            self.telemetry.traces_sampler_arg = Some(argument);
        }
        if let Some(exporter) = non_empty("OTEL_METRICS_EXPORTER") {
            self.telemetry.metrics_exporter = Some(exporter);
        }
        if let Some(listen) = non_empty("INVOICER_METRICS_LISTEN") {
            let address = listen.parse().map_err(|_| ConfigError::Env {
                name: "INVOICER_METRICS_LISTEN",
                value: listen.clone(),
                message: "expected an address and port such as 127.0.0.1:9464".to_owned(),
            })?;
            self.telemetry.metrics_listen = Some(address);
        }
        if let Some(list) = non_empty("INVOICER_AUTH_TOKENS") {
            let entries = crate::auth::parse_token_list(&list)
                .map_err(|(position, message)| ConfigError::AuthTokens { position, message })?;
            self.server.tokens.extend(entries);
        }
        if let Some(token) = non_empty("INVOICER_SERVICE_TOKEN") {
            self.server.service_token = Some(Secret::new(token.trim()));
        }
        if let Some(token) = non_empty("INVOICER_TOKEN") {
            self.client.token = Some(Secret::new(token.trim()));
        }
        if let Some(file) = non_empty("INVOICER_CA_FILE") {
            self.client.tls.ca_file = Some(PathBuf::from(file));
        }
        Ok(())
    }

    /// Database URL of one service: the shared `database_url`, or its own SQLite file.
    pub fn database_url_for(&self, service: ServiceName) -> String {
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        let path = self
            .data_dir
            .join(format!("{}.db", service.database_stem()));
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.mail
            .outbox_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    /// Returns the timezone of the schedule: its own, or the company's.
    pub fn schedule_timezone(&self) -> &str {
        self.batch
            .schedule
            .timezone
            .as_deref()
            .unwrap_or(&self.company.timezone)
    }
}

/// Checks that the variable `name` contains a non-zero duration such as `2s` or `5d`.
fn checked_duration(name: &'static str, value: String) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::Env {
        name,
        value: value.clone(),
        message,
    };
    match humantime::parse_duration(value.trim()) {
        Ok(duration) if duration.is_zero() => Err(invalid(
            "the duration must be longer than zero, such as `2s` or `5d`".to_owned(),
        )),
        Ok(_) => Ok(value.trim().to_owned()),
        Err(error) => Err(invalid(format!(
            "{error}; use a duration such as `2s`, `30m` or `5d`"
        ))),
    }
}

/// Parses `true`, `false`, `1` or `0`, ignoring case and surrounding spaces.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Returns whether `url` names a SQLite database.
///
/// The stores turn sqlx's ping on every pool checkout off for SQLite. There a ping is a
/// round trip to the connection's worker thread, one per statement outside a transaction,
/// and it can find nothing wrong, because no server or network sits between the pool and the
/// file. On PostgreSQL see [`DATABASE_PING_AFTER_IDLE`].
pub fn is_sqlite_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Idle time after which the stores' pools ping a PostgreSQL connection before they hand it
/// out. The ping replaces a connection that a server restart or a network
/// device cut before a statement fails on it. A connection used within the last second is
/// handed out without it, which saves a round trip per statement in a busy batch. A cut
/// connection of that second fails its next statement instead, and the pool then drops it.
/// Their callers recover from such a failure: the orchestrator reads the invoice again with
/// a later attempt, and appends an unlogged outcome again. The orchestrator itself writes the
/// outcome of a sent attempt again (`OUTCOME_WRITE_RETRIES`).
pub const DATABASE_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Returns the folder of a `sqlite://` file URL, such as `/srv/data` for
/// `sqlite:///srv/data/audit_log.db?mode=rwc`. `None` for other databases, in-memory SQLite and
/// files in the working directory. Stores create this folder before they connect.
pub fn sqlite_folder(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let folder = Path::new(path).parent()?;
    (!folder.as_os_str().is_empty()).then(|| folder.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut config: Config = toml::from_str(
            r#"
            data_dir = "/srv/file"
            [server]
            listen = "127.0.0.1:6000"
            "#,
        )
        .unwrap();
        config
            .apply_env(|name| match name {
                "INVOICER_DATA_DIR" => Some("/srv/env".to_owned()),
                "INVOICER_SMTP_URL" => Some("smtp://127.0.0.1:2525".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/env"));
        assert_eq!(config.server.listen.port(), 6000);
        assert_eq!(
            config.mail.smtp_url.as_deref(),
            Some("smtp://127.0.0.1:2525")
        );
    }

    #[test]
    fn smtp_password_env_hidden_in_debug() {
        let mut config = Config::default();
        config
            .apply_env(|name| (name == "INVOICER_SMTP_PASSWORD").then(|| "hunter2".to_owned()))
            .unwrap();
        assert_eq!(
            config.mail.password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("Secret(<redacted>)"), "{debug}");
    }

    #[test]
    fn example_config_parses() {
        let example = include_str!("../../../deploy/config/invoicer.example.toml");
        let config: Config = toml::from_str(example).unwrap();
        assert_eq!(config.mail.max_connections, 4);
        assert_eq!(config.mail.max_messages_per_second, 0.0);
        assert_eq!(config.mail.pool_idle_secs, 60);
        assert_eq!(config.server.max_concurrent_requests, 256);
        assert!(!config.server.plaintext);
    }

    #[test]
    fn smtp_password_key_in_file_is_rejected() {
        let error = toml::from_str::<Config>("[mail]\npassword = \"x\"").unwrap_err();
        assert!(error.to_string().contains("password"), "{error}");
    }

    #[test]
    fn invalid_listen_env_names_variable() {
        let mut config = Config::default();
        let error = config
            .apply_env(|name| (name == "INVOICER_LISTEN").then(|| "localhost".to_owned()))
            .unwrap_err();
        assert!(
            error.to_string().contains("INVOICER_LISTEN=\"localhost\""),
            "{error}"
        );
    }

    #[test]
    fn otel_variables_set_telemetry() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "OTEL_SERVICE_NAME" => Some("billing".to_owned()),
                "OTEL_TRACES_SAMPLER" => Some("traceidratio".to_owned()),
                "OTEL_TRACES_SAMPLER_ARG" => Some("0.5".to_owned()),
                "OTEL_METRICS_EXPORTER" => Some("none".to_owned()),
                "INVOICER_METRICS_LISTEN" => Some("127.0.0.1:9464".to_owned()),
                _ => None,
            })
            .unwrap();
        let telemetry = &config.telemetry;
        assert_eq!(telemetry.service_name.as_deref(), Some("billing"));
        assert_eq!(telemetry.traces_sampler.as_deref(), Some("traceidratio"));
        assert_eq!(telemetry.traces_sampler_arg.as_deref(), Some("0.5"));
        assert_eq!(telemetry.metrics_exporter.as_deref(), Some("none"));
        assert_eq!(
            telemetry.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
    }

    #[test]
    fn invalid_metrics_listen_env_names_variable() {
        let mut config = Config::default();
        let error = config
            .apply_env(|name| (name == "INVOICER_METRICS_LISTEN").then(|| "9464".to_owned()))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("INVOICER_METRICS_LISTEN=\"9464\""),
            "{error}"
        );
    }

    #[test]
    fn retry_env_sets_durations() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "INVOICER_RETRY_FIRST_DELAY" => Some("2s".to_owned()),
                "INVOICER_RETRY_LIFETIME" => Some(" 1h ".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.batch.retry_first_delay, "2s");
        assert_eq!(config.batch.retry_lifetime, "1h");
    }

    #[test]
    fn invalid_retry_env_names_variable_and_value() {
        for (name, value) in [
            ("INVOICER_RETRY_FIRST_DELAY", "soon"),
            ("INVOICER_RETRY_LIFETIME", "5 days later"),
            ("INVOICER_RETRY_LIFETIME", "0s"),
        ] {
            let mut config = Config::default();
            let error = config
                .apply_env(|n| (n == name).then(|| value.to_owned()))
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("{name}={value:?}")), "{error}");
        }
    }

    #[test]
    fn unknown_key_is_rejected() {
        let error = toml::from_str::<Config>("[server]\nlisten_addr = \"x\"").unwrap_err();
        assert!(error.to_string().contains("listen_addr"), "{error}");
    }

    #[test]
    fn notifier_templates_parse_per_language() {
        let config: Config = toml::from_str(
            r#"
            [notifier]
            kinds = ["invoice"]
            split = "per_to_contact"
            [notifier.templates.de]
            subject = "Rechnung {{ number }}"
            "#,
        )
        .unwrap();
        assert_eq!(config.notifier.kinds, ["invoice"]);
        assert!(config.notifier.enabled);
        let german = &config.notifier.templates["de"];
        assert_eq!(german.subject.as_deref(), Some("Rechnung {{ number }}"));
        assert_eq!(german.text, None);
    }

    #[test]
    fn pdf_factur_x_env_overrides_file() {
        let mut config: Config = toml::from_str("[pdf]\nfactur_x = false").unwrap();
        config
            .apply_env(|name| (name == "INVOICER_PDF_FACTUR_X").then(|| "TRUE".to_owned()))
            .unwrap();
        assert!(config.pdf.factur_x);
    }

    #[test]
    fn pdf_factur_x_env_rejects_other_words() {
        let mut config = Config::default();
        let error = config
            .apply_env(|name| (name == "INVOICER_PDF_FACTUR_X").then(|| "yes".to_owned()))
            .unwrap_err();
        assert!(
            error.to_string().contains("INVOICER_PDF_FACTUR_X=\"yes\""),
            "{error}"
        );
    }

    #[test]
    fn pdf_section_parses() {
        let config: Config = toml::from_str(
            r#"
            [pdf]
            template = "/etc/invoicer/invoice.typ"
            logo = "/etc/invoicer/logo.png"
            [pdf.payment]
            iban = "DE02120300000000202051"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.pdf.template.as_deref(),
            Some(Path::new("/etc/invoicer/invoice.typ"))
        );
        assert_eq!(config.pdf.payment.iban, "DE02120300000000202051");
        assert!(!config.pdf.factur_x);
    }

    #[test]
    fn sqlite_urls_told_from_postgres() {
        assert!(is_sqlite_url("sqlite:///srv/data/iq.db?mode=rwc"));
        assert!(is_sqlite_url("sqlite::memory:"));
        assert!(!is_sqlite_url("postgres://invoicer@db:5432/invoicer"));
        assert!(!is_sqlite_url(
            "postgresql://invoicer@db/invoicer?sslmode=require"
        ));
    }

    #[test]
    fn sqlite_folder_of_file_urls() {
        assert_eq!(
            sqlite_folder("sqlite:///srv/data/iq.db?mode=rwc"),
            Some(PathBuf::from("/srv/data"))
        );
        assert_eq!(
            sqlite_folder("sqlite://data/iq.db"),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            sqlite_folder("sqlite:data/iq.db"),
            Some(PathBuf::from("data"))
        );
    }

    #[test]
    fn sqlite_folder_none_without_folder() {
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
        assert_eq!(sqlite_folder("sqlite://iq.db?mode=rwc"), None);
        assert_eq!(sqlite_folder("postgres://postgres@127.0.0.1/test"), None);
    }

    #[test]
    fn sqlite_url_per_service_without_database_url() {
        let config = Config {
            data_dir: PathBuf::from("/d"),
            ..Config::default()
        };
        assert_eq!(
            config.database_url_for(ServiceName::AuditLog),
            "sqlite:///d/audit_log.db?mode=rwc"
        );
    }

    #[test]
    fn auth_tokens_env_adds_entries() {
        let mut config = Config::default();
        let list = format!("viewer:{},admin:{}", "a".repeat(64), "B".repeat(64));
        config
            .apply_env(|name| match name {
                "INVOICER_AUTH_TOKENS" => Some(list.clone()),
                "INVOICER_TOKEN" => Some(" client-token \n".to_owned()),
                "INVOICER_SERVICE_TOKEN" => Some("svc".to_owned()),
                "INVOICER_CA_FILE" => Some("/etc/ca.pem".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.server.tokens.len(), 2);
        assert_eq!(config.server.tokens[1].role, Role::Admin);
        assert_eq!(config.server.tokens[1].sha256, "b".repeat(64));
        assert_eq!(
            config.client.token.as_ref().map(Secret::expose),
            Some("client-token")
        );
        assert_eq!(
            config.server.service_token.as_ref().map(Secret::expose),
            Some("svc")
        );
        assert_eq!(
            config.client.tls.ca_file,
            Some(PathBuf::from("/etc/ca.pem"))
        );
    }

    #[test]
    fn invalid_auth_tokens_entry_is_named() {
        let mut config = Config::default();
        let list = format!("viewer:{},operator:{}", "a".repeat(64), "z".repeat(64));
        let error = config
            .apply_env(|name| (name == "INVOICER_AUTH_TOKENS").then(|| list.clone()))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("invalid entry 2 of INVOICER_AUTH_TOKENS"),
            "{message}"
        );
        assert!(message.contains("role operator"), "{message}");
    }

    #[test]
    fn tokens_and_tls_parse_from_file() {
        let config: Config = toml::from_str(&format!(
            r#"
            [server]
            plaintext = true
            [[server.tokens]]
            role = "operator"
            sha256 = "{}"
            name = "erp"
            [server.tls]
            cert_file = "/tls/server.pem"
            key_file = "/tls/server.key"
            client_ca_file = "/tls/ca.pem"
            client_cert_required = true
            [server.tls.client_roles]
            "orchestrator.internal" = "service"
            [client.tls]
            ca_file = "/tls/ca.pem"
            "#,
            "c".repeat(64)
        ))
        .unwrap();
        assert_eq!(config.server.tokens[0].name.as_deref(), Some("erp"));
        let tls = config.server.tls.unwrap();
        assert!(tls.client_cert_required);
        assert_eq!(tls.client_roles["orchestrator.internal"], Role::Service);
        assert!(config.server.plaintext);
    }

    #[test]
    fn unknown_role_is_rejected() {
        let error = toml::from_str::<Config>("[[server.tokens]]\nrole = \"root\"\nsha256 = \"x\"")
            .unwrap_err();
        assert!(error.to_string().contains("root"), "{error}");
    }
}
