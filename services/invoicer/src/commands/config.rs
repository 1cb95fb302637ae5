//! `invoicer config check`: whether each chosen service would start with the configuration.

use std::io::Write;
use std::process::ExitCode;

use invoicer_kit::{Config, ServiceName};

use crate::cli::ConfigCheckArgs;
use crate::host;

/// Runs the server's check of its access, TLS and endpoint settings, then each service's own
/// check of the settings it reads at start, and prints one line per check, or per problem of
/// a check that reports several. Every check runs, so one run lists the problems of each.
pub(crate) fn check(
    config: &Config,
    args: ConfigCheckArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let services = args.services.as_deref().unwrap_or(&config.server.services);
    let names = ServiceName::parse_list(services).map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    let mut checks = names.len();
    if !args.skip_server {
        checks += 1;
        match invoicer_kit::server::check_config(config) {
            Ok(()) => writeln!(out, "server: ok")?,
            Err(error) => {
                failed += 1;
                writeln!(out, "server: {}", error_chain(error.as_ref()))?;
            }
        }
    }
    for name in &names {
        match host::plugin(*name).check_config(config) {
            Ok(()) => writeln!(out, "{name}: ok")?,
            Err(error) => {
                failed += 1;
                // A check that found several problems reports one per line.
                for problem in error_chain(error.as_ref()).lines() {
                    writeln!(out, "{name}: {problem}")?;
                }
            }
        }
    }
    let demo = config.demo_sender_settings();
    if !demo.is_empty() {
        let (verb, object) = if demo.len() == 1 {
            ("names", "it")
        } else {
            ("name", "them")
        };
        writeln!(
            out,
            "note: {} still {verb} the demo company; set {object} before sending to customers",
            demo.join(", ")
        )?;
    }
    if failed > 0 {
        writeln!(
            out,
            "{failed} of {checks} checks failed: `serve` would not start with this configuration"
        )?;
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Joins an error and its sources, each once: a source whose text the error already contains
/// is left out.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
