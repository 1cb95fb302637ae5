//! Checks that `invoicer demo` with the default configuration, which sets no metrics exporter,
//! logs no error line although every service records metrics, and no colour codes to a pipe.

mod demo_process;

use std::time::Duration;

use anyhow::Result;
use demo_process::run_demo;

/// The demo imports 412 invoices, and with a lookback of one second it sends none of them. A
/// debug build took under a second for that, so this limit only catches a hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn demo_without_metrics_exporter_logs_no_error() -> Result<()> {
    let data_dir = tempfile::tempdir()?;
    // Without OTEL_* and INVOICER_METRICS_LISTEN there is no metrics exporter and no
    // Prometheus endpoint.
    let output = run_demo(data_dir.path(), "1s", &[], DEMO_TIMEOUT).await?;
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
