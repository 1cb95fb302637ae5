//! `invoicer demo`: the embedded default end to end. Starts all services on a free loopback
//! port with SQLite and the file outbox, imports the Chinook sample, runs the batch and prints
//! the email log.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use invoicer_kit::Config;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::invoice_query::v1 as iq;
use invoicer_proto::orchestrator::v1 as pb;

use crate::cli::DemoArgs;
use crate::client::{Clients, describe};
use crate::commands::{import, log};
use crate::output;

/// The Chinook sample database as an ERP export: 59 customers, 412 invoices.
const SAMPLE_EXPORT: &[u8] = include_bytes!("../../sample/chinook-export.json");

pub(crate) async fn run(
    mut config: Config,
    args: DemoArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.unwrap_or_else(|| {
        if std::env::var_os("INVOICER_DATA_DIR").is_some() {
            config.data_dir.clone()
        } else {
            PathBuf::from("invoicer-demo")
        }
    });
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create demo folder {}", data_dir.display()))?;
    config.data_dir = std::fs::canonicalize(&data_dir)?;
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.services = "all".to_owned();
    config.batch.schedule.enabled = false;
    let config = Arc::new(config);

    let server = crate::host::start(config.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let endpoint = format!("http://{}", server.local_addr());
    let result = drive(&config, &endpoint, &args.lookback, out).await;
    server
        .shutdown("demo finished")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    result
}

async fn drive(
    config: &Config,
    endpoint: &str,
    lookback: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    writeln!(
        out,
        "invoicer demo: all services on {endpoint}, data in {}",
        config.data_dir.display()
    )?;
    writeln!(out, "\n== import of the Chinook sample ==")?;
    let imported = import::upsert(config, endpoint, SAMPLE_EXPORT.to_vec()).await?;
    output::import_result(out, &imported, false)?;

    writeln!(out, "\n== tonight's batch (lookback {lookback}) ==")?;
    let mut clients = Clients::new(config, endpoint)?;
    let request = pb::RunBatchRequest {
        cutoff: String::new(),
        lookback: lookback.to_owned(),
        dry_run: false,
        business_date: String::new(),
    };
    let batch = clients
        .orchestrator
        .run_batch(request)
        .await
        .map_err(|s| describe(endpoint, s))?
        .into_inner()
        .batch
        .unwrap_or_default();
    let not_sent: Vec<&pb::Delivery> = batch
        .deliveries
        .iter()
        .filter(|d| d.state != i32::from(pb::DeliveryState::Sent))
        .collect();
    for delivery in &not_sent {
        writeln!(
            out,
            "not sent: {} {}",
            delivery.invoice_number, delivery.reason
        )?;
    }
    let summary = pb::Batch {
        deliveries: Vec::new(),
        ..batch.clone()
    };
    output::batch(out, &summary, false)?;

    writeln!(out, "\n== email log of this batch ==")?;
    let filter = audit::ListEntriesRequest {
        batch_id: batch.id.clone(),
        ..Default::default()
    };
    let entries = log::fetch_entries(&mut clients, filter, None).await?;
    output::log_entries(out, &entries, false)?;

    let destination = match &config.mail.smtp_url {
        Some(_) => "the SMTP server of INVOICER_SMTP_URL".to_owned(),
        None => config.outbox_dir().display().to_string(),
    };
    writeln!(out, "\n{} messages written to {destination}", entries.len())?;
    writeln!(out, "databases: {}", config.data_dir.display())?;
    writeln!(
        out,
        "{}",
        closing_line(&imported, &batch, entries.is_empty(), lookback)
    )?;
    Ok(if batch.status == i32::from(pb::BatchStatus::Completed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Returns the demo's last line: why nothing was sent, or how to see that a second run sends
/// nothing.
fn closing_line(
    imported: &iq::UpsertInvoicesResponse,
    batch: &pb::Batch,
    nothing_logged: bool,
    lookback: &str,
) -> String {
    // A batch with no eligible invoice after an import that created every invoice (so no
    // earlier run sent any) had a lookback that contains none of them.
    let fresh = imported
        .invoices
        .as_ref()
        .is_some_and(|counts| counts.created > 0 && counts.updated == 0 && counts.unchanged == 0);
    let eligible = batch.counts.as_ref().map_or(0, |counts| counts.eligible);
    if !nothing_logged {
        "run the demo again to see that a second batch sends nothing".to_owned()
    } else if eligible > 0 {
        "nothing was sent: the lines \"not sent\" above give each invoice's reason".to_owned()
    } else if fresh {
        format!(
            "nothing was sent: no invoice of the sample was issued inside the lookback ({lookback}). Run the demo with a longer --lookback, such as 3650d, to send them."
        )
    } else {
        format!(
            "nothing was sent: an earlier demo run in this folder sent the invoices of the sample inside the lookback ({lookback}), or none was issued inside it"
        )
    }
}
