//! Command-line flags, defined as data with their help text, and the dispatch to commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use invoicer_kit::Config;

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "invoicer",
    version,
    about = "Emails every posted invoice to the customer's billing contacts, once, with proof"
)]
pub struct Cli {
    /// TOML configuration file; environment variables (INVOICER_*) override its values.
    #[arg(long, global = true, env = "INVOICER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Server the client commands dial [env: INVOICER_ENDPOINT] [default: client.endpoint].
    #[arg(long, global = true)]
    pub endpoint: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the embedded default end to end: sample data, tonight's batch, file outbox, log.
    Demo(DemoArgs),
    /// Serves the chosen services until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Imports an ERP export file (JSON document or JSON Lines).
    Import(ImportArgs),
    /// Runs, lists and inspects batches.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Sends one invoice again, to its contacts or to other addresses.
    Resend(ResendArgs),
    /// Renders an invoice to a PDF file without sending it.
    Preview(PreviewArgs),
    /// Prints the email log, newest first.
    Log(LogArgs),
    /// Checks the email log's hash chain.
    VerifyLog,
    /// Shows when the schedule fires.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Checks the configuration without starting anything.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Shows and changes notifiers: the rules for emailing each customer's invoices.
    #[command(subcommand)]
    Notifier(NotifierCommand),
    /// Makes access tokens for the servers.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Prints a new random token on the first line (give it to the client as INVOICER_TOKEN)
    /// and its `ROLE:SHA256_HEX` entry on the second (add it to the servers'
    /// INVOICER_AUTH_TOKENS).
    New(TokenNewArgs),
}

#[derive(Debug, Args)]
pub struct TokenNewArgs {
    /// Role of the token: viewer, operator, admin or service.
    #[arg(long)]
    pub role: invoicer_kit::Role,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's databases and outbox [default: ./invoicer-demo].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How far back the demo batch looks; the default covers the whole five-year sample.
    #[arg(long, default_value = "3650d")]
    pub lookback: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// `all` or a comma-separated list of invoice-query, pdf-render, mail-delivery, audit-log,
    /// orchestrator [default: server.services].
    #[arg(long)]
    pub services: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file; `-` reads standard input.
    pub file: PathBuf,
    /// Prints the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Runs a batch now and prints each invoice's outcome and the counts.
    Run(BatchRunArgs),
    /// Shows one batch with every invoice's outcome.
    Status(BatchStatusArgs),
    /// Lists batches, newest first.
    List(BatchListArgs),
}

#[derive(Debug, Args)]
pub struct BatchRunArgs {
    /// Only invoices issued before this RFC 3339 instant [default: now].
    #[arg(long)]
    pub cutoff: Option<String>,
    /// How far back from the cutoff, such as `30d` or `36h` [default: batch.lookback].
    #[arg(long, value_parser = non_blank_lookback, allow_hyphen_values = true)]
    pub lookback: Option<String>,
    /// Shows what would be sent, and what not and why, without writing or sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Runs the scheduled batch of this date (YYYY-MM-DD) now, as a missed or repeated
    /// trigger would; when it already ran, prints it and sends nothing.
    #[arg(long, conflicts_with = "cutoff")]
    pub business_date: Option<String>,
    /// Prints one JSON object per invoice, then one with the counts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BatchStatusArgs {
    /// The batch id, as `batch run` and `batch list` print it.
    pub id: String,
    /// List only the invoices not sent and those sent with a reason, such as a rejected Cc.
    #[arg(long)]
    pub attention_only: bool,
    /// Prints one JSON object per invoice, then one with the counts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BatchListArgs {
    /// Number of batches to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Prints one JSON object per batch.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResendArgs {
    /// The invoice number.
    pub number: String,
    /// Send to this address instead of the contacts (repeatable; replaces all contacts).
    #[arg(long)]
    pub to: Vec<String>,
    /// Cc address (repeatable).
    #[arg(long)]
    pub cc: Vec<String>,
    /// Bcc address (repeatable).
    #[arg(long)]
    pub bcc: Vec<String>,
    /// Reason for sending the invoice again, kept in the email log.
    #[arg(long)]
    pub reason: String,
    /// Your id for this request. Repeating it with the same options returns the first result
    /// and sends nothing [default: a new id, printed with the result]. The orchestrator tries
    /// a deferred resend again, and a repeat with the printed id shows how it ended.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Revision whose frozen PDF to send; 0 means the latest.
    #[arg(long, default_value_t = 0)]
    pub revision: u32,
    /// Name of the requester, kept in the email log [default: $USER, $LOGNAME or the login
    /// name of the user id].
    #[arg(long)]
    pub actor: Option<String>,
    /// Prints the resulting delivery as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The invoice number.
    pub number: String,
    /// Output file [default: <invoice number>.pdf in the current folder].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Revision to render; 0 means the latest.
    #[arg(long, default_value_t = 0)]
    pub revision: u32,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Invoice number.
    #[arg(long)]
    pub invoice: Option<String>,
    /// Customer code.
    #[arg(long)]
    pub customer: Option<String>,
    /// An address in To, Cc or Bcc, with or without a display name.
    #[arg(long)]
    pub recipient: Option<String>,
    /// Entries at or after this RFC 3339 instant.
    #[arg(long)]
    pub since: Option<String>,
    /// Entries before this RFC 3339 instant.
    #[arg(long)]
    pub until: Option<String>,
    /// Entries of this batch.
    #[arg(long)]
    pub batch: Option<String>,
    /// Maximum number of entries [default: all].
    #[arg(long, value_parser = positive_limit)]
    pub limit: Option<usize>,
    /// Prints one JSON object per entry.
    #[arg(long)]
    pub json: bool,
}

/// Rejects `--limit 0`, which would print nothing and read as "no entries match".
fn positive_limit(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("is 0; give at least 1, or leave out --limit for all entries".to_owned()),
        Ok(limit) => Ok(limit),
        Err(error) => Err(format!("{error}; give a whole number such as 50")),
    }
}

/// Refuses an empty `--lookback`, which the server would read as "not given" and replace by
/// `batch.lookback` without a word, and a negative one, which clap would otherwise take for
/// an unknown flag.
fn non_blank_lookback(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(
            "is empty; give a duration such as `30d`, or leave out --lookback for batch.lookback"
                .to_owned(),
        );
    }
    if value.trim().starts_with('-') {
        return Err(
            "is negative; give how far back from the cutoff as a duration such as `30d`".to_owned(),
        );
    }
    Ok(value.to_owned())
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Checks every setting the chosen services read at start, as `serve` would, without
    /// opening a database or connecting anywhere. Exits 1 when a service would not start, and 2
    /// when the configuration cannot be loaded (a file that cannot be read or parsed, or an
    /// invalid `INVOICER_*` variable) or `--services` names an unknown service.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// `all` or a comma-separated list of services, as for `serve` [default: server.services].
    #[arg(long)]
    pub services: Option<String>,
    /// Leaves out the server's check of access tokens, TLS files, listen address and
    /// endpoints, for a file whose secrets exist only where it is deployed.
    #[arg(long)]
    pub skip_server: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Prints the next fire instants in UTC and local time, with each one's business date.
    Next(ScheduleNextArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleNextArgs {
    /// Number of instants, 1 to 1000.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub count: u16,
    /// Start after this RFC 3339 instant [default: now].
    #[arg(long)]
    pub after: Option<String>,
    /// Cron expression to try instead of batch.schedule.cron.
    #[arg(long)]
    pub cron: Option<String>,
    /// IANA timezone to try instead of the configured one.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Prints one JSON object per instant.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifierCommand {
    /// Prints a customer's own notifier and the one that applies to it (merged with the
    /// default); without a customer, the default notifier.
    Show(NotifierShowArgs),
    /// Changes a customer's own notifier. Flags left out keep their current value; the
    /// default notifier is changed in the config file instead. A running batch applies the
    /// change to the invoices it has not planned yet.
    Set(Box<NotifierSetArgs>),
    /// Prints who changed which notifier when, with the old and new value, newest first.
    History(NotifierHistoryArgs),
    /// Lists the default notifier and every customer's own notifier.
    List(NotifierListArgs),
}

#[derive(Debug, Args)]
pub struct NotifierShowArgs {
    /// Customer code [default: the default notifier].
    pub customer: Option<String>,
    /// Prints the customer's own and the merged notifier as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NotifierSetArgs {
    /// Customer code.
    pub customer: String,
    /// Whether the customer's invoices are emailed; `false` lists each as skipped.
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
    /// Invoice kinds that are emailed, comma-separated; `all` sends every kind.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kinds: Option<Vec<KindArg>>,
    /// Extra To address beside the contacts (repeatable; replaces the customer's extra To
    /// addresses, and an empty value sets none).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Extra Cc address (repeatable; replaces the customer's extra Cc addresses, and an empty
    /// value sets none).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,
    /// Extra Bcc address (repeatable; replaces the customer's extra Bcc addresses, and an
    /// empty value sets none).
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,
    /// One message per invoice, or one per To recipient with the same Cc and Bcc.
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Subject template (minijinja) for one language, such as `en=Invoice {{ number }}`
    /// (repeatable; an empty TEXT removes it).
    #[arg(long, value_name = "LANG=TEXT")]
    pub subject_template: Vec<String>,
    /// Plain-text body template for one language, read from FILE (repeatable).
    #[arg(long, value_name = "LANG=FILE")]
    pub text_template: Vec<String>,
    /// HTML body template for one language, read from FILE (repeatable).
    #[arg(long, value_name = "LANG=FILE")]
    pub html_template: Vec<String>,
    /// Field that inherits the default notifier's value again (repeatable).
    #[arg(long, value_enum, value_name = "FIELD")]
    pub inherit: Vec<InheritArg>,
    /// Reason for the change, kept in the change history.
    #[arg(long)]
    pub reason: String,
    /// Name of the person making the change, kept in the change history [default: $USER,
    /// $LOGNAME or the login name of the user id].
    #[arg(long)]
    pub actor: Option<String>,
    /// Prints the change and the resulting notifiers as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Invoice,
    #[value(name = "credit_note")]
    CreditNote,
    /// Every kind.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    PerInvoice,
    PerToContact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InheritArg {
    Enabled,
    Kinds,
    To,
    Cc,
    Bcc,
    Split,
    /// Every template of every language.
    Templates,
}

#[derive(Debug, Args)]
pub struct NotifierHistoryArgs {
    /// Customer code [default: every customer].
    pub customer: Option<String>,
    /// Prints one JSON object per change.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NotifierListArgs {
    /// Prints one JSON object per notifier, the default first.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command line `args` (program name first), writing its output to `out`.
pub async fn run(args: Vec<String>, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            error.print().context("cannot print usage")?;
            return Ok(ExitCode::from(code));
        }
    };
    let config = Config::load(cli.config.as_deref())?;
    let long_running = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    let services = match &cli.command {
        Command::Serve(args) => args.services.as_deref(),
        _ => None,
    };
    let _telemetry = init_telemetry(&config, long_running, services)?;
    let endpoint = cli
        .endpoint
        .clone()
        .unwrap_or_else(|| config.client.endpoint.clone());
    match cli.command {
        Command::Demo(args) => commands::demo::run(config, args, out).await,
        Command::Serve(args) => commands::serve::run(config, args).await,
        Command::Import(args) => commands::import::run(&config, &endpoint, args, out).await,
        Command::Batch(command) => commands::batch::run(&config, &endpoint, command, out).await,
        Command::Resend(args) => commands::resend::run(&config, &endpoint, args, out).await,
        Command::Preview(args) => commands::preview::run(&config, &endpoint, args, out).await,
        Command::Log(args) => commands::log::run(&config, &endpoint, args, out).await,
        Command::VerifyLog => commands::log::verify(&config, &endpoint, out).await,
        Command::Schedule(ScheduleCommand::Next(args)) => {
            commands::schedule::next(&config, args, out)
        }
        Command::Config(ConfigCommand::Check(args)) => commands::config::check(&config, args, out),
        Command::Notifier(command) => {
            commands::notifier::run(&config, &endpoint, command, out).await
        }
        Command::Token(TokenCommand::New(args)) => commands::token::new(args, out),
    }
}

/// Logs go to stderr: at the configured level for the server and the demo, warnings only for
/// client commands so their output stays readable. A subscriber set earlier in this process
/// (as in tests that call `run` repeatedly) is kept.
fn init_telemetry(
    config: &Config,
    long_running: bool,
    services: Option<&str>,
) -> anyhow::Result<Option<invoicer_telemetry::TelemetryGuard>> {
    let telemetry = &config.telemetry;
    let services = services.unwrap_or(&config.server.services);
    let service_name = telemetry
        .service_name
        .clone()
        .unwrap_or_else(|| default_service_name(services));
    let options = invoicer_telemetry::TelemetryOptions {
        service_name: &service_name,
        log_format: &telemetry.log_format,
        log_filter: if long_running {
            &telemetry.log_filter
        } else {
            "warn"
        },
        otlp_endpoint: if long_running {
            telemetry.otlp_endpoint.as_deref()
        } else {
            None
        },
        traces_sampler: telemetry.traces_sampler.as_deref(),
        traces_sampler_arg: telemetry.traces_sampler_arg.as_deref(),
        metrics_exporter: telemetry.metrics_exporter.as_deref(),
        metrics_listen: if long_running {
            telemetry.metrics_listen
        } else {
            None
        },
    };
    match invoicer_telemetry::init(&options) {
        Ok(guard) => Ok(Some(guard)),
        Err(invoicer_telemetry::TelemetryError::AlreadySet) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Names a process after the one service it serves, such as `pdf-render`; a process serving
/// several is `invoicer`.
fn default_service_name(services: &str) -> String {
    let names: Vec<&str> = services
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    match names.as_slice() {
        [name] if *name != "all" => (*name).to_owned(),
        _ => "invoicer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, default_service_name};

    /// An empty `--lookback` is refused with a message, not replaced by `batch.lookback`, and
    /// a negative one with its own message, not as an unknown flag.
    #[test]
    fn empty_or_negative_lookback_is_refused() {
        for blank in ["", " "] {
            let error = Cli::try_parse_from(["invoicer", "batch", "run", "--lookback", blank])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("is empty; give a duration such as `30d`, or leave out --lookback"),
                "{error}"
            );
        }
        let error = Cli::try_parse_from(["invoicer", "batch", "run", "--lookback", "-5d"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is negative; give how far back from the cutoff"),
            "{error}"
        );
        assert!(Cli::try_parse_from(["invoicer", "batch", "run", "--lookback", "7d"]).is_ok());
    }

    /// `--limit 0` would print nothing, which reads as "no entries match", so it is rejected.
    #[test]
    fn zero_limit_rejected() {
        let error = Cli::try_parse_from(["invoicer", "log", "--limit", "0"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("is 0; give at least 1"), "{error}");
        assert!(Cli::try_parse_from(["invoicer", "log", "--limit", "5"]).is_ok());
    }

    #[test]
    fn service_name_of_one_service() {
        assert_eq!(default_service_name("pdf-render"), "pdf-render");
        assert_eq!(default_service_name(" audit-log "), "audit-log");
    }

    #[test]
    fn service_name_of_several_services() {
        assert_eq!(default_service_name("all"), "invoicer");
        assert_eq!(default_service_name("pdf-render,mail-delivery"), "invoicer");
        assert_eq!(default_service_name(""), "invoicer");
    }
}
