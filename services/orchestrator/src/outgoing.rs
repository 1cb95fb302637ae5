//! What one batch delivery sends under the customer's notifier, or why it sends nothing. The
//! batch, its dry run and the retry of a deferred delivery all decide here, so a dry run
//! shows the outcome and reason that the real run gives.
//!
//! An invoice revision goes out either as one per-invoice delivery or as one delivery per To
//! recipient. A delivery that is neither skipped nor deferred went out, may have gone out, or
//! is going out, so it binds its revision to its kind for good. A revision whose per-invoice
//! delivery is settled is never split later, and a revision with a settled per-To-recipient
//! delivery never gets a per-invoice one. A changed split therefore applies only to invoice
//! revisions that have not gone out yet.

use invoicer_domain::email::Mailbox;

use crate::deliver::Planned;
use crate::engine::Engine;
use crate::error::OrchestratorError;
use crate::message::ComposedMessage;
use crate::model::{Delivery, DeliveryState};
use crate::notifier::{EffectiveNotifier, Split};
use crate::recipients::{self, Recipients};
use crate::upstream::{Invoice, InvoiceSummary};

/// The recipients and the message of one batch delivery.
pub(crate) struct Outgoing {
    pub recipients: Recipients,
    pub message: ComposedMessage,
}

/// One batch delivery an invoice revision should have: its key, and for a per-To-recipient
/// delivery the recipient.
pub(crate) struct Target {
    pub key: String,
    pub to: Option<Mailbox>,
}

/// Returns the split that the revision's batch deliveries bind it to, if any. `except_id`
/// leaves out the delivery being decided, and the per-invoice kind wins if both are bound.
pub(crate) fn bound_split(deliveries: &[Delivery], except_id: Option<&str>) -> Option<Split> {
    let bound: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| Some(d.id.as_str()) != except_id)
        .filter(|d| !matches!(d.state, DeliveryState::Skipped | DeliveryState::Deferred))
        .collect();
    if bound.iter().any(|d| d.is_per_invoice_batch()) {
        return Some(Split::PerInvoice);
    }
    (!bound.is_empty()).then_some(Split::PerToContact)
}

/// Resolves the recipients of every message of `invoice` under `notifier`: the contacts by
/// role plus the notifier's extra addresses. Returns the skip reason when nothing may be sent.
pub(crate) fn batch_recipients(
    invoice: &Invoice,
    notifier: &EffectiveNotifier,
) -> Result<Recipients, String> {
    if invoice.notify_opt_out {
        return Err("opted out: the ERP marked this invoice as not to be emailed".to_owned());
    }
    if let Some(reason) = notifier.skip_reason(invoice) {
        return Err(reason);
    }
    let mut recipients = recipients::from_contacts(&invoice.customer.contacts);
    notifier.add_extra_recipients(&mut recipients);
    if let Some(reason) = recipients.unusable_reason() {
        return Err(reason);
    }
    Ok(recipients)
}

impl Engine {
    /// The batch deliveries that `summary`'s revision should have now: the per-invoice one,
    /// or one per To recipient. The per-invoice delivery also stands for a split invoice that
    /// cannot go out (skipped, or invoice-query failed), so that it is listed with its reason.
    pub(crate) async fn batch_targets(
        &self,
        summary: &InvoiceSummary,
        existing: &[Delivery],
        notifier: &EffectiveNotifier,
    ) -> Result<Vec<Target>, OrchestratorError> {
        let per_invoice = || {
            vec![Target {
                key: Delivery::batch_key(&summary.number, summary.revision),
                to: None,
            }]
        };
        let split = bound_split(existing, None).unwrap_or(notifier.split);
        if split == Split::PerInvoice {
            return Ok(per_invoice());
        }
        let invoice = match self.upstream.get_invoice(&summary.number).await {
            Ok(invoice) => invoice,
            Err(error) => {
                tracing::warn!(invoice = %summary.number, %error, "cannot read the invoice to split it per To recipient; its per-invoice delivery reports the failure");
                return Ok(per_invoice());
            }
        };
        let recipients = match batch_recipients(&invoice, notifier) {
            Ok(recipients) if invoice.revision == summary.revision => recipients,
            _ => return Ok(per_invoice()),
        };
        if recipients.to.is_empty() {
            return Ok(per_invoice());
        }
        let targets = recipients
            .to
            .into_iter()
            .map(|mailbox| Target {
                key: Delivery::batch_to_key(&summary.number, summary.revision, &mailbox.address),
                to: Some(mailbox),
            })
            .collect();
        Ok(targets)
    }

    /// Decides what the batch delivery `delivery` of `invoice` sends now, or why it sends
    /// nothing. The inner error is the skip reason.
    pub(crate) async fn batch_outgoing(
        &self,
        delivery: &Delivery,
        invoice: &Invoice,
        planned: &Planned,
        corrected: bool,
    ) -> Result<Result<Outgoing, String>, OrchestratorError> {
        let read;
        let notifier = match &planned.notifier {
            Some(notifier) => notifier.as_ref(),
            None => {
                read = self.effective_notifier(&delivery.customer_code).await?;
                &read
            }
        };
        // Planning inserted every batch delivery of a new revision under `notifier`'s split and
        // found no other after its insert, so none can bind the revision to another split.
        let split = if planned.new_revision {
            notifier.split
        } else {
            let siblings = self
                .store
                .batch_deliveries(&delivery.invoice_number, delivery.invoice_revision)
                .await?;
            bound_split(&siblings, Some(&delivery.id)).unwrap_or(notifier.split)
        };
        Ok(self.decide(delivery, invoice, notifier, split, corrected))
    }

    fn decide(
        &self,
        delivery: &Delivery,
        invoice: &Invoice,
        notifier: &EffectiveNotifier,
        split: Split,
        corrected: bool,
    ) -> Result<Outgoing, String> {
        if invoice.revision != delivery.invoice_revision {
            return Err(format!(
                "revision {} was replaced by revision {}; the next batch sends the new one",
                delivery.invoice_revision, invoice.revision
            ));
        }
        let recipients = batch_recipients(invoice, notifier)?;
        let recipients = match (split, delivery.is_per_invoice_batch()) {
            (Split::PerInvoice, true) => recipients,
            (Split::PerInvoice, false) => {
                return Err(format!(
                    "sent as one message: invoice {} revision {} goes to every recipient in one message, so this per-To-recipient delivery is not sent",
                    delivery.invoice_number, delivery.invoice_revision
                ));
            }
            (Split::PerToContact, true) => return Err(per_invoice_not_split(invoice, &recipients)),
            (Split::PerToContact, false) => one_to_recipient(delivery, invoice, recipients)?,
        };
        let message = self
            .templates
            .compose(
                invoice,
                &self.config.company.name,
                &self.config.company.email,
                &notifier.templates,
                corrected,
            )
            .map_err(|error| {
                format!(
                    "{error}; fix the template with `invoicer notifier set {}`",
                    invoice.customer.code
                )
            })?;
        Ok(Outgoing {
            recipients,
            message,
        })
    }
}

/// Builds the skip reason of a per-invoice delivery while the revision is split per To
/// recipient.
fn per_invoice_not_split(invoice: &Invoice, recipients: &Recipients) -> String {
    let code = &invoice.customer.code;
    if recipients.to.is_empty() {
        return format!(
            "no To recipient: the notifier of customer {code} sends one message per To recipient, and the customer has none; add a contact with role to or a notifier To address"
        );
    }
    format!(
        "sent per To recipient: the notifier of customer {code} sends one message per To recipient, so this per-invoice delivery is not sent; the next batch sends those messages"
    )
}

/// Picks the recipients of a per-To-recipient delivery: its To recipient, if it still is one,
/// with every Cc and Bcc recipient.
fn one_to_recipient(
    delivery: &Delivery,
    invoice: &Invoice,
    recipients: Recipients,
) -> Result<Recipients, String> {
    let own_key = |mailbox: &&Mailbox| {
        Delivery::batch_to_key(
            &delivery.invoice_number,
            delivery.invoice_revision,
            &mailbox.address,
        ) == delivery.key
    };
    let Some(to) = recipients.to.iter().find(own_key).cloned() else {
        let address = delivery
            .to
            .first()
            .map_or_else(|| delivery.key.clone(), |m| m.address.clone());
        return Err(format!(
            "no longer a To recipient: {address} is not among the To recipients of customer {} any more",
            invoice.customer.code
        ));
    };
    Ok(Recipients {
        to: vec![to],
        ..recipients
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Purpose;

    fn delivery(key: String, state: DeliveryState) -> Delivery {
        let mut delivery = Delivery::new(key, "INV-1", 1, "C-1", Purpose::Batch);
        delivery.state = state;
        delivery
    }

    fn per_invoice(state: DeliveryState) -> Delivery {
        delivery(Delivery::batch_key("INV-1", 1), state)
    }

    fn per_to(address: &str, state: DeliveryState) -> Delivery {
        delivery(Delivery::batch_to_key("INV-1", 1, address), state)
    }

    #[test]
    fn no_deliveries_bind_nothing() {
        assert_eq!(bound_split(&[], None), None);
    }

    #[test]
    fn skipped_and_deferred_bind_nothing() {
        let deliveries = [
            per_invoice(DeliveryState::Skipped),
            per_to("a@x.example", DeliveryState::Deferred),
        ];
        assert_eq!(bound_split(&deliveries, None), None);
    }

    #[test]
    fn sent_per_invoice_binds_per_invoice() {
        let deliveries = [per_invoice(DeliveryState::Sent)];
        assert_eq!(bound_split(&deliveries, None), Some(Split::PerInvoice));
    }

    #[test]
    fn unknown_per_to_binds_per_to() {
        let deliveries = [
            per_invoice(DeliveryState::Skipped),
            per_to("a@x.example", DeliveryState::Unknown),
        ];
        assert_eq!(bound_split(&deliveries, None), Some(Split::PerToContact));
    }

    #[test]
    fn in_flight_delivery_binds() {
        let deliveries = [per_to("a@x.example", DeliveryState::Submitting)];
        assert_eq!(bound_split(&deliveries, None), Some(Split::PerToContact));
    }

    #[test]
    fn delivery_being_decided_is_left_out() {
        let deliveries = [per_invoice(DeliveryState::Pending)];
        let own_id = deliveries[0].id.clone();
        assert_eq!(bound_split(&deliveries, Some(&own_id)), None);
    }

    #[test]
    fn per_invoice_wins_when_both_bound() {
        let deliveries = [
            per_to("a@x.example", DeliveryState::Sent),
            per_invoice(DeliveryState::Failed),
        ];
        assert_eq!(bound_split(&deliveries, None), Some(Split::PerInvoice));
    }
}
