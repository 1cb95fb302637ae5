//! `invoicer import FILE`: streams an ERP export to invoice-query and prints the counts.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use invoicer_kit::Config;
use invoicer_proto::invoice_query::v1 as iq;

use crate::cli::ImportArgs;
use crate::client::{Clients, describe};
use crate::output;

/// Chunks stay well below invoice-query's per-message limit.
const CHUNK_BYTES: usize = 1024 * 1024;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    args: ImportArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let document = read_document(&args.file)?;
    let response = upsert(config, endpoint, document)
        .await
        .with_context(|| format!("cannot import {}", source_name(&args.file)))?;
    output::import_result(out, &response, args.json)?;
    let rejected = response.customers.as_ref().map_or(0, |c| c.rejected)
        + response.invoices.as_ref().map_or(0, |c| c.rejected);
    Ok(if rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Names the export in messages: its path, or standard input for `-`.
fn source_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

fn read_document(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buffer)
            .context("cannot read standard input")?;
        return Ok(buffer);
    }
    std::fs::read(path).with_context(|| format!("cannot read export file {}", path.display()))
}

/// Sends `document` to UpsertInvoices in chunks.
pub(crate) async fn upsert(
    config: &Config,
    endpoint: &str,
    document: Vec<u8>,
) -> anyhow::Result<iq::UpsertInvoicesResponse> {
    let mut clients = Clients::new(config, endpoint)?;
    let chunks: Vec<iq::UpsertInvoicesRequest> = document
        .chunks(CHUNK_BYTES)
        .map(|chunk| iq::UpsertInvoicesRequest {
            chunk: chunk.to_vec(),
        })
        .collect();
    let response = clients
        .invoices
        .upsert_invoices(tokio_stream::iter(chunks))
        .await
        .map_err(|s| describe(endpoint, s))?;
    Ok(response.into_inner())
}
