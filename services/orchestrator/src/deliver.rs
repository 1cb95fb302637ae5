//! Delivering one claimed delivery: resolve recipients, freeze the PDF, persist the attempt,
//! submit it to mail-delivery, record the outcome and write the email log.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::Instrument;

use crate::engine::Engine;
use crate::error::{OrchestratorError, catch_panic};
use crate::log::LogRecord;
use crate::message::ComposedMessage;
use crate::model::{Delivery, DeliveryState, Document, Purpose};
use crate::notifier::EffectiveNotifier;
use crate::outgoing::Outgoing;
use crate::retry::{RetryDecision, random_jitter};
use crate::store::StoreError;
use crate::upstream::{Invoice, OutgoingEmail, SendResult, UpstreamError};

/// Waits before each new try of a failed outcome write after a send, about 4 s in all: enough
/// for the pool to replace a dropped connection. A longer outage still ends the attempt with
/// the delivery `submitting`.
pub(crate) const OUTCOME_WRITE_RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

// The pool hands out a connection used within `DATABASE_PING_AFTER_IDLE` without a ping, so a
// connection cut by a restart fails once. By the last try every cut connection has been idle
// longer than that and is pinged and replaced.
const _: () = assert!(
    OUTCOME_WRITE_RETRIES[0].as_millis() + OUTCOME_WRITE_RETRIES[1].as_millis()
        > invoicer_kit::config::DATABASE_PING_AFTER_IDLE.as_millis()
);

/// Runs the store write `write` and, when it fails with anything but a lost lease, runs it
/// again after each of `OUTCOME_WRITE_RETRIES`. Each retry is logged with `operation` and `id`.
pub(crate) async fn with_write_retries<F, Fut>(
    operation: &str,
    id: &str,
    mut write: F,
) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut waits = OUTCOME_WRITE_RETRIES.iter();
    loop {
        let error = match write().await {
            Ok(()) => return Ok(()),
            Err(error @ StoreError::LeaseLost { .. }) => return Err(error),
            Err(error) => error,
        };
        let Some(wait) = waits.next() else {
            return Err(error);
        };
        tracing::warn!(id, %error, retry_in = ?wait, "{operation} failed; trying again");
        tokio::time::sleep(*wait).await;
    }
}

/// The result of `Engine::write_log` for one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogWrite {
    /// Appended, and the delivery marked as logged.
    Done,
    /// audit-log was unavailable or timed out, so an append right after this one would most
    /// likely fail too.
    Unreachable,
    /// audit-log rejected the append as invalid, so the same append fails again.
    Rejected,
    /// The append failed otherwise, or audit-log took it but marking the delivery as logged
    /// failed.
    Failed,
}

/// The PDF a delivery attaches.
#[derive(Debug)]
enum Pdf {
    /// A PDF frozen for the revision before this delivery looked it up.
    Frozen(Document),
    /// A PDF rendered by this delivery, not yet stored.
    Rendered(Document),
}

impl Pdf {
    fn document(&self) -> &Document {
        match self {
            Pdf::Frozen(document) | Pdf::Rendered(document) => document,
        }
    }
}

/// Facts the batch learned about a delivery while planning it, so that the delivery does not
/// read them again. With `Planned::default()` the delivery reads everything itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planned {
    pub pdf: FrozenPdf,
    /// The customer's notifier as planning read it, which the delivery then uses: a notifier
    /// changed during a batch applies to the chunks planned after the change.
    pub notifier: Option<Arc<EffectiveNotifier>>,
    /// When planning looked after its insert, the revision's batch deliveries were all ones it
    /// inserted under `notifier`'s split (or its per-invoice fallback), so none of them bound
    /// the revision to another split. Only set with `notifier`.
    pub new_revision: bool,
}

/// The caller's information on the frozen PDF of a delivery's invoice revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FrozenPdf {
    /// No information: the delivery looks the PDF up before it renders.
    #[default]
    Unknown,
    /// The revision had none when the batch planned this delivery, so the delivery renders
    /// without a lookup.
    NoneAtPlanning,
}

impl Engine {
    /// Takes a delivery this caller claimed (state `pending`) to an end state and returns it:
    /// `deliver_with` with nothing known from planning.
    pub(crate) async fn deliver(&self, delivery: Delivery) -> Result<Delivery, OrchestratorError> {
        self.deliver_with(delivery, Planned::default()).await
    }

    /// Takes a delivery this caller claimed (state `pending`) to an end state and returns it.
    /// Only a storage failure (or a template error) returns an error; every other failure
    /// ends in a state with a reason. Each delivery is the root of its own trace, linked to
    /// the span that started it (the batch, or the resend request).
    pub(crate) async fn deliver_with(
        &self,
        delivery: Delivery,
        planned: Planned,
    ) -> Result<Delivery, OrchestratorError> {
        let _in_flight = self.track(&delivery.id);
        let span = tracing::info_span!(
            parent: None,
            "invoice.deliver",
            invoice.number = %delivery.invoice_number,
            invoice.revision = delivery.invoice_revision,
            delivery.id = %delivery.id,
            delivery.purpose = delivery.purpose.as_str(),
            batch.id = delivery.batch_id.as_deref().unwrap_or(""),
        );
        invoicer_telemetry::link_to_current(&span);
        let started = std::time::Instant::now();
        let delivery_id = delivery.id.clone();
        self.forget_failed_attempt(&delivery_id);
        // A panic ends this attempt as a storage error does: the caller gets the error, and the
        // next retry round settles the delivery.
        let attempt = self.deliver_in_span(delivery, planned).instrument(span);
        let delivered = match catch_panic("delivery attempt", attempt).await {
            Ok(delivered) => delivered,
            // Another replica took the delivery over, so this one has nothing to settle.
            Err(error) if error.is_lease_lost() => return Err(error),
            Err(error) => {
                if let OrchestratorError::Panicked { message, .. } = &error {
                    tracing::error!(%delivery_id, panic = %message, "delivery attempt panicked, so the next retry round settles the delivery");
                }
                // The delivery stays in the state it last stored, leased to this replica, until
                // the retry loop settles it (`settle_stranded`).
                self.failed_attempts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(delivery_id, error.to_string());
                return Err(error);
            }
        };
        invoicer_telemetry::metrics().record_delivery(started.elapsed(), delivered.state.as_str());
        Ok(delivered)
    }

    async fn deliver_in_span(
        &self,
        mut delivery: Delivery,
        planned: Planned,
    ) -> Result<Delivery, OrchestratorError> {
        delivery.trace_id = invoicer_telemetry::current_trace_id();
        delivery.reason.clear();

        let invoice = match self.upstream.get_invoice(&delivery.invoice_number).await {
            Ok(invoice) => invoice,
            Err(error) => {
                return self
                    .end_before_send(delivery, &error, "reading the invoice")
                    .await;
            }
        };
        // A failed call to another service while composing ends the delivery like any other
        // failure before sending, so the batch or retry round goes on with the others.
        let composed = match self.message_for(&mut delivery, &invoice, &planned).await {
            Err(OrchestratorError::Upstream(error)) => {
                return self
                    .end_before_send(delivery, &error, "composing the message")
                    .await;
            }
            other => other?,
        };
        let message = match composed {
            Ok(message) => message,
            Err(reason) if delivery.purpose == Purpose::Batch => {
                return self.skip(delivery, reason).await;
            }
            Err(reason) => return self.fail(delivery, reason).await,
        };

        let found = match self
            .find_or_render(&mut delivery, &invoice, planned.pdf)
            .await
        {
            Err(OrchestratorError::FailedPrecondition(reason)) => {
                return self.fail(delivery, reason).await;
            }
            other => other?,
        };
        let pdf = match found {
            Ok(pdf) => pdf,
            Err(error) => {
                return self
                    .end_before_send(delivery, &error, "rendering the PDF")
                    .await;
            }
        };

        self.submit(delivery, &message, pdf).await
    }

    /// Returns `invoice` with the facts that the frozen PDF of `revision` was rendered with,
    /// when that is an earlier revision than invoice-query's. A resend or preview of such a
    /// revision attaches that PDF, so its email must state the same total and dates.
    pub(crate) async fn invoice_as_sent<'a>(
        &self,
        invoice: &'a Invoice,
        revision: u32,
    ) -> Result<Cow<'a, Invoice>, OrchestratorError> {
        if revision == invoice.revision {
            return Ok(Cow::Borrowed(invoice));
        }
        match self.store.document_facts(&invoice.number, revision).await? {
            Some(Some(facts)) => Ok(Cow::Owned(invoice.with_facts(&facts))),
            Some(None) => {
                tracing::warn!(invoice = %invoice.number, revision, latest = invoice.revision, "revision was frozen before its facts were stored, so the email states the total and dates of the latest revision, which may differ from the PDF");
                Ok(Cow::Borrowed(invoice))
            }
            // The caller rejects a revision without a frozen PDF before it sends anything.
            None => Ok(Cow::Borrowed(invoice)),
        }
    }

    /// Composes the message to send and, for a batch delivery, sets its recipients from the
    /// notifier and the contacts. The inner error is the reason nothing is sent: a batch
    /// delivery is then skipped and a resend fails.
    async fn message_for(
        &self,
        delivery: &mut Delivery,
        invoice: &Invoice,
        planned: &Planned,
    ) -> Result<Result<ComposedMessage, String>, OrchestratorError> {
        let corrected = self
            .store
            .sent_before_revision(&invoice.number, delivery.invoice_revision)
            .await?;
        if delivery.purpose == Purpose::Resend {
            let notifier = self.effective_notifier(&invoice.customer.code).await?;
            let stated = self
                .invoice_as_sent(invoice, delivery.invoice_revision)
                .await?;
            let composed = self.templates.compose(
                &stated,
                &self.config.company.name,
                &self.config.company.email,
                &notifier.templates,
                corrected,
            );
            return Ok(composed.map_err(|error| error.to_string()));
        }
        let Outgoing {
            recipients,
            message,
        } = match self
            .batch_outgoing(delivery, invoice, planned, corrected)
            .await?
        {
            Ok(outgoing) => outgoing,
            Err(reason) => return Ok(Err(reason)),
        };
        for problem in &recipients.problems {
            tracing::warn!(invoice = %invoice.number, customer = %invoice.customer.code, problem = %problem, "recipient left out");
        }
        // Kept as the reason of the delivery, so the batch report lists the addresses left out
        // even when the others received the invoice.
        if !recipients.problems.is_empty() {
            delivery.reason = format!("left out: {}", recipients.problems.join("; "));
        }
        delivery.to = recipients.to;
        delivery.cc = recipients.cc;
        delivery.bcc = recipients.bcc;
        Ok(Ok(message))
    }

    /// Returns the revision's frozen PDF, or renders it on first use, and sets the delivery's
    /// SHA-256 and file name from it. A fresh render is frozen later, in the transaction that
    /// stores the delivery as `submitting` (see `save_with_pdf`).
    async fn find_or_render(
        &self,
        delivery: &mut Delivery,
        invoice: &Invoice,
        pdf: FrozenPdf,
    ) -> Result<Result<Pdf, UpstreamError>, OrchestratorError> {
        let stored = match pdf {
            FrozenPdf::Unknown => {
                self.store
                    .document(&delivery.invoice_number, delivery.invoice_revision)
                    .await?
            }
            FrozenPdf::NoneAtPlanning => None,
        };
        let pdf = match stored {
            Some(document) => Pdf::Frozen(document),
            None => {
                if invoice.revision != delivery.invoice_revision {
                    return Err(OrchestratorError::FailedPrecondition(format!(
                        "invoice {} revision {} was never rendered and invoice-query now has revision {}; send the latest revision",
                        delivery.invoice_number, delivery.invoice_revision, invoice.revision
                    )));
                }
                match self.upstream.render(invoice, &self.config.company).await {
                    Ok(rendered) => Pdf::Rendered(rendered),
                    Err(error) => return Ok(Err(error)),
                }
            }
        };
        let document = pdf.document();
        delivery.pdf_sha256 = document.sha256.clone();
        delivery.attachment_name = document.file_name.clone();
        Ok(Ok(pdf))
    }

    /// Stores the delivery and returns the PDF to attach. A fresh render is frozen in the same
    /// transaction, unless another replica froze one for the revision first: then the delivery
    /// takes that one's SHA-256 and file name, and that one is returned.
    async fn save_with_pdf(
        &self,
        delivery: &mut Delivery,
        pdf: Pdf,
    ) -> Result<Document, OrchestratorError> {
        match pdf {
            Pdf::Frozen(document) => {
                self.store.save_delivery(delivery).await?;
                Ok(document)
            }
            Pdf::Rendered(document) => Ok(self.store.freeze_rendered(document, delivery).await?),
        }
    }

    async fn submit(
        &self,
        mut delivery: Delivery,
        message: &ComposedMessage,
        pdf: Pdf,
    ) -> Result<Delivery, OrchestratorError> {
        let left_out = std::mem::take(&mut delivery.reason);
        delivery.subject = message.subject.clone();
        // One Message-ID per delivery: a retry to the recipients still missing it, and a
        // resend of an `unknown` delivery, carry the ID the first attempt used.
        if delivery.message_id.is_empty() {
            delivery.message_id = self.message_id(&delivery);
        }
        let envelope = delivery.remaining_recipients();
        if envelope.as_ref().is_some_and(Vec::is_empty) {
            // Every recipient accepted or rejected it for good in earlier attempts.
            delivery.reason = left_out;
            self.apply_send_result(&mut delivery, SendResult::Sent);
            self.save_with_pdf(&mut delivery, pdf).await?;
            return Ok(delivery);
        }
        delivery.attempts += 1;
        // The new attempt's outcome is not in the email log yet, even when the last one's is.
        delivery.logged = false;
        delivery.state = DeliveryState::Submitting;
        // Persisted before any byte goes to the mail server: a crash from here on leaves the
        // delivery `submitting`, which start-up turns into `unknown`, never into a resend.
        let document = self.save_with_pdf(&mut delivery, pdf).await?;

        let email = OutgoingEmail {
            from: &self.settings.from,
            reply_to: self.settings.reply_to.as_ref(),
            to: &delivery.to,
            cc: &delivery.cc,
            bcc: &delivery.bcc,
            subject: &message.subject,
            text_body: &message.text_body,
            html_body: &message.html_body,
            attachment_name: &document.file_name,
            attachment: &document.content,
            message_id: &delivery.message_id,
            delivery_key: &delivery.key,
            envelope: envelope.as_deref(),
        };
        let result = match self.upstream.send(&email).await {
            Ok(outcome) => {
                delivery.merge_recipients(outcome.recipients);
                delivery.server_reply = outcome.server_reply;
                delivery.destination = outcome.destination;
                delivery.reason = outcome.error;
                outcome.result
            }
            Err(error) => {
                delivery.reason = error.to_string();
                send_error_result(&error)
            }
        };
        self.apply_send_result(&mut delivery, result);
        if !left_out.is_empty() && delivery.reason.is_empty() {
            delivery.reason = left_out;
        } else if !left_out.is_empty() {
            delivery.reason = format!("{}; {left_out}", delivery.reason);
        }
        self.save_outcome(&delivery).await?;
        self.wake_retry_loop(&delivery);
        tracing::info!(
            invoice = %delivery.invoice_number,
            delivery_id = %delivery.id,
            message_id = %delivery.message_id,
            state = delivery.state.as_str(),
            attempt = delivery.attempts,
            reason = %delivery.reason,
            "delivery attempt ended"
        );
        if delivery.state == DeliveryState::Unknown {
            tracing::warn!(
                invoice = %delivery.invoice_number,
                delivery_id = %delivery.id,
                message_id = %delivery.message_id,
                "delivery outcome unknown: the mail server may have accepted the message, so it is never sent again automatically, only by an explicit resend"
            );
        }
        // A deferral that used up the retries failed the delivery, or ended it sent to the
        // recipients that accepted earlier attempts, To contacts among them, and the email
        // log records the attempt so.
        let logged = match (result, delivery.state) {
            (SendResult::Deferred, DeliveryState::Failed) => SendResult::Failed,
            (SendResult::Deferred, DeliveryState::Sent) => SendResult::PartiallySent,
            _ => result,
        };
        self.write_log(&delivery, logged, document.content.len() as u64, Utc::now())
            .await;
        Ok(delivery)
    }

    pub(crate) fn apply_send_result(&self, delivery: &mut Delivery, result: SendResult) {
        delivery.next_attempt_at = None;
        delivery.state = match result {
            SendResult::Sent | SendResult::PartiallySent => DeliveryState::Sent,
            SendResult::Failed => DeliveryState::Failed,
            SendResult::Unknown => DeliveryState::Unknown,
            SendResult::Deferred => self.schedule_retry(delivery),
        };
        if delivery.state != DeliveryState::Deferred {
            delivery.retry_since = None;
        }
        if result == SendResult::PartiallySent {
            let rejected: Vec<String> = delivery
                .recipients
                .iter()
                .filter(|r| !r.accepted)
                .map(recipient_reply)
                .collect();
            delivery.reason = format!("rejected recipients: {}", rejected.join(", "));
        }
    }

    /// Chooses the next attempt of a deferred delivery under the retry policy. Once its
    /// retries are over it fails with the last reply, or, when a To recipient accepted an
    /// earlier attempt, ends sent with the others named.
    fn schedule_retry(&self, delivery: &mut Delivery) -> DeliveryState {
        let now = Utc::now();
        let since = *delivery.retry_since.get_or_insert(now);
        let last_reply = if delivery.server_reply.is_empty() {
            delivery.reason.clone()
        } else {
            delivery.server_reply.clone()
        };
        let decision =
            self.settings
                .retry
                .after_deferral(delivery.attempts, since, now, random_jitter());
        match decision {
            RetryDecision::RetryAt(at) => {
                delivery.next_attempt_at = Some(at);
                tracing::info!(
                    invoice = %delivery.invoice_number,
                    delivery_id = %delivery.id,
                    attempt = delivery.attempts,
                    next_attempt_at = %at,
                    last_reply = %last_reply,
                    "delivery deferred; retrying later"
                );
                DeliveryState::Deferred
            }
            RetryDecision::GiveUp(why) if delivery.accepted.is_empty() => {
                delivery.reason = format!("{why}; last reply: {last_reply}");
                tracing::warn!(
                    invoice = %delivery.invoice_number,
                    delivery_id = %delivery.id,
                    attempt = delivery.attempts,
                    retrying_since = %since,
                    last_reply = %last_reply,
                    "deferred delivery failed: no retries left"
                );
                DeliveryState::Failed
            }
            // Some recipients got the message in an earlier attempt. When a To contact is
            // among them, the delivery ends sent to them, as when the others reject it for
            // good, so that nothing suggests sending it to everyone again. When only Cc or
            // Bcc recipients have it, such as the company's archive, the customer's billing
            // contacts never got the invoice, so it fails, and the reason names who has it.
            RetryDecision::GiveUp(why) => {
                let missing: Vec<String> = delivery
                    .recipients
                    .iter()
                    .filter(|r| {
                        !r.accepted && !delivery.accepted.contains(&r.address.to_lowercase())
                    })
                    .map(recipient_reply)
                    .collect();
                let to_got_it = delivery
                    .to
                    .iter()
                    .any(|to| delivery.accepted.contains(&to.address.to_lowercase()));
                let state = if to_got_it {
                    delivery.reason = format!(
                        "{why}; not delivered to {}; the other recipients got it in an earlier \
                         attempt; last reply: {last_reply}",
                        missing.join(", ")
                    );
                    DeliveryState::Sent
                } else {
                    delivery.reason = format!(
                        "{why}; not delivered to {}; only {} got it, in an earlier attempt, so \
                         resend it to the others with `--to`; last reply: {last_reply}",
                        missing.join(", "),
                        delivery.accepted.join(", ")
                    );
                    DeliveryState::Failed
                };
                tracing::warn!(
                    invoice = %delivery.invoice_number,
                    delivery_id = %delivery.id,
                    attempt = delivery.attempts,
                    retrying_since = %since,
                    last_reply = %last_reply,
                    state = state.as_str(),
                    "deferred delivery reached some recipients only: no retries left for the others"
                );
                state
            }
        }
    }

    /// Stores the outcome of an attempt that went to the mail server. A failed write is tried
    /// again after each of `OUTCOME_WRITE_RETRIES`, because once the attempt gives up, the
    /// delivery stays `submitting` and is settled as `unknown` although its outcome was known.
    async fn save_outcome(&self, delivery: &Delivery) -> Result<(), OrchestratorError> {
        let operation = format!(
            "storing the {} outcome of invoice {}",
            delivery.state.as_str(),
            delivery.invoice_number
        );
        with_write_retries(&operation, &delivery.id, || {
            self.store.save_delivery(delivery)
        })
        .await?;
        Ok(())
    }

    /// Wakes the retry loop after a deferral was stored, so it sleeps until the new retry
    /// time if that comes first.
    fn wake_retry_loop(&self, delivery: &Delivery) {
        if delivery.state == DeliveryState::Deferred {
            self.retry_wakeup.notify_one();
        }
    }

    /// Appends the attempt's outcome to the email log and marks the delivery as logged. A
    /// failure leaves `logged` false, and the retry loop or the next batch appends it later.
    pub(crate) async fn write_log(
        &self,
        delivery: &Delivery,
        result: SendResult,
        attachment_size: u64,
        attempted_at: chrono::DateTime<Utc>,
    ) -> LogWrite {
        let record = LogRecord {
            delivery,
            from: &self.settings.from,
            outcome: result,
            attachment_size,
            attempted_at,
        };
        match self.upstream.append_log(&record).await {
            Ok(()) => match self
                .store
                .mark_logged(&delivery.id, delivery.attempts)
                .await
            {
                Ok(()) => {
                    self.log_backoff.appended(&delivery.id);
                    LogWrite::Done
                }
                Err(error) => {
                    tracing::error!(delivery_id = %delivery.id, %error, "cannot mark delivery as logged");
                    LogWrite::Failed
                }
            },
            Err(error) => {
                tracing::warn!(invoice = %delivery.invoice_number, delivery_id = %delivery.id, %error, "email log append failed; retrying later");
                match error.code {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        LogWrite::Unreachable
                    }
                    tonic::Code::InvalidArgument
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::AlreadyExists
                    | tonic::Code::OutOfRange => LogWrite::Rejected,
                    _ => LogWrite::Failed,
                }
            }
        }
    }

    /// A failure before anything went to the mail server: deferred when it may pass, failed
    /// when it will not.
    async fn end_before_send(
        &self,
        mut delivery: Delivery,
        error: &UpstreamError,
        step: &str,
    ) -> Result<Delivery, OrchestratorError> {
        delivery.reason = format!("{step} failed: {error}");
        let permanent = error.is_not_found()
            || matches!(
                error.code,
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
            );
        if permanent {
            delivery.state = DeliveryState::Failed;
            delivery.next_attempt_at = None;
            delivery.retry_since = None;
        } else {
            delivery.attempts += 1;
            delivery.logged = false;
            self.apply_send_result(&mut delivery, SendResult::Deferred);
        }
        tracing::warn!(invoice = %delivery.invoice_number, delivery_id = %delivery.id, state = delivery.state.as_str(), reason = %delivery.reason, "delivery stopped before sending");
        self.store.save_delivery(&delivery).await?;
        self.wake_retry_loop(&delivery);
        Ok(delivery)
    }

    /// Ends a delivery that cannot be sent as requested, such as a resend whose template
    /// fails, as failed. Nothing retries it on its own.
    async fn fail(
        &self,
        mut delivery: Delivery,
        reason: String,
    ) -> Result<Delivery, OrchestratorError> {
        tracing::warn!(invoice = %delivery.invoice_number, delivery_id = %delivery.id, reason = %reason, "delivery failed before sending");
        delivery.state = DeliveryState::Failed;
        delivery.reason = reason;
        delivery.next_attempt_at = None;
        delivery.retry_since = None;
        self.store.save_delivery(&delivery).await?;
        Ok(delivery)
    }

    async fn skip(
        &self,
        mut delivery: Delivery,
        reason: String,
    ) -> Result<Delivery, OrchestratorError> {
        tracing::info!(invoice = %delivery.invoice_number, delivery_id = %delivery.id, reason = %reason, "delivery skipped");
        delivery.state = DeliveryState::Skipped;
        delivery.reason = reason;
        delivery.next_attempt_at = None;
        delivery.retry_since = None;
        self.store.save_delivery(&delivery).await?;
        Ok(delivery)
    }
}

/// Formats a recipient with its last reply to RCPT TO, when it got one:
/// `kim@buyer.example (451 4.2.0 mailbox busy)`.
fn recipient_reply(recipient: &crate::model::RecipientOutcome) -> String {
    match (recipient.reply_code, recipient.reply_text.is_empty()) {
        (0, true) => recipient.address.clone(),
        (0, false) => format!("{} ({})", recipient.address, recipient.reply_text),
        (code, _) => format!("{} ({code} {})", recipient.address, recipient.reply_text),
    }
}

/// Classifies a failed SendEmail call by whether it may have sent the message. A rejected
/// request and a failure to connect prove that nothing was sent. Any other error might have
/// come after the message went out. tonic reports a refused connection as `Unavailable`
/// "tcp connect error" (a failed lookup as "dns error"), and a connection closed or reset
/// after the request went out as `Unknown` "transport error" (tests in `api::upstream`).
pub(crate) fn send_error_result(error: &UpstreamError) -> SendResult {
    // mail-delivery checks the request before it opens any SMTP connection, and the same
    // request fails the same way on every retry.
    if error.code == tonic::Code::InvalidArgument {
        return SendResult::Failed;
    }
    // Only the connector's own errors prove it: a proxy's "upstream connect error or
    // disconnect/reset before headers" may come after it forwarded the request.
    // NOTE: these are tonic's message texts, not a stable interface. A tonic upgrade that
    // rewords them makes failed connects `unknown` (never a double send), and the tests in
    // `api::upstream` fail.
    let never_reached = error.is_unavailable()
        && ["tcp connect error", "dns error"]
            .iter()
            .any(|prefix| error.message.starts_with(prefix));
    if never_reached {
        SendResult::Deferred
    } else {
        SendResult::Unknown
    }
}

#[cfg(test)]
mod tests {
    use invoicer_kit::ServiceName;

    use super::*;

    fn send_error(code: tonic::Code, message: &str) -> UpstreamError {
        UpstreamError {
            service: ServiceName::MailDelivery,
            operation: "SendEmail",
            code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn rejected_send_request_fails() {
        let error = send_error(tonic::Code::InvalidArgument, "subject: is 1000 bytes long");
        assert_eq!(send_error_result(&error), SendResult::Failed);
    }

    #[test]
    fn connect_error_defers_other_errors_unknown() {
        let connect = send_error(tonic::Code::Unavailable, "tcp connect error");
        assert_eq!(send_error_result(&connect), SendResult::Deferred);
        let proxy = send_error(
            tonic::Code::Unavailable,
            "upstream connect error or disconnect/reset before headers",
        );
        assert_eq!(send_error_result(&proxy), SendResult::Unknown);
        let reset = send_error(tonic::Code::Unavailable, "stream closed: broken pipe");
        assert_eq!(send_error_result(&reset), SendResult::Unknown);
        let internal = send_error(tonic::Code::Internal, "building the email");
        assert_eq!(send_error_result(&internal), SendResult::Unknown);
    }
}
