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
    // The server reads an empty id as none and makes a new one, so a script whose id
    // variable was unset would send again on every run.
    if args
        .request_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        anyhow::bail!(
            "--request-id is empty; give the id of this request, or leave the option out to have one made"
        );
    }
    let mut clients = Clients::new(config, endpoint)?;
    let actor = super::actor(args.actor);
    // An id of the CLI's own when none is given: the server goes on with a resend whose
    // caller timed out, so the error names the id that gets its result without a second send.
    let request_id = args
        .request_id
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let request = pb::ResendInvoiceRequest {
        invoice_number: args.number,
        revision: args.revision,
        to: args.to,
        cc: args.cc,
        bcc: args.bcc,
        reason: args.reason,
        request_id: request_id.clone(),
        actor,
    };
    let response = clients
        .orchestrator
        .resend_invoice(request)
        .await
        .map_err(|status| resend_error(endpoint, status, &request_id))?
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

/// Describes a failed resend. Unless the server rejected the request, the resend may still go
/// out, so the message names the command that gets its result without sending it twice.
fn resend_error(endpoint: &str, status: tonic::Status, request_id: &str) -> anyhow::Error {
    use tonic::Code;

    let rejected = matches!(
        status.code(),
        Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
    );
    let error = describe(endpoint, status);
    if rejected {
        return error;
    }
    anyhow::anyhow!(
        "{error:#}; the resend may still go out, so run the command again with --request-id {request_id} to get its result without sending it twice"
    )
}
