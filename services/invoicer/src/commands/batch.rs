//! `invoicer batch run|status|list`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use invoicer_kit::Config;
use invoicer_kit::GrpcChannel;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;

use crate::cli::{BatchCommand, BatchListArgs, BatchRunArgs, BatchStatusArgs};
use crate::client::{Clients, describe};
use crate::output;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    command: BatchCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let clients = Clients::new(config, endpoint)?;
    match command {
        BatchCommand::Run(args) => run_batch(clients, args, out).await,
        BatchCommand::Status(args) => status(clients, args, out).await,
        BatchCommand::List(args) => list(clients, args, out).await,
    }
}

async fn run_batch(
    mut clients: Clients,
    args: BatchRunArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let request = pb::RunBatchRequest {
        cutoff: args.cutoff.unwrap_or_default(),
        lookback: args.lookback.unwrap_or_default(),
        dry_run: args.dry_run,
        business_date: args.business_date.unwrap_or_default(),
    };
    // The bar goes to stderr, so it never mixes with the table or the JSON lines on stdout.
    let progress = (!args.dry_run && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(clients.orchestrator.clone())));
    let response = clients.orchestrator.run_batch(request).await;
    if let Some(task) = progress {
        task.abort();
        let _ = task.await;
    }
    let response = response.map_err(|s| describe(&clients.endpoint, s))?;
    let response = response.into_inner();
    let batch = response.batch.unwrap_or_default();
    output::batch_run_start(out, &batch, response.replayed, args.json)?;
    output::deliveries(out, &batch.deliveries, args.json)?;
    // The response contains one page of the deliveries that need attention, so the rest are
    // read with GetBatch.
    let mut page_token = response.next_page_token;
    while !page_token.is_empty() {
        let request = pb::GetBatchRequest {
            id: batch.id.clone(),
            page_size: 0,
            page_token,
            attention_only: true,
        };
        let (page, next) = batch_page(&mut clients, request).await?;
        output::deliveries(out, &page.deliveries, args.json)?;
        page_token = next;
    }
    output::batch_run_end(out, &batch, response.replayed, args.json)?;
    Ok(batch_exit_code(&batch, response.replayed))
}

/// Reads one page of a batch's deliveries and returns it with the next page's token.
async fn batch_page(
    clients: &mut Clients,
    request: pb::GetBatchRequest,
) -> anyhow::Result<(pb::Batch, String)> {
    let response = clients
        .orchestrator
        .get_batch(request)
        .await
        .map_err(|s| describe(&clients.endpoint, s))?
        .into_inner();
    Ok((response.batch.unwrap_or_default(), response.next_page_token))
}

/// Finds the batch this command started, once the server has opened it, and draws its
/// progress until the command ends.
async fn show_progress(mut client: OrchestratorServiceClient<GrpcChannel>) {
    let bar = ClearOnDrop(indicatif::ProgressBar::new(0));
    bar.0.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} invoices  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let running = i32::from(pb::BatchStatus::Running);
    let batch_id = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let request = pb::ListBatchesRequest {
            page_size: 1,
            page_token: String::new(),
        };
        let Ok(response) = client.list_batches(request).await else {
            continue;
        };
        if let Some(batch) = response
            .into_inner()
            .batches
            .into_iter()
            .find(|b| b.status == running)
        {
            break batch.id;
        }
    };
    let request = pb::WatchBatchRequest { batch_id };
    let Ok(response) = client.watch_batch(request).await else {
        return;
    };
    let mut stream = response.into_inner();
    while let Ok(Some(event)) = stream.message().await {
        let counts = event.counts.unwrap_or_default();
        bar.0.set_length(u64::from(event.total));
        bar.0.set_position(u64::from(event.done));
        bar.0.set_message(format!(
            "sent {} skipped {} failed {} deferred {} unknown {}",
            counts.sent, counts.skipped, counts.failed, counts.deferred, counts.unknown
        ));
    }
}

/// Removes the bar from the terminal however the task ends, also when it is aborted.
struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Returns 1 when the batch failed or left an invoice that needs a person, so that a script or
/// a cron job running the batch notices. Such an invoice is `failed` (no retry comes) or
/// `unknown` (maybe delivered, never sent again by itself). Skipped and deferred invoices are
/// listed with their reasons but give 0, because a skip is the notifier's choice and a deferred
/// invoice is tried again by itself. A replay of a scheduled batch that ran before gives 1 only
/// when that batch failed, because a resend may have sent its failed invoices since.
fn batch_exit_code(batch: &pb::Batch, replayed: bool) -> ExitCode {
    let counts = batch.counts.unwrap_or_default();
    let needs_person = !replayed && counts.failed + counts.unknown > 0;
    if batch.status == i32::from(pb::BatchStatus::Failed) || needs_person {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn status(
    mut clients: Clients,
    args: BatchStatusArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    // Pages are printed as they arrive, so a batch of any size is never held whole.
    let mut page_token = String::new();
    loop {
        let request = pb::GetBatchRequest {
            id: args.id.clone(),
            page_size: 0,
            page_token,
            attention_only: args.attention_only,
        };
        let (batch, next) = batch_page(&mut clients, request).await?;
        output::deliveries(out, &batch.deliveries, args.json)?;
        if next.is_empty() {
            output::batch_totals(out, &batch, args.json)?;
            return Ok(ExitCode::SUCCESS);
        }
        page_token = next;
    }
}

async fn list(
    mut clients: Clients,
    args: BatchListArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let response = clients
        .orchestrator
        .list_batches(pb::ListBatchesRequest {
            page_size: args.limit,
            page_token: String::new(),
        })
        .await
        .map_err(|s| describe(&clients.endpoint, s))?;
    output::batch_list(out, &response.into_inner().batches, args.json)?;
    Ok(ExitCode::SUCCESS)
}
