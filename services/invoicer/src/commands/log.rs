//! `invoicer log` and `invoicer verify-log`.

use std::io::Write;
use std::process::ExitCode;

use invoicer_kit::Config;
use invoicer_proto::audit_log::v1 as audit;

use crate::cli::LogArgs;
use crate::client::{Clients, describe};
use crate::output;

const PAGE_SIZE: u32 = 500;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    args: LogArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut clients = Clients::new(config, endpoint)?;
    let filter = audit::ListEntriesRequest {
        invoice_number: args.invoice.unwrap_or_default(),
        customer_code: args.customer.unwrap_or_default(),
        // The address of `Jane <jane@x.example>`, the form resend and the log's output use.
        recipient: args
            .recipient
            .map(|value| {
                invoicer_domain::email::Mailbox::parse(&value)
                    .map(|mailbox| mailbox.address)
                    .unwrap_or(value)
            })
            .unwrap_or_default(),
        since: args.since.unwrap_or_default(),
        until: args.until.unwrap_or_default(),
        batch_id: args.batch.unwrap_or_default(),
        page_size: PAGE_SIZE,
        page_token: String::new(),
    };
    let entries = fetch_entries(&mut clients, filter, args.limit).await?;
    output::log_entries(out, &entries, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads every page of the log matching `filter`, up to `limit` entries.
pub(crate) async fn fetch_entries(
    clients: &mut Clients,
    mut filter: audit::ListEntriesRequest,
    limit: Option<usize>,
) -> anyhow::Result<Vec<audit::Entry>> {
    let mut entries = Vec::new();
    loop {
        let page = clients
            .audit
            .list_entries(filter.clone())
            .await
            .map_err(|s| describe(&clients.endpoint, s))?
            .into_inner();
        entries.extend(page.entries);
        if limit.is_some_and(|limit| entries.len() >= limit) {
            entries.truncate(limit.unwrap_or(usize::MAX));
            return Ok(entries);
        }
        if page.next_page_token.is_empty() {
            return Ok(entries);
        }
        filter.page_token = page.next_page_token;
    }
}

pub(crate) async fn verify(
    config: &Config,
    endpoint: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut clients = Clients::new(config, endpoint)?;
    let result = clients
        .audit
        .verify_log(audit::VerifyLogRequest {})
        .await
        .map_err(|s| describe(endpoint, s))?
        .into_inner();
    output::verify(out, &result)?;
    Ok(if result.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
