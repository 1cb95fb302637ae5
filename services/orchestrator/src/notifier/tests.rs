//! Unit tests of notifiers: config, checks of updates, merging and skip reasons.

use chrono::Utc;
use invoicer_kit::config::{MessageTemplateConfig, NotifierConfig};

use super::*;
use crate::upstream::{Contact, Customer};

fn mailbox(address: &str) -> Mailbox {
    Mailbox::parse(address).unwrap()
}

fn default_notifier() -> EffectiveNotifier {
    let config = NotifierConfig {
        kinds: vec!["invoice".to_owned()],
        cc: vec!["Copies <copies@seller.example>".to_owned()],
        bcc: vec!["archive@seller.example".to_owned()],
        templates: [(
            "en".to_owned(),
            MessageTemplateConfig {
                subject: Some("Default {{ number }}".to_owned()),
                text: Some("Default text".to_owned()),
                html: None,
            },
        )]
        .into(),
        ..NotifierConfig::default()
    };
    EffectiveNotifier::from_config(&config).unwrap()
}

/// Builds a customer notifier that sets nothing, so every field inherits.
fn empty_own() -> Notifier {
    NotifierUpdate::default()
        .into_notifier("C-1", "alice", Utc::now())
        .unwrap()
}

fn invoice(kind: InvoiceKind) -> Invoice {
    Invoice {
        number: "INV-1".to_owned(),
        revision: 1,
        kind,
        issued_date: Utc::now().date_naive(),
        due_date: String::new(),
        currency: "EUR".to_owned(),
        total: "1.00".to_owned(),
        po_number: String::new(),
        notify_opt_out: false,
        customer: Customer {
            code: "C-1".to_owned(),
            name: "Customer".to_owned(),
            language: "en".to_owned(),
            contacts: vec![Contact {
                name: "Lee".to_owned(),
                email: "lee@buyer.example".to_owned(),
                role: ContactRole::To,
            }],
        },
        raw: crate::api::RawInvoice::default(),
    }
}

fn update_error(update: NotifierUpdate) -> String {
    update
        .into_notifier("C-1", "alice", Utc::now())
        .unwrap_err()
        .to_string()
}

#[test]
fn config_defaults_send_every_kind_per_invoice() {
    let notifier = EffectiveNotifier::from_config(&NotifierConfig::default()).unwrap();
    assert!(notifier.enabled);
    assert!(notifier.kinds.is_empty());
    assert_eq!(notifier.split, Split::PerInvoice);
    assert!(notifier.to.is_empty());
    assert!(notifier.cc.is_empty());
    assert!(notifier.bcc.is_empty());
}

#[test]
fn config_unknown_kind_names_it() {
    let config = NotifierConfig {
        kinds: vec!["receipt".to_owned()],
        ..NotifierConfig::default()
    };
    let error = EffectiveNotifier::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("notifier.kinds"), "{error}");
    assert!(error.contains("\"receipt\""), "{error}");
}

#[test]
fn config_unknown_split_names_it() {
    let config = NotifierConfig {
        split: "per_contact".to_owned(),
        ..NotifierConfig::default()
    };
    let error = EffectiveNotifier::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"per_contact\""), "{error}");
}

/// The config takes the split as the CLI's `--split` spells it too.
#[test]
fn config_split_with_hyphens() {
    let config = NotifierConfig {
        split: "per-to-contact".to_owned(),
        ..NotifierConfig::default()
    };
    let notifier = EffectiveNotifier::from_config(&config).unwrap();
    assert_eq!(notifier.split, Split::PerToContact);
}

#[test]
fn config_invalid_template_names_it() {
    let config = NotifierConfig {
        templates: [(
            "de".to_owned(),
            MessageTemplateConfig {
                html: Some("{{ betrag }}".to_owned()),
                ..MessageTemplateConfig::default()
            },
        )]
        .into(),
        ..NotifierConfig::default()
    };
    let error = EffectiveNotifier::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("templates.de.html"), "{error}");
}

#[test]
fn merge_without_own_notifier_keeps_default() {
    let default = default_notifier();
    let merged = EffectiveNotifier::merged(&default, "C-1", None);
    assert_eq!(merged.customer_code, "C-1");
    assert_eq!(
        EffectiveNotifier {
            customer_code: String::new(),
            ..merged
        },
        default
    );
}

#[test]
fn merge_unset_fields_inherit() {
    let default = default_notifier();
    let merged = EffectiveNotifier::merged(&default, "C-1", Some(&empty_own()));
    assert_eq!(merged.enabled, default.enabled);
    assert_eq!(merged.kinds, default.kinds);
    assert_eq!(merged.to, default.to);
    assert_eq!(merged.cc, default.cc);
    assert_eq!(merged.bcc, default.bcc);
    assert_eq!(merged.split, default.split);
    assert_eq!(merged.templates, default.templates);
    assert_eq!(merged.enabled_origin, Origin::Default);
    assert_eq!(merged.kinds_origin, Origin::Default);
}

#[test]
fn merge_enabled_overrides() {
    let own = Notifier {
        enabled: Some(false),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    assert!(!merged.enabled);
    assert_eq!(merged.enabled_origin, Origin::Customer);
}

#[test]
fn merge_empty_kinds_override_to_every_kind() {
    let own = Notifier {
        kinds: Some(Vec::new()),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    assert!(merged.sends_kind(InvoiceKind::CreditNote));
    assert_eq!(merged.kinds_origin, Origin::Customer);
}

#[test]
fn merge_address_lists_override_one_by_one() {
    let own = Notifier {
        to: Some(vec![mailbox("extra@buyer.example")]),
        cc: Some(Vec::new()),
        ..empty_own()
    };
    let default = default_notifier();
    let merged = EffectiveNotifier::merged(&default, "C-1", Some(&own));
    assert_eq!(merged.to, [mailbox("extra@buyer.example")]);
    assert!(merged.cc.is_empty(), "an empty cc list did not override");
    assert_eq!(merged.bcc, default.bcc);
}

#[test]
fn merge_split_overrides() {
    let own = Notifier {
        split: Some(Split::PerToContact),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    assert_eq!(merged.split, Split::PerToContact);
}

#[test]
fn merge_templates_per_language_and_field() {
    let own = Notifier {
        templates: [
            (
                "en".to_owned(),
                MessageTemplate {
                    subject: Some("Own {{ number }}".to_owned()),
                    ..MessageTemplate::default()
                },
            ),
            (
                "de".to_owned(),
                MessageTemplate {
                    text: Some("Eigener Text".to_owned()),
                    ..MessageTemplate::default()
                },
            ),
        ]
        .into(),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    let english = &merged.templates["en"];
    assert_eq!(english.subject.as_deref(), Some("Own {{ number }}"));
    assert_eq!(english.text.as_deref(), Some("Default text"));
    assert_eq!(english.html, None);
    assert_eq!(merged.templates["de"].text.as_deref(), Some("Eigener Text"));
}

#[test]
fn update_invalid_address_names_it() {
    let update = NotifierUpdate {
        cc: Some(vec!["ok@buyer.example, broken@@buyer".to_owned()]),
        ..NotifierUpdate::default()
    };
    let error = update_error(update);
    assert!(error.starts_with("notifier.cc"), "{error}");
    assert!(error.contains("broken@@buyer"), "{error}");
}

#[test]
fn update_repeated_address_kept_once() {
    let update = NotifierUpdate {
        bcc: Some(vec![
            "a@buyer.example".to_owned(),
            "A@buyer.example".to_owned(),
        ]),
        ..NotifierUpdate::default()
    };
    let notifier = update.into_notifier("C-1", "alice", Utc::now()).unwrap();
    assert_eq!(notifier.bcc.unwrap().len(), 1);
}

#[test]
fn update_template_syntax_error_names_template() {
    let update = NotifierUpdate {
        templates: [(
            "EN".to_owned(),
            MessageTemplate {
                subject: Some("{% if %}".to_owned()),
                ..MessageTemplate::default()
            },
        )]
        .into(),
        ..NotifierUpdate::default()
    };
    let error = update_error(update);
    assert!(error.contains("templates.en.subject"), "{error}");
}

#[test]
fn update_template_unknown_variable_names_it() {
    let update = NotifierUpdate {
        templates: [(
            "en".to_owned(),
            MessageTemplate {
                text: Some("{{ customer_name }}".to_owned()),
                ..MessageTemplate::default()
            },
        )]
        .into(),
        ..NotifierUpdate::default()
    };
    let error = update_error(update);
    assert!(error.contains("templates.en.text"), "{error}");
    assert!(error.contains("\"customer_name\""), "{error}");
}

#[test]
fn update_invalid_language_tag_names_it() {
    let update = NotifierUpdate {
        templates: [(
            "english!".to_owned(),
            MessageTemplate {
                subject: Some("x".to_owned()),
                ..MessageTemplate::default()
            },
        )]
        .into(),
        ..NotifierUpdate::default()
    };
    let error = update_error(update);
    assert!(error.contains("\"english!\""), "{error}");
}

#[test]
fn update_normalizes_template_keys_and_fields() {
    let update = NotifierUpdate {
        templates: [(
            "de-AT".to_owned(),
            MessageTemplate {
                subject: Some("Rechnung".to_owned()),
                text: Some("  ".to_owned()),
                html: None,
            },
        )]
        .into(),
        ..NotifierUpdate::default()
    };
    let notifier = update.into_notifier("C-1", "alice", Utc::now()).unwrap();
    let template = &notifier.templates["de-at"];
    assert_eq!(template.subject.as_deref(), Some("Rechnung"));
    assert_eq!(template.text, None);
}

#[test]
fn switched_off_customer_reason_names_customer() {
    let own = Notifier {
        enabled: Some(false),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    let reason = merged.skip_reason(&invoice(InvoiceKind::Invoice)).unwrap();
    assert!(reason.starts_with("notifier off: "), "{reason}");
    assert!(reason.contains("C-1"), "{reason}");
}

#[test]
fn switched_off_default_reason_names_config() {
    let config = NotifierConfig {
        enabled: false,
        ..NotifierConfig::default()
    };
    let notifier = EffectiveNotifier::from_config(&config).unwrap();
    let reason = notifier
        .skip_reason(&invoice(InvoiceKind::Invoice))
        .unwrap();
    assert!(reason.starts_with("notifier off: "), "{reason}");
    assert!(reason.contains("notifier.enabled"), "{reason}");
}

#[test]
fn excluded_kind_reason_names_kind() {
    let notifier = default_notifier();
    let reason = notifier
        .skip_reason(&invoice(InvoiceKind::CreditNote))
        .unwrap();
    assert!(reason.contains("credit_note"), "{reason}");
    assert_eq!(notifier.skip_reason(&invoice(InvoiceKind::Invoice)), None);
}

#[test]
fn extra_recipients_skip_known_addresses() {
    let own = Notifier {
        to: Some(vec![mailbox("lee@buyer.example")]),
        cc: Some(vec![
            mailbox("LEE@buyer.example"),
            mailbox("ap@buyer.example"),
        ]),
        ..empty_own()
    };
    let merged = EffectiveNotifier::merged(&default_notifier(), "C-1", Some(&own));
    let mut recipients =
        crate::recipients::from_contacts(&invoice(InvoiceKind::Invoice).customer.contacts);
    merged.add_extra_recipients(&mut recipients);
    let addresses = |list: &[Mailbox]| list.iter().map(|m| m.address.clone()).collect::<Vec<_>>();
    assert_eq!(addresses(&recipients.to), ["lee@buyer.example"]);
    assert_eq!(addresses(&recipients.cc), ["ap@buyer.example"]);
    assert_eq!(addresses(&recipients.bcc), ["archive@seller.example"]);
}
