//! The gRPC face of mail-delivery: converts `SendEmail` requests to [`OutgoingEmail`],
//! reports to responses, and errors to `tonic::Status`.

use std::sync::Arc;

use invoicer_kit::status;
use invoicer_proto::mail_delivery::v1 as proto;
use invoicer_proto::mail_delivery::v1::mail_delivery_service_server::MailDeliveryService;
use invoicer_proto::types::v1 as types;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::email::{
    Attachment, DeliveryReport, Mailbox, Outcome, OutgoingEmail, RecipientReport, Role,
};
use crate::error::MailDeliveryError;
use crate::mailer::Mailer;

pub(crate) struct MailDeliveryApi {
    mailer: Arc<Mailer>,
}

/// Adds the gRPC server to `routes`; requests carry whole PDFs, so their size limit is raised.
pub(crate) fn add_service(routes: &mut tonic::service::RoutesBuilder, mailer: Mailer) {
    let server = invoicer_proto::mail_delivery::v1::mail_delivery_service_server::MailDeliveryServiceServer::new(
        MailDeliveryApi::new(mailer),
    )
    .max_decoding_message_size(crate::MAX_REQUEST_BYTES);
    routes.add_service(server);
}

impl MailDeliveryApi {
    pub(crate) fn new(mailer: Mailer) -> MailDeliveryApi {
        MailDeliveryApi {
            mailer: Arc::new(mailer),
        }
    }
}

#[tonic::async_trait]
impl MailDeliveryService for MailDeliveryApi {
    async fn send_email(
        &self,
        request: Request<proto::SendEmailRequest>,
    ) -> Result<Response<proto::SendEmailResponse>, Status> {
        let request = request.into_inner();
        crate::validate::send_email(&request)?;
        let email = outgoing_email(request);
        let span = tracing::info_span!(
            "email.send",
            message_id = email.message_id.as_deref().unwrap_or_default(),
            delivery_key = email.delivery_key.as_deref().unwrap_or_default(),
        );
        async move {
            let report = self.mailer.send(email).await.map_err(send_status)?;
            Ok(Response::new(send_response(report)))
        }
        .instrument(span)
        .await
    }
}

/// Maps every error of a send to its gRPC status.
fn send_status(error: MailDeliveryError) -> Status {
    match error {
        MailDeliveryError::InvalidRequest { field, message } => {
            tracing::warn!(%field, %message, "send request rejected");
            status::invalid_argument(&field, message)
        }
        MailDeliveryError::Build(_)
        | MailDeliveryError::InvalidSmtpUrl { .. }
        | MailDeliveryError::CaFile { .. }
        | MailDeliveryError::InvalidConfig { .. }
        | MailDeliveryError::OutboxFolder { .. } => {
            tracing::error!(error = %error, "cannot send the email");
            status::internal("building the email")
        }
    }
}

fn outgoing_email(request: proto::SendEmailRequest) -> OutgoingEmail {
    OutgoingEmail {
        from: request.from.map(mailbox),
        to: request.to.into_iter().map(mailbox).collect(),
        cc: request.cc.into_iter().map(mailbox).collect(),
        bcc: request.bcc.into_iter().map(mailbox).collect(),
        reply_to: request.reply_to.map(mailbox),
        subject: request.subject,
        text_body: request.text_body,
        html_body: non_empty(request.html_body),
        attachments: request.attachments.into_iter().map(attachment).collect(),
        message_id: non_empty(request.message_id),
        delivery_key: non_empty(request.delivery_key),
    }
}

fn mailbox(mailbox: types::Mailbox) -> Mailbox {
    Mailbox {
        name: mailbox.name,
        address: mailbox.address,
    }
}

fn attachment(attachment: proto::Attachment) -> Attachment {
    Attachment {
        file_name: attachment.file_name,
        content_type: attachment.content_type,
        content: attachment.content,
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn send_response(report: DeliveryReport) -> proto::SendEmailResponse {
    proto::SendEmailResponse {
        outcome: outcome(report.outcome) as i32,
        recipients: report
            .recipients
            .into_iter()
            .map(recipient_result)
            .collect(),
        server_reply: report.server_reply,
        message_id: report.message_id,
        destination: report.destination,
        error: report.error,
        message_size: report.message_size,
    }
}

fn outcome(outcome: Outcome) -> types::DeliveryOutcome {
    match outcome {
        Outcome::Sent => types::DeliveryOutcome::Sent,
        Outcome::PartiallySent => types::DeliveryOutcome::PartiallySent,
        Outcome::Deferred => types::DeliveryOutcome::Deferred,
        Outcome::Failed => types::DeliveryOutcome::Failed,
        Outcome::Unknown => types::DeliveryOutcome::Unknown,
    }
}

fn recipient_result(report: RecipientReport) -> types::RecipientResult {
    let role = match report.role {
        Role::To => types::RecipientRole::To,
        Role::Cc => types::RecipientRole::Cc,
        Role::Bcc => types::RecipientRole::Bcc,
    };
    types::RecipientResult {
        address: report.address,
        role: role as i32,
        accepted: report.accepted,
        reply_code: u32::from(report.reply_code),
        reply_text: report.reply_text,
    }
}
