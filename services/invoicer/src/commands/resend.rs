//! `invoicer resend NUMBER`.

use std::io::Write;
use std::process::ExitCode;

use invoicer_kit::Config;
use invoicer_proto::orchestrator::v1 as pb;

use crate::cli::ResendArgs;
use crate::client::{Clients, describe};
use crate::output;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    args: ResendArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut clients = Clients::new(config, endpoint)?;
    let actor = args
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let request = pb::ResendInvoiceRequest {
        invoice_number: args.number,
        revision: args.revision,
        to: args.to,
        cc: args.cc,
        bcc: args.bcc,
        reason: args.reason,
        request_id: args.request_id.unwrap_or_default(),
        actor,
    };
    let response = clients
        .orchestrator
        .resend_invoice(request)
        .await
        .map_err(|s| describe(endpoint, s))?
        .into_inner();
    let delivery = response.delivery.unwrap_or_default();
    output::resend(out, &delivery, response.replayed, args.json)?;
    let sent = delivery.state == i32::from(pb::DeliveryState::Sent);
    Ok(if sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
