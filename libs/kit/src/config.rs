//! Configuration: built-in defaults, then the TOML file, then `INVOICER_*` environment
//! variables. `deploy/config/invoicer.example.toml` documents every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// When set, every request must carry `authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// Seconds to wait for in-flight requests at shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// URL the CLI commands dial. `INVOICER_ENDPOINT`.
    pub endpoint: String,
    /// Seconds before a CLI call gives up.
    pub timeout_secs: u64,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// How far back from the cutoff invoices stay eligible, such as `30d` or `36h`.
    pub lookback: String,
    /// Invoices rendered and sent at once.
    pub concurrency: usize,
    /// Attempts before a deferred delivery fails for good.
    pub max_attempts: u32,
    /// First retry delay in seconds; each later one doubles it.
    pub retry_base_secs: u64,
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

/// How pdf-render lays out the invoice PDF.
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
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            timeout_secs: 300,
        }
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
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            lookback: "30d".to_owned(),
            concurrency: 4,
            max_attempts: 5,
            retry_base_secs: 60,
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
        if let Some(url) = non_empty("INVOICER_DATABASE_URL") {
            self.database_url = Some(url);
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

/// Parses `true`, `false`, `1` or `0`, ignoring case and surrounding spaces.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

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
}
