//! Checks notifier settings, from the config file or from an update request, and turns them
//! into notifiers. Every rejected value is named in the error.

use chrono::{DateTime, Utc};
use invoicer_domain::LanguageTag;
use invoicer_domain::email::{Mailbox, parse_address_list};
use invoicer_kit::config::NotifierConfig;

use super::{EffectiveNotifier, MessageTemplate, Notifier, Origin, Split, Templates};
use crate::error::OrchestratorError;
use crate::message::check_template;
use crate::upstream::InvoiceKind;

/// A customer's notifier as an update request gives it, before it is checked: addresses are
/// still text and template keys are still as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct NotifierUpdate {
    pub enabled: Option<bool>,
    pub kinds: Option<Vec<InvoiceKind>>,
    pub to: Option<Vec<String>>,
    pub cc: Option<Vec<String>>,
    pub bcc: Option<Vec<String>>,
    pub split: Option<Split>,
    /// An empty template field counts as unset.
    pub templates: Templates,
}

impl NotifierUpdate {
    /// Checks every field and returns the customer's new notifier.
    pub(crate) fn into_notifier(
        self,
        customer_code: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Notifier, OrchestratorError> {
        let addresses = |field, list: Option<Vec<String>>| {
            list.map(|list| parse_addresses(field, &list)).transpose()
        };
        Ok(Notifier {
            customer_code: customer_code.to_owned(),
            enabled: self.enabled,
            kinds: self.kinds.map(normalized_kinds),
            to: addresses("notifier.to", self.to)?,
            cc: addresses("notifier.cc", self.cc)?,
            bcc: addresses("notifier.bcc", self.bcc)?,
            split: self.split,
            templates: checked_templates(self.templates)?,
            updated_at: at,
            updated_by: actor.to_owned(),
        })
    }
}

impl EffectiveNotifier {
    /// Builds the default notifier from the `[notifier]` section of the config file.
    pub(crate) fn from_config(
        config: &NotifierConfig,
    ) -> Result<EffectiveNotifier, OrchestratorError> {
        let kinds = config
            .kinds
            .iter()
            .map(|name| {
                InvoiceKind::parse(name.trim()).ok_or_else(|| {
                    OrchestratorError::invalid(
                        "notifier.kinds",
                        format!("unknown invoice kind {name:?}; use invoice or credit_note"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let split = Split::parse(config.split.trim()).ok_or_else(|| {
            OrchestratorError::invalid(
                "notifier.split",
                format!(
                    "unknown split {:?}; use per_invoice or per_to_contact",
                    config.split
                ),
            )
        })?;
        let templates = config
            .templates
            .iter()
            .map(|(language, template)| {
                let template = MessageTemplate {
                    subject: template.subject.clone(),
                    text: template.text.clone(),
                    html: template.html.clone(),
                };
                (language.clone(), template)
            })
            .collect();
        Ok(EffectiveNotifier {
            customer_code: String::new(),
            enabled: config.enabled,
            kinds: normalized_kinds(kinds),
            to: parse_addresses("notifier.to", &config.to)?,
            cc: parse_addresses("notifier.cc", &config.cc)?,
            bcc: parse_addresses("notifier.bcc", &config.bcc)?,
            split,
            templates: checked_templates(templates)?,
            enabled_origin: Origin::Default,
            kinds_origin: Origin::Default,
        })
    }
}

/// Sorted, without repeats, so equal settings compare and print equal.
fn normalized_kinds(mut kinds: Vec<InvoiceKind>) -> Vec<InvoiceKind> {
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Parses each value as an address list; an address given twice is kept once.
fn parse_addresses(
    field: &'static str,
    values: &[String],
) -> Result<Vec<Mailbox>, OrchestratorError> {
    let mut mailboxes: Vec<Mailbox> = Vec::new();
    for value in values {
        for parsed in parse_address_list(value) {
            let mailbox = parsed.map_err(|error| {
                OrchestratorError::invalid(field, format!("{error}; fix or remove the address"))
            })?;
            let seen = mailboxes
                .iter()
                .any(|m| m.address.eq_ignore_ascii_case(&mailbox.address));
            if !seen {
                mailboxes.push(mailbox);
            }
        }
    }
    Ok(mailboxes)
}

/// Checks each template and keys the templates by lowercase language tag. Empty fields are
/// dropped, and so is a language left with no template.
fn checked_templates(templates: Templates) -> Result<Templates, OrchestratorError> {
    let mut checked = Templates::new();
    for (key, template) in templates {
        let language = template_language(&key)?;
        let template = MessageTemplate {
            subject: template.subject.filter(|s| !s.trim().is_empty()),
            text: template.text.filter(|s| !s.trim().is_empty()),
            html: template.html.filter(|s| !s.trim().is_empty()),
        };
        for (field, source) in [
            ("subject", &template.subject),
            ("text", &template.text),
            ("html", &template.html),
        ] {
            if let Some(source) = source {
                check_template(&format!("templates.{language}.{field}"), source)
                    .map_err(|message| OrchestratorError::invalid("notifier.templates", message))?;
            }
        }
        if checked.contains_key(&language) {
            return Err(OrchestratorError::invalid(
                "notifier.templates",
                format!(
                    "language {language} is given twice (as {key:?} and in another case); keep one"
                ),
            ));
        }
        if template != MessageTemplate::default() {
            checked.insert(language, template);
        }
    }
    Ok(checked)
}

fn template_language(key: &str) -> Result<String, OrchestratorError> {
    let tag = LanguageTag::parse(key.trim())
        .map_err(|error| OrchestratorError::invalid("notifier.templates", error.to_string()))?;
    Ok(tag.as_str().to_ascii_lowercase())
}
