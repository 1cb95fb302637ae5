//! `invoicer batch run|status|list`.

use std::io::Write;
use std::process::ExitCode;

use invoicer_kit::Config;
use invoicer_proto::orchestrator::v1 as pb;

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
    let response = clients
        .orchestrator
        .run_batch(request)
        .await
        .map_err(|s| describe(&clients.endpoint, s))?;
    let batch = response.into_inner().batch.unwrap_or_default();
    output::batch(out, &batch, args.json)?;
    Ok(batch_exit_code(&batch))
}

/// Non-zero when the batch itself failed; invoices that were not sent are listed, not errors.
fn batch_exit_code(batch: &pb::Batch) -> ExitCode {
    if batch.status == i32::from(pb::BatchStatus::Failed) {
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
    let response = clients
        .orchestrator
        .get_batch(pb::GetBatchRequest { id: args.id })
        .await
        .map_err(|s| describe(&clients.endpoint, s))?;
    let batch = response.into_inner().batch.unwrap_or_default();
    output::batch(out, &batch, args.json)?;
    Ok(ExitCode::SUCCESS)
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
