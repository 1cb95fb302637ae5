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
    Attachment, DeliveryReport, Mailbox, Outcome, OutgoingEmail, RecipientReport, Role, SmtpStage,
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
        // No Message-ID or delivery key here: both can contain an email address, and span
        // attributes must not.
        let span = tracing::info_span!("email.send");
        async move {
            let started = std::time::Instant::now();
            let report = self.mailer.send(email).await.map_err(send_status)?;
            record_metrics(&report, started.elapsed());
            Ok(Response::new(send_response(report)))
        }
        .instrument(span)
        .await
    }
}

/// Counts the message by outcome, its SMTP replies by class, and the send time.
fn record_metrics(report: &DeliveryReport, elapsed: std::time::Duration) {
    let metrics = invoicer_telemetry::metrics();
    metrics.record_message(report.outcome.as_str());
    metrics.record_send(elapsed, report.outcome.as_str());
    if !report.destination.starts_with("smtp") {
        return;
    }
    for recipient in report.recipients.iter().filter(|r| r.reply_code != 0) {
        metrics.record_smtp_reply(u32::from(recipient.reply_code));
    }
    let data_end_code = report
        .server_reply
        .get(..3)
        .and_then(|code| code.parse().ok());
    if let Some(code) = data_end_code {
        metrics.record_smtp_reply(code);
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
        | MailDeliveryError::PlaintextNotAllowed { .. }
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
        skip_recipients: request.skip_recipients,
        defer_per_recipient: request.defer_per_recipient,
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
    let settled_recipients = report
        .recipients
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Sent | Outcome::Failed))
        .map(|r| r.address.clone())
        .collect();
    proto::SendEmailResponse {
        outcome: outcome(report.outcome) as i32,
        stage: stage(report.stage) as i32,
        last_reply: report.last_reply,
        settled_recipients,
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
        // The shared enum has no value for it: the recipient results and
        // settled_recipients show who already got the message.
        Outcome::PartiallyDeferred | Outcome::Deferred => types::DeliveryOutcome::Deferred,
        Outcome::Failed => types::DeliveryOutcome::Failed,
        Outcome::Unknown => types::DeliveryOutcome::Unknown,
    }
}

fn stage(stage: SmtpStage) -> proto::SmtpStage {
    match stage {
        SmtpStage::NoSession => proto::SmtpStage::Unspecified,
        SmtpStage::Connect => proto::SmtpStage::Connect,
        SmtpStage::Greeting => proto::SmtpStage::Greeting,
        SmtpStage::Ehlo => proto::SmtpStage::Ehlo,
        SmtpStage::StartTls => proto::SmtpStage::Starttls,
        SmtpStage::Auth => proto::SmtpStage::Auth,
        SmtpStage::MailFrom => proto::SmtpStage::Mail,
        SmtpStage::RcptTo => proto::SmtpStage::Rcpt,
        SmtpStage::Data => proto::SmtpStage::Data,
        SmtpStage::DataEnd => proto::SmtpStage::EndOfData,
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
