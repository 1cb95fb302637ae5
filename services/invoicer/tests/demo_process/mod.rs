//! Runs `invoicer demo` as a child process for the tests in this folder.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// Runs `invoicer demo --lookback LOOKBACK` in `data_dir` at log level `info`, with `env` set
/// and none of the caller's `INVOICER_*`, `OTEL_*` or `NO_COLOR` variables, so only `env`
/// configures it. Fails when it runs longer than `timeout`.
pub(crate) async fn run_demo(
    data_dir: &Path,
    lookback: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_invoicer"));
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--lookback", lookback])
        .current_dir(data_dir);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("INVOICER_")
            || name_text.starts_with("OTEL_")
            || name_text == "NO_COLOR"
        {
            command.env_remove(&name);
        }
    }
    command
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    let child = command
        .spawn()
        .context("cannot start the invoicer binary")?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("invoicer demo still running after {timeout:?}"))??;
    Ok(output)
}
