//! `invoicer schedule next`: when the configured (or a proposed) schedule fires.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use invoicer_kit::Config;
use invoicer_orchestrator::Schedule;

use crate::cli::ScheduleNextArgs;
use crate::output;

pub(crate) fn next(
    config: &Config,
    args: ScheduleNextArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let cron = args.cron.as_deref().unwrap_or(&config.batch.schedule.cron);
    let timezone = args
        .timezone
        .as_deref()
        .unwrap_or(config.schedule_timezone());
    let schedule = Schedule::parse_reporting_all(cron, timezone).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(lines.join("\n"))
    })?;
    let after = match &args.after {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .with_context(|| {
                format!(
                    "invalid --after {text:?}; use an RFC 3339 instant such as 2026-12-04T00:00:00Z"
                )
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let instants = schedule.upcoming(after, usize::from(args.count))?;
    output::schedule(out, cron, timezone, &instants, args.json)?;
    Ok(ExitCode::SUCCESS)
}
