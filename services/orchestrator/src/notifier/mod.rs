//! Notifiers: the rules for emailing one customer's invoices. The default notifier comes from
//! the config file, and a customer's own notifier overrides it field by field.

mod manage;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use invoicer_domain::email::Mailbox;

use crate::engine::Engine;
use crate::error::OrchestratorError;
use crate::recipients::Recipients;
use crate::upstream::{ContactRole, Invoice, InvoiceKind};

pub(crate) use manage::{NotifierUpdateRequest, writable_notifier_code};
pub(crate) use parse::NotifierUpdate;

/// The message split of a notifier: one message per invoice, or one per To recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// One message per invoice, to every recipient.
    PerInvoice,
    /// One message per To recipient, each with the same Cc and Bcc, and each its own delivery.
    PerToContact,
}

impl Split {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Split::PerInvoice => "per_invoice",
            Split::PerToContact => "per_to_contact",
        }
    }

    /// Parses `per_invoice` or `per_to_contact`, also with hyphens as the CLI spells them.
    pub(crate) fn parse(value: &str) -> Option<Split> {
        let value = value.replace('-', "_");
        [Split::PerInvoice, Split::PerToContact]
            .into_iter()
            .find(|split| split.as_str() == value)
    }
}

/// The minijinja templates of an invoice email in one language; `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MessageTemplate {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl MessageTemplate {
    /// Replaces each field that `other` sets.
    fn overlay(&mut self, other: &MessageTemplate) {
        for (mine, theirs) in [
            (&mut self.subject, &other.subject),
            (&mut self.text, &other.text),
            (&mut self.html, &other.html),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
    }
}

/// Message templates by lowercase language tag, such as `en` or `de-at`.
pub(crate) type Templates = BTreeMap<String, MessageTemplate>;

/// A customer's own notifier. Every `None` field inherits the default notifier's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notifier {
    pub customer_code: String,
    pub enabled: Option<bool>,
    /// `Some` with no kinds sends every kind.
    pub kinds: Option<Vec<InvoiceKind>>,
    pub to: Option<Vec<Mailbox>>,
    pub cc: Option<Vec<Mailbox>>,
    pub bcc: Option<Vec<Mailbox>>,
    pub split: Option<Split>,
    /// Per language and field, a template here replaces the default notifier's.
    pub templates: Templates,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// The notifier a resolved field came from, so that a skip reason can name where to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Default,
    Customer,
}

/// The notifier that applies to one customer, or the default notifier: every field resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EffectiveNotifier {
    /// Empty for the default notifier.
    pub customer_code: String,
    pub enabled: bool,
    /// Empty sends every kind.
    pub kinds: Vec<InvoiceKind>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub split: Split,
    pub templates: Templates,
    pub enabled_origin: Origin,
    pub kinds_origin: Origin,
}

impl Notifier {
    /// Returns whether `other` has the same settings, ignoring who set them and when.
    pub(crate) fn same_settings(&self, other: &Notifier) -> bool {
        let comparable = Notifier {
            updated_at: other.updated_at,
            updated_by: other.updated_by.clone(),
            ..self.clone()
        };
        comparable == *other
    }
}

/// The result of an update of a customer's notifier.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NotifierWrite {
    /// The settings differed from the stored ones: they replaced them and the change is recorded.
    Changed(Box<NotifierChange>),
    /// The stored notifier has these settings already, so nothing was written or recorded.
    Unchanged(Notifier),
}

/// One recorded change of a customer's notifier.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NotifierChange {
    pub id: u64,
    pub customer_code: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// `None` when the customer had no notifier of its own before.
    pub old: Option<Notifier>,
    pub new: Notifier,
}

impl EffectiveNotifier {
    /// Merges a customer's own notifier over the default: each field the customer's notifier
    /// sets wins, every other field keeps the default's value. Templates merge per language
    /// and field.
    pub(crate) fn merged(
        default: &EffectiveNotifier,
        customer_code: &str,
        own: Option<&Notifier>,
    ) -> EffectiveNotifier {
        let mut merged = EffectiveNotifier {
            customer_code: customer_code.to_owned(),
            ..default.clone()
        };
        let Some(own) = own else {
            return merged;
        };
        if let Some(enabled) = own.enabled {
            merged.enabled = enabled;
            merged.enabled_origin = Origin::Customer;
        }
        if let Some(kinds) = &own.kinds {
            merged.kinds.clone_from(kinds);
            merged.kinds_origin = Origin::Customer;
        }
        for (field, value) in [
            (&mut merged.to, &own.to),
            (&mut merged.cc, &own.cc),
            (&mut merged.bcc, &own.bcc),
        ] {
            if let Some(value) = value {
                field.clone_from(value);
            }
        }
        merged.split = own.split.unwrap_or(default.split);
        for (language, template) in &own.templates {
            merged
                .templates
                .entry(language.clone())
                .or_default()
                .overlay(template);
        }
        merged
    }

    pub(crate) fn sends_kind(&self, kind: InvoiceKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// Why this notifier does not send `invoice` at all, if it does not: switched off, or an
    /// invoice kind it leaves out.
    pub(crate) fn skip_reason(&self, invoice: &Invoice) -> Option<String> {
        let code = &self.customer_code;
        if !self.enabled {
            return Some(match self.enabled_origin {
                Origin::Customer => format!(
                    "notifier off: the notifier of customer {code} is switched off; `invoicer notifier set {code} --enabled true` switches it on"
                ),
                Origin::Default => "notifier off: the default notifier is switched off; set notifier.enabled = true in the config file".to_owned(),
            });
        }
        if !self.sends_kind(invoice.kind) {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            let owner = match self.kinds_origin {
                Origin::Customer => format!("the notifier of customer {code}"),
                Origin::Default => "the default notifier".to_owned(),
            };
            return Some(format!(
                "kind {} not sent: {owner} sends only {}",
                invoice.kind.as_str(),
                kinds.join(", ")
            ));
        }
        None
    }

    /// Adds the notifier's extra addresses, leaving out any address that is already a
    /// recipient.
    pub(crate) fn add_extra_recipients(&self, recipients: &mut Recipients) {
        for (role, list) in [
            (ContactRole::To, &self.to),
            (ContactRole::Cc, &self.cc),
            (ContactRole::Bcc, &self.bcc),
        ] {
            for mailbox in list {
                recipients.push(role, mailbox.clone());
            }
        }
    }
}

/// The effective notifiers read while planning one chunk of a batch: the chunk's customers
/// with one query, or one customer at a time on first use in a dry run. The chunk's
/// deliveries then use them too.
#[derive(Default)]
pub(crate) struct PlanningNotifiers {
    by_customer: HashMap<String, Arc<EffectiveNotifier>>,
}

impl PlanningNotifiers {
    /// Returns the customer's notifier, if planning read it.
    pub(crate) fn get(&self, customer_code: &str) -> Option<Arc<EffectiveNotifier>> {
        self.by_customer.get(customer_code).cloned()
    }
}

impl Engine {
    /// Reads the effective notifiers of `customer_codes` with one query, so that planning a
    /// chunk does not read them one customer at a time.
    pub(crate) async fn planning_notifiers(
        &self,
        customer_codes: &[&str],
    ) -> Result<PlanningNotifiers, OrchestratorError> {
        let mut own: HashMap<String, Notifier> = self
            .store
            .notifiers_of(customer_codes)
            .await?
            .into_iter()
            .map(|notifier| (notifier.customer_code.clone(), notifier))
            .collect();
        let mut notifiers = PlanningNotifiers::default();
        for code in customer_codes {
            let merged =
                EffectiveNotifier::merged(&self.default_notifier, code, own.remove(*code).as_ref());
            notifiers
                .by_customer
                .insert((*code).to_owned(), Arc::new(merged));
        }
        Ok(notifiers)
    }

    /// Returns the customer's effective notifier from `cache`, reading it on first use.
    pub(crate) async fn planning_notifier<'a>(
        &self,
        cache: &'a mut PlanningNotifiers,
        customer_code: &str,
    ) -> Result<&'a EffectiveNotifier, OrchestratorError> {
        if !cache.by_customer.contains_key(customer_code) {
            let notifier = self.effective_notifier(customer_code).await?;
            cache
                .by_customer
                .insert(customer_code.to_owned(), Arc::new(notifier));
        }
        Ok(&cache.by_customer[customer_code])
    }

    /// Returns the notifier that applies to the customer now: its own merged with the default.
    pub(crate) async fn effective_notifier(
        &self,
        customer_code: &str,
    ) -> Result<EffectiveNotifier, OrchestratorError> {
        let own = self.store.notifier(customer_code).await?;
        Ok(EffectiveNotifier::merged(
            &self.default_notifier,
            customer_code,
            own.as_ref(),
        ))
    }
}
