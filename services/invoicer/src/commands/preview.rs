//! `invoicer preview NUMBER`: writes the PDF without sending it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use invoicer_kit::Config;
use invoicer_proto::orchestrator::v1 as pb;

use crate::cli::PreviewArgs;
use crate::client::{Clients, describe};
use crate::output;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    args: PreviewArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut clients = Clients::new(config, endpoint)?;
    let request = pb::PreviewInvoiceRequest {
        invoice_number: args.number,
        revision: args.revision,
    };
    let preview = clients
        .orchestrator
        .preview_invoice(request)
        .await
        .map_err(|s| describe(endpoint, s))?
        .into_inner();
    let path = args
        .output
        .unwrap_or_else(|| PathBuf::from(&preview.file_name));
    std::fs::write(&path, &preview.pdf)
        .with_context(|| format!("cannot write preview to {}", path.display()))?;
    output::preview(out, &preview, &path)?;
    Ok(ExitCode::SUCCESS)
}
