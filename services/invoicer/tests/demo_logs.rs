//! Checks what `invoicer demo` logs with the default configuration, where no metrics exporter
//! is set: no error line, though every service records metrics, and no colour codes in a log
//! that goes to a pipe.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// The demo imports 412 invoices, and with a lookback of one second it sends none of them. A
/// debug build took under a second for that, so this limit only catches a hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `invoicer demo --lookback 1s` in `data_dir` at log level `info`, with no `INVOICER_*`,
/// `OTEL_*` or `NO_COLOR` variable of the caller, so no metrics exporter, no Prometheus
/// endpoint and colours decided by the terminal alone.
async fn run_demo(data_dir: &Path) -> Result<Output> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_invoicer"));
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--lookback", "1s"])
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .context("cannot start the invoicer binary")?;
    let output = tokio::time::timeout(DEMO_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("invoicer demo still running after {DEMO_TIMEOUT:?}"))??;
    Ok(output)
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_without_metrics_exporter_logs_no_error() -> Result<()> {
    let data_dir = tempfile::tempdir()?;
    let output = run_demo(data_dir.path()).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "invoicer demo exited with {}; stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    // The batch ran and recorded its duration, so the metrics were created.
    assert!(
        stderr.contains("batch completed"),
        "no batch completed line in the log:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "the log written to a pipe has terminal escape codes:\n{stderr}"
    );

    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(" ERROR ") || line.contains(" WARN "))
        .collect();
    assert!(
        errors.is_empty(),
        "the demo logged {} error or warning lines:\n{}",
        errors.len(),
        errors.join("\n")
    );

    assert!(
        stdout.contains("nothing was sent"),
        "the demo does not say that nothing was sent:\n{stdout}"
    );
    assert!(
        stdout.contains("lookback (1s)"),
        "the demo does not name the lookback:\n{stdout}"
    );
    assert!(
        stdout.contains("longer --lookback"),
        "the demo does not suggest a longer lookback after a fresh import:\n{stdout}"
    );
    Ok(())
}
