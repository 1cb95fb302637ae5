//! mail-delivery: sends one email message per request over SMTP, with a result for every
//! recipient, or writes it to the file outbox when no SMTP server is configured. It keeps no
//! state apart from the outbox. This is the only crate that uses lettre.
//!
//! Other crates call it over gRPC (`MailDeliveryService`, served by [`MailDeliveryPlugin`]);
//! tests and tools can also call [`Mailer::send`] directly.

mod api;
mod email;
mod error;
mod mailer;
mod message;
mod outbox;
mod relay;
mod smtp;
mod smtp_url;
mod validate;

use invoicer_kit::{BoxError, Config, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

pub use email::{
    Attachment, DeliveryReport, Mailbox, Outcome, OutgoingEmail, RecipientReport, Role, SmtpStage,
};
pub use error::MailDeliveryError;
pub use mailer::Mailer;

/// Largest `SendEmail` request accepted, in bytes. tonic's default of 4 MiB would reject an
/// invoice with a few MiB of attachments; 32 MiB leaves room for the 25 MB messages that
/// common mail providers accept.
const MAX_REQUEST_BYTES: usize = 32 << 20;

/// The mail-delivery service for the `invoicer` host, configured by the `mail` section.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailDeliveryPlugin;

#[tonic::async_trait]
impl ServicePlugin for MailDeliveryPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::MailDelivery
    }

    async fn start(
        &self,
        context: ServiceContext,
        routes: &mut RoutesBuilder,
    ) -> Result<(), BoxError> {
        let mailer = Mailer::from_config(&context.config)?;
        mailer.log_start();
        api::add_service(routes, mailer);
        Ok(())
    }

    fn check_config(&self, config: &Config) -> Result<(), BoxError> {
        Ok(Mailer::check_config(config)?)
    }
}
