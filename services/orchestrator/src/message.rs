//! The subject and body of an invoice email, rendered with minijinja from invoice fields.
//! A notifier's templates come first. The built-in ones exist in the six languages of the PDF
//! (English, German, French, Spanish, Portuguese, Dutch). A customer in any other language gets
//! `company.language`, as in the PDF, or English when that has no built-in set either.
//! Dates and the total are formatted for the language of the template that renders them, as
//! the PDF formats them (`invoicer_domain::Locale`).

use std::collections::HashSet;

use chrono::NaiveDate;
use invoicer_domain::Locale;
use invoicer_kit::validate::MAX_SUBJECT_BYTES;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::notifier::{MessageTemplate, Templates};
use crate::upstream::{Invoice, InvoiceKind};

#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    #[error("email template {template} failed: {source}")]
    Render {
        template: String,
        source: minijinja::Error,
    },
    #[error(
        "email template {template} gave a subject of {bytes} bytes, more than the {MAX_SUBJECT_BYTES} an email takes; shorten the template or the values it prints"
    )]
    SubjectTooLong { template: String, bytes: usize },
}

pub(crate) struct ComposedMessage {
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// A built-in subject, plain-text body and HTML body in one language.
struct BuiltIn {
    language: &'static str,
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

/// The built-in templates, one set for each language the PDF has labels for, so the email
/// reads in the language of its attachment.
const BUILT_IN: [BuiltIn; 6] = [
    BuiltIn {
        language: "en",
        subject: "{% if credit_note %}Credit note{% else %}Invoice{% endif %} {{ number }} from {{ company }}{% if corrected %} (corrected){% endif %}",
        text: "\
Dear {{ customer }},

Please find attached {% if credit_note %}credit note{% else %}invoice{% endif %} {{ number }} \
of {{ issued_date }} for {{ amount }}.
{%- if due_date %} It is due on {{ due_date }}.{% endif %}
{%- if po_number %} Your purchase order: {{ po_number }}.{% endif %}
{%- if corrected %} This corrected version replaces the one sent before.{% endif %}

Kind regards
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>Dear {{ customer }},</p>
<p>Please find attached {% if credit_note %}credit note{% else %}invoice{% endif %} \
<strong>{{ number }}</strong> of {{ issued_date }} for {{ amount }}.
{%- if due_date %} It is due on {{ due_date }}.{% endif %}
{%- if po_number %} Your purchase order: {{ po_number }}.{% endif %}
{%- if corrected %} This corrected version replaces the one sent before.{% endif %}</p>
<p>Kind regards<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
    BuiltIn {
        language: "de",
        subject: "{% if credit_note %}Gutschrift{% else %}Rechnung{% endif %} {{ number }} von {{ company }}{% if corrected %} (korrigiert){% endif %}",
        text: "\
Guten Tag {{ customer }},

anbei erhalten Sie {% if credit_note %}die Gutschrift{% else %}die Rechnung{% endif %} {{ number }} \
vom {{ issued_date }} über {{ amount }}.
{%- if due_date %} Sie ist fällig am {{ due_date }}.{% endif %}
{%- if po_number %} Ihre Bestellung: {{ po_number }}.{% endif %}
{%- if corrected %} Diese korrigierte Fassung ersetzt die zuvor versandte.{% endif %}

Mit freundlichen Grüßen
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>Guten Tag {{ customer }},</p>
<p>anbei erhalten Sie {% if credit_note %}die Gutschrift{% else %}die Rechnung{% endif %} \
<strong>{{ number }}</strong> vom {{ issued_date }} über {{ amount }}.
{%- if due_date %} Sie ist fällig am {{ due_date }}.{% endif %}
{%- if po_number %} Ihre Bestellung: {{ po_number }}.{% endif %}
{%- if corrected %} Diese korrigierte Fassung ersetzt die zuvor versandte.{% endif %}</p>
<p>Mit freundlichen Grüßen<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
    // French puts a no-break space before a colon.
    BuiltIn {
        language: "fr",
        // "de" before the company would need elision ("d'Acme"), so the subject has a dash.
        subject: "{% if credit_note %}Avoir{% else %}Facture{% endif %} {{ number }} – {{ company }}{% if corrected %} ({% if credit_note %}corrigé{% else %}corrigée{% endif %}){% endif %}",
        text: "\
Bonjour {{ customer }},

Veuillez trouver ci-joint {% if credit_note %}l'avoir{% else %}la facture{% endif %} {{ number }} \
du {{ issued_date }} d'un montant de {{ amount }}.
{%- if due_date %} Échéance\u{a0}: {{ due_date }}.{% endif %}
{%- if po_number %} Votre bon de commande\u{a0}: {{ po_number }}.{% endif %}
{%- if corrected %} Cette version corrigée remplace celle envoyée précédemment.{% endif %}

Cordialement
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>Bonjour {{ customer }},</p>
<p>Veuillez trouver ci-joint {% if credit_note %}l'avoir{% else %}la facture{% endif %} \
<strong>{{ number }}</strong> du {{ issued_date }} d'un montant de {{ amount }}.
{%- if due_date %} Échéance\u{a0}: {{ due_date }}.{% endif %}
{%- if po_number %} Votre bon de commande\u{a0}: {{ po_number }}.{% endif %}
{%- if corrected %} Cette version corrigée remplace celle envoyée précédemment.{% endif %}</p>
<p>Cordialement<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
    BuiltIn {
        language: "es",
        subject: "{% if credit_note %}Nota de crédito{% else %}Factura{% endif %} {{ number }} de {{ company }}{% if corrected %} (corregida){% endif %}",
        text: "\
A la atención de {{ customer }}:

Le enviamos adjunta {% if credit_note %}la nota de crédito{% else %}la factura{% endif %} \
{{ number }} con fecha {{ issued_date }} por un importe de {{ amount }}.
{%- if due_date %} Fecha de vencimiento: {{ due_date }}.{% endif %}
{%- if po_number %} Su orden de compra: {{ po_number }}.{% endif %}
{%- if corrected %} Esta versión corregida sustituye a la enviada anteriormente.{% endif %}

Atentamente,
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>A la atención de {{ customer }}:</p>
<p>Le enviamos adjunta {% if credit_note %}la nota de crédito{% else %}la factura{% endif %} \
<strong>{{ number }}</strong> con fecha {{ issued_date }} por un importe de {{ amount }}.
{%- if due_date %} Fecha de vencimiento: {{ due_date }}.{% endif %}
{%- if po_number %} Su orden de compra: {{ po_number }}.{% endif %}
{%- if corrected %} Esta versión corregida sustituye a la enviada anteriormente.{% endif %}</p>
<p>Atentamente,<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
    BuiltIn {
        language: "pt",
        subject: "{% if credit_note %}Nota de crédito{% else %}Fatura{% endif %} {{ number }} de {{ company }}{% if corrected %} (corrigida){% endif %}",
        text: "\
Olá, {{ customer }},

Segue em anexo {% if credit_note %}a nota de crédito{% else %}a fatura{% endif %} {{ number }} \
com data de {{ issued_date }} no valor de {{ amount }}.
{%- if due_date %} Vencimento: {{ due_date }}.{% endif %}
{%- if po_number %} Sua ordem de compra: {{ po_number }}.{% endif %}
{%- if corrected %} Esta versão corrigida substitui a enviada anteriormente.{% endif %}

Atenciosamente,
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>Olá, {{ customer }},</p>
<p>Segue em anexo {% if credit_note %}a nota de crédito{% else %}a fatura{% endif %} \
<strong>{{ number }}</strong> com data de {{ issued_date }} no valor de {{ amount }}.
{%- if due_date %} Vencimento: {{ due_date }}.{% endif %}
{%- if po_number %} Sua ordem de compra: {{ po_number }}.{% endif %}
{%- if corrected %} Esta versão corrigida substitui a enviada anteriormente.{% endif %}</p>
<p>Atenciosamente,<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
    BuiltIn {
        language: "nl",
        subject: "{% if credit_note %}Creditnota{% else %}Factuur{% endif %} {{ number }} van {{ company }}{% if corrected %} (gecorrigeerd){% endif %}",
        text: "\
Geachte {{ customer }},

In de bijlage vindt u {% if credit_note %}creditnota{% else %}factuur{% endif %} {{ number }} \
van {{ issued_date }} ter waarde van {{ amount }}.
{%- if due_date %} Vervaldatum: {{ due_date }}.{% endif %}
{%- if po_number %} Uw inkooporder: {{ po_number }}.{% endif %}
{%- if corrected %} Deze gecorrigeerde versie vervangt de eerder verzonden versie.{% endif %}

Met vriendelijke groet
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
",
        html: "\
<p>Geachte {{ customer }},</p>
<p>In de bijlage vindt u {% if credit_note %}creditnota{% else %}factuur{% endif %} \
<strong>{{ number }}</strong> van {{ issued_date }} ter waarde van {{ amount }}.
{%- if due_date %} Vervaldatum: {{ due_date }}.{% endif %}
{%- if po_number %} Uw inkooporder: {{ po_number }}.{% endif %}
{%- if corrected %} Deze gecorrigeerde versie vervangt de eerder verzonden versie.{% endif %}</p>
<p>Met vriendelijke groet<br>{{ company }}
{%- if company_email %}<br>{{ company_email }}{% endif %}</p>
",
    },
];

pub(crate) struct MessageTemplates {
    environment: Environment<'static>,
    /// The built-in language of customers whose own language has none: `company.language`
    /// where a built-in set exists for it, as the PDF falls back to it, else English.
    fallback: &'static str,
}

impl MessageTemplates {
    /// Builds the templates. `company_language` is the `company.language` setting, which
    /// customers in a language without built-in templates get.
    pub(crate) fn new(company_language: &str) -> MessageTemplates {
        let mut environment = Environment::new();
        set_escaping(&mut environment);
        for set in &BUILT_IN {
            for part in [Part::Subject, Part::Text, Part::Html] {
                let name = format!("{}/{}", set.language, part.builtin_file());
                environment
                    .add_template_owned(name.clone(), part.builtin_source(set))
                    .unwrap_or_else(|e| panic!("built-in template {name} does not parse: {e}"));
            }
        }
        MessageTemplates {
            environment,
            fallback: pick_language(company_language, "en"),
        }
    }

    /// Renders the subject and bodies of `invoice`. For each of them the first template found
    /// wins: `templates` in the customer's language (`de-at`, then `de`), then in the
    /// language of the built-in fallback, then the built-in template. `corrected` is true
    /// when an earlier revision of the invoice was sent.
    pub(crate) fn compose(
        &self,
        invoice: &Invoice,
        company: &str,
        company_email: &str,
        templates: &Templates,
        corrected: bool,
    ) -> Result<ComposedMessage, MessageError> {
        let context = |language: &str| {
            let locale = Locale::from_language_tag(language).unwrap_or(Locale::English);
            MessageContext {
                number: &invoice.number,
                credit_note: invoice.kind == InvoiceKind::CreditNote,
                customer: &invoice.customer.name,
                issued_date: locale.format_date(invoice.issued_date),
                due_date: format_date_text(locale, &invoice.due_date),
                total: locale.format_decimal(&invoice.total),
                currency: &invoice.currency,
                amount: locale.format_money(&invoice.total, &invoice.currency),
                corrected,
                po_number: &invoice.po_number,
                company,
                company_email,
            }
        };
        let languages = template_languages(&invoice.customer.language, self.fallback);
        let builtin_language = pick_language(&invoice.customer.language, self.fallback);
        let render = |part: Part| {
            let custom = languages.iter().find_map(|language| {
                let source = templates.get(language).and_then(|t| part.source(t))?;
                Some((language, source))
            });
            let (name, result) = match custom {
                Some((language, source)) => {
                    let name = format!("templates.{language}.{}", part.field());
                    let result =
                        self.environment
                            .render_named_str(&name, source, context(language));
                    (name, result)
                }
                None => {
                    let name = format!("{builtin_language}/{}", part.builtin_file());
                    let result = self
                        .environment
                        .get_template(&name)
                        .and_then(|template| template.render(context(builtin_language)));
                    (name, result)
                }
            };
            match result {
                Ok(text) => Ok((name, text)),
                Err(source) => Err(MessageError::Render {
                    template: name,
                    source,
                }),
            }
        };
        let (subject_template, subject) = render(Part::Subject)?;
        // A header value must stay on one line whatever the data holds.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        // mail-delivery would reject a longer one before any SMTP, as would audit-log the
        // email log entry, so the delivery ends here with the template named.
        if subject.len() > MAX_SUBJECT_BYTES {
            return Err(MessageError::SubjectTooLong {
                template: subject_template,
                bytes: subject.len(),
            });
        }
        Ok(ComposedMessage {
            subject,
            text_body: render(Part::Text)?.1,
            html_body: render(Part::Html)?.1,
        })
    }
}

/// One of the three templates of an email.
#[derive(Clone, Copy)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    /// Returns the key in a notifier's templates.
    fn field(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }

    fn builtin_file(self) -> &'static str {
        match self {
            Part::Subject => "subject.txt",
            Part::Text => "body.txt",
            Part::Html => "body.html",
        }
    }

    fn builtin_source(self, set: &BuiltIn) -> &'static str {
        match self {
            Part::Subject => set.subject,
            Part::Text => set.text,
            Part::Html => set.html,
        }
    }

    fn source(self, template: &MessageTemplate) -> Option<&str> {
        match self {
            Part::Subject => template.subject.as_deref(),
            Part::Text => template.text.as_deref(),
            Part::Html => template.html.as_deref(),
        }
    }
}

/// The variables of every template; `VARIABLES` lists their names.
#[derive(Serialize)]
struct MessageContext<'a> {
    number: &'a str,
    credit_note: bool,
    customer: &'a str,
    issued_date: String,
    due_date: String,
    total: String,
    currency: &'a str,
    /// The total with its currency as the PDF prints it: `1,234.56 EUR`, `1.234,56 €`.
    amount: String,
    /// Whether an earlier revision of this invoice was sent, so this one corrects it.
    corrected: bool,
    po_number: &'a str,
    company: &'a str,
    company_email: &'a str,
}

pub(crate) const VARIABLES: &[&str] = &[
    "number",
    "credit_note",
    "customer",
    "issued_date",
    "due_date",
    "total",
    "currency",
    "amount",
    "corrected",
    "po_number",
    "company",
    "company_email",
];

/// Formats an ISO date (`2026-12-31`) for `locale`. Anything else, such as the empty due date
/// of an invoice without one, is returned as it is.
fn format_date_text(locale: Locale, date: &str) -> String {
    match NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d") {
        Ok(date) => locale.format_date(date),
        Err(_) => date.to_owned(),
    }
}

/// `.html` templates are escaped automatically; plain text and subjects are not.
fn set_escaping(environment: &mut Environment<'_>) {
    environment.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
}

/// Checks a notifier template named `name` (such as `templates.en.subject`): it must parse,
/// use only the known variables, and render a sample invoice and a sample credit note, each
/// first sent and corrected, with minijinja's strict undefined behavior. Returns the reason when it does not.
pub(crate) fn check_template(name: &str, source: &str) -> Result<(), String> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    set_escaping(&mut environment);
    let template = environment
        .template_from_named_str(name, source)
        .map_err(|error| format!("template {name} does not parse: {error}"))?;

    let globals: HashSet<&str> = environment.globals().map(|(global, _)| global).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|variable| {
            !VARIABLES.contains(&variable.as_str()) && !globals.contains(variable.as_str())
        })
        .collect();
    unknown.sort();
    if let Some(variable) = unknown.first() {
        return Err(format!(
            "template {name} uses the unknown variable {variable:?}; the variables are {}",
            VARIABLES.join(", ")
        ));
    }

    let kinds = [false, true].into_iter().flat_map(|credit_note| {
        [false, true]
            .into_iter()
            .map(move |corrected| (credit_note, corrected))
    });
    for (credit_note, corrected) in kinds {
        let sample = MessageContext {
            number: "INV-1",
            credit_note,
            customer: "Sample Customer",
            issued_date: "1 December 2026".to_owned(),
            due_date: "31 December 2026".to_owned(),
            total: "1,234.50".to_owned(),
            currency: "EUR",
            amount: "1,234.50\u{a0}EUR".to_owned(),
            corrected,
            po_number: "PO-1",
            company: "Sample Company",
            company_email: "billing@company.example",
        };
        let rendered = template
            .render(&sample)
            .map_err(|error| format!("template {name} failed on a sample invoice: {error}"))?;
        if name.ends_with(".subject") && rendered.len() > MAX_SUBJECT_BYTES {
            return Err(format!(
                "template {name} gives a subject of {} bytes for a sample invoice, more than the {MAX_SUBJECT_BYTES} an email takes; shorten it",
                rendered.len()
            ));
        }
    }
    Ok(())
}

/// Lists the languages whose notifier templates apply to a customer, best first: the whole
/// tag lowercased, its primary subtag, then the language of the built-in template it gets.
fn template_languages(tag: &str, fallback: &'static str) -> Vec<String> {
    let whole = tag.trim().replace('_', "-").to_ascii_lowercase();
    let primary = whole.split('-').next().unwrap_or("").to_owned();
    let mut languages = Vec::new();
    for language in [whole, primary, pick_language(tag, fallback).to_owned()] {
        if !language.is_empty() && !languages.contains(&language) {
            languages.push(language);
        }
    }
    languages
}

/// Picks the primary subtag of a BCP 47 tag when a built-in template exists for it, else
/// `fallback`.
fn pick_language(tag: &str, fallback: &'static str) -> &'static str {
    let Some(locale) = Locale::from_language_tag(tag) else {
        return fallback;
    };
    BUILT_IN
        .iter()
        .map(|set| set.language)
        .find(|language| *language == locale.code())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_falls_back_to_english() {
        assert_eq!(pick_language("de-AT", "en"), "de");
        assert_eq!(pick_language("pt", "en"), "pt");
        assert_eq!(pick_language("it", "en"), "en");
        assert_eq!(pick_language("", "en"), "en");
        assert_eq!(pick_language("it", "de"), "de");
    }

    fn sample_invoice(language: &str, kind: InvoiceKind) -> Invoice {
        Invoice {
            number: "INV-7".to_owned(),
            revision: 1,
            kind,
            issued_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            due_date: "2026-12-31".to_owned(),
            currency: "EUR".to_owned(),
            total: "12.50".to_owned(),
            po_number: String::new(),
            notify_opt_out: false,
            customer: crate::upstream::Customer {
                code: "C-1".to_owned(),
                name: "Müller & Söhne".to_owned(),
                language: language.to_owned(),
                contacts: Vec::new(),
            },
            raw: crate::api::RawInvoice::default(),
        }
    }

    fn templates(language: &str, template: MessageTemplate) -> Templates {
        Templates::from([(language.to_owned(), template)])
    }

    fn subject_only(subject: &str) -> MessageTemplate {
        MessageTemplate {
            subject: Some(subject.to_owned()),
            ..MessageTemplate::default()
        }
    }

    fn compose(invoice: &Invoice, templates: &Templates) -> ComposedMessage {
        compose_for_company(invoice, templates, "en")
    }

    /// Composes as [`compose`] does, for a company whose `company.language` is
    /// `company_language`.
    fn compose_for_company(
        invoice: &Invoice,
        templates: &Templates,
        company_language: &str,
    ) -> ComposedMessage {
        MessageTemplates::new(company_language)
            .compose(
                invoice,
                "Seller",
                "billing@seller.example",
                templates,
                false,
            )
            .unwrap()
    }

    /// A corrected invoice is marked in the subject and the first paragraph, in the
    /// customer's language; the French subject agrees with the kind's gender.
    #[test]
    fn corrected_revision_is_marked() {
        let cases = [
            (
                "en",
                InvoiceKind::Invoice,
                "Invoice INV-7 from Seller (corrected)",
                "This corrected version replaces the one sent before.",
            ),
            (
                "de",
                InvoiceKind::Invoice,
                "Rechnung INV-7 von Seller (korrigiert)",
                "Diese korrigierte Fassung ersetzt die zuvor versandte.",
            ),
            (
                "fr",
                InvoiceKind::CreditNote,
                "Avoir INV-7 – Seller (corrigé)",
                "Cette version corrigée remplace celle envoyée précédemment.",
            ),
            (
                "fr",
                InvoiceKind::Invoice,
                "Facture INV-7 – Seller (corrigée)",
                "Cette version corrigée remplace celle envoyée précédemment.",
            ),
            (
                "es",
                InvoiceKind::CreditNote,
                "Nota de crédito INV-7 de Seller (corregida)",
                "Esta versión corregida sustituye a la enviada anteriormente.",
            ),
            (
                "pt-BR",
                InvoiceKind::Invoice,
                "Fatura INV-7 de Seller (corrigida)",
                "Esta versão corrigida substitui a enviada anteriormente.",
            ),
            (
                "nl",
                InvoiceKind::Invoice,
                "Factuur INV-7 van Seller (gecorrigeerd)",
                "Deze gecorrigeerde versie vervangt de eerder verzonden versie.",
            ),
        ];
        for (language, kind, subject, sentence) in cases {
            let invoice = sample_invoice(language, kind);
            let message = MessageTemplates::new("en")
                .compose(
                    &invoice,
                    "Seller",
                    "billing@seller.example",
                    &Templates::new(),
                    true,
                )
                .unwrap();
            assert_eq!(message.subject, subject, "{language}");
            assert_contains(&message.text_body, sentence, language);
            assert_contains(&message.html_body, sentence, language);

            let first = compose(&invoice, &Templates::new());
            assert!(!first.subject.contains('('), "{}", first.subject);
            assert!(!first.text_body.contains(sentence), "{}", first.text_body);
        }
    }

    /// Asserts that `text` contains `part`, naming `case` and printing `text` otherwise.
    fn assert_contains(text: &str, part: &str, case: &str) {
        assert!(text.contains(part), "{case}: {part:?} not in {text}");
    }

    #[test]
    fn template_languages_best_first() {
        assert_eq!(template_languages("de-AT", "en"), ["de-at", "de"]);
        assert_eq!(template_languages("pt_BR", "en"), ["pt-br", "pt"]);
        assert_eq!(template_languages("it-CH", "en"), ["it-ch", "it", "en"]);
        assert_eq!(template_languages("it-CH", "fr"), ["it-ch", "it", "fr"]);
        assert_eq!(template_languages("", "en"), ["en"]);
    }

    #[test]
    fn notifier_subject_replaces_builtin_only_for_subject() {
        let invoice = sample_invoice("en", InvoiceKind::Invoice);
        let message = compose(
            &invoice,
            &templates("en", subject_only("Bill {{ number }}")),
        );
        assert_eq!(message.subject, "Bill INV-7");
        assert!(
            message.text_body.starts_with("Dear Müller & Söhne,"),
            "{}",
            message.text_body
        );
    }

    #[test]
    fn region_template_wins_over_language_template() {
        let invoice = sample_invoice("de-AT", InvoiceKind::Invoice);
        let mut set = templates("de", subject_only("Rechnung {{ number }}"));
        set.insert("de-at".to_owned(), subject_only("Honorarnote {{ number }}"));
        assert_eq!(compose(&invoice, &set).subject, "Honorarnote INV-7");
    }

    #[test]
    fn english_notifier_template_beats_builtin_fallback() {
        let invoice = sample_invoice("it", InvoiceKind::Invoice);
        let set = templates("en", subject_only("Custom {{ number }}"));
        assert_eq!(compose(&invoice, &set).subject, "Custom INV-7");
    }

    #[test]
    fn german_customer_keeps_builtin_german_over_english_notifier() {
        let invoice = sample_invoice("de", InvoiceKind::CreditNote);
        let set = templates("en", subject_only("Custom {{ number }}"));
        assert_eq!(
            compose(&invoice, &set).subject,
            "Gutschrift INV-7 von Seller"
        );
    }

    #[test]
    fn german_body_formats_like_pdf() {
        let mut invoice = sample_invoice("de-AT", InvoiceKind::Invoice);
        invoice.total = "1234.50".to_owned();
        let message = compose(&invoice, &Templates::new());
        let expected = "vom 01.12.2026 über 1.234,50\u{a0}€. Sie ist fällig am 31.12.2026.";
        assert!(
            message.text_body.contains(expected),
            "{}",
            message.text_body
        );
        assert!(
            message.html_body.contains(expected),
            "{}",
            message.html_body
        );
    }

    #[test]
    fn english_body_formats_like_pdf() {
        let mut invoice = sample_invoice("en-GB", InvoiceKind::Invoice);
        invoice.total = "-1234.50".to_owned();
        let message = compose(&invoice, &Templates::new());
        let expected = "of 1 December 2026 for -1,234.50\u{a0}EUR. It is due on 31 December 2026.";
        assert!(
            message.text_body.contains(expected),
            "{}",
            message.text_body
        );
    }

    /// Italian has no built-in template, so an Italian customer reads the English body with
    /// English numbers. A French notifier template gets French ones, and `amount` the total
    /// with the euro sign where the French PDF puts it.
    #[test]
    fn formats_follow_template_language() {
        let mut invoice = sample_invoice("it", InvoiceKind::Invoice);
        invoice.total = "1234.50".to_owned();
        let builtin = compose(&invoice, &Templates::new());
        assert!(
            builtin.text_body.contains("for 1,234.50\u{a0}EUR"),
            "{}",
            builtin.text_body
        );

        invoice.customer.language = "fr".to_owned();
        let french = templates(
            "fr",
            MessageTemplate {
                text: Some(
                    "Facture du {{ issued_date }} : {{ total }} {{ currency }} ({{ amount }})"
                        .to_owned(),
                ),
                ..MessageTemplate::default()
            },
        );
        assert_eq!(
            compose(&invoice, &french).text_body,
            "Facture du 1 décembre 2026 : 1\u{202f}234,50 EUR (1\u{202f}234,50\u{a0}€)"
        );
    }

    /// Each language the PDF has labels for has a built-in email, so the email reads in the
    /// language of its attachment.
    #[test]
    fn every_pdf_language_has_builtin_email() {
        for locale in Locale::ALL {
            assert_eq!(pick_language(locale.code(), "en"), locale.code());
        }
        assert_eq!(BUILT_IN.len(), Locale::ALL.len());
    }

    /// The built-in emails of French, Spanish, Portuguese and Dutch customers: subject, kind,
    /// date and total in the customer's language, and both bodies saying the same.
    #[test]
    fn builtin_emails_in_customer_language() {
        let cases = [
            (
                "fr-CA",
                InvoiceKind::Invoice,
                "Facture INV-7 – Seller",
                "la facture INV-7 du 1 décembre 2026 d'un montant de 1\u{202f}234,50\u{a0}€. \
                 Échéance\u{a0}: 31 décembre 2026.",
            ),
            (
                "es",
                InvoiceKind::CreditNote,
                "Nota de crédito INV-7 de Seller",
                "la nota de crédito INV-7 con fecha 1 de diciembre de 2026 por un importe de \
                 1234,50\u{a0}€. Fecha de vencimiento: 31 de diciembre de 2026.",
            ),
            (
                "pt-BR",
                InvoiceKind::Invoice,
                "Fatura INV-7 de Seller",
                "a fatura INV-7 com data de 1 de dezembro de 2026 no valor de €\u{a0}1.234,50. \
                 Vencimento: 31 de dezembro de 2026.",
            ),
            (
                "nl",
                InvoiceKind::CreditNote,
                "Creditnota INV-7 van Seller",
                "creditnota INV-7 van 1 december 2026 ter waarde van €\u{a0}1.234,50. \
                 Vervaldatum: 31 december 2026.",
            ),
        ];
        for (language, kind, subject, sentence) in cases {
            let mut invoice = sample_invoice(language, kind);
            invoice.total = "1234.50".to_owned();
            let message = compose(&invoice, &Templates::new());
            assert_eq!(message.subject, subject, "{language}");
            assert_contains(&message.text_body, sentence, language);
            let html_sentence = sentence.replacen("INV-7", "<strong>INV-7</strong>", 1);
            assert_contains(&message.html_body, &html_sentence, language);
            assert_contains(&message.html_body, "Müller &amp; Söhne", language);
        }
    }

    /// A due date the ERP gave as text and a purchase order number read well in each new
    /// language, worded as the PDF labels them.
    #[test]
    fn builtin_emails_with_text_due_date_and_order() {
        let cases = [
            (
                "fr",
                "à réception",
                "Échéance\u{a0}: à réception. Votre bon de commande\u{a0}: PO-1.",
            ),
            (
                "es",
                "a la recepción",
                "Fecha de vencimiento: a la recepción. Su orden de compra: PO-1.",
            ),
            (
                "pt",
                "na entrega",
                "Vencimento: na entrega. Sua ordem de compra: PO-1.",
            ),
            (
                "nl",
                "bij ontvangst",
                "Vervaldatum: bij ontvangst. Uw inkooporder: PO-1.",
            ),
        ];
        for (language, due_date, sentence) in cases {
            let mut invoice = sample_invoice(language, InvoiceKind::Invoice);
            invoice.due_date = due_date.to_owned();
            invoice.po_number = "PO-1".to_owned();
            let message = compose(&invoice, &Templates::new());
            assert_contains(&message.text_body, sentence, language);
            assert_contains(&message.html_body, sentence, language);
        }
    }

    /// A customer whose language has no built-in email gets the built-in one of
    /// `company.language`, as its PDF gets that language's labels.
    #[test]
    fn company_language_is_the_fallback() {
        let invoice = sample_invoice("it", InvoiceKind::Invoice);
        let message = compose_for_company(&invoice, &Templates::new(), "de-CH");
        assert_eq!(message.subject, "Rechnung INV-7 von Seller");
        assert_contains(&message.text_body, "vom 01.12.2026", "de-CH");

        let english = compose_for_company(&invoice, &Templates::new(), "ja");
        assert_eq!(english.subject, "Invoice INV-7 from Seller");
    }

    /// Every built-in HTML body ends with the company's email address, as the text body does.
    #[test]
    fn builtin_html_signs_with_company_email() {
        for set in &BUILT_IN {
            let invoice = sample_invoice(set.language, InvoiceKind::Invoice);
            let message = compose(&invoice, &Templates::new());
            assert!(
                message
                    .html_body
                    .ends_with("<br>Seller<br>billing@seller.example</p>"),
                "{}: {}",
                set.language,
                message.html_body
            );
            assert!(
                message
                    .text_body
                    .ends_with("Seller\nbilling@seller.example"),
                "{}: {:?}",
                set.language,
                message.text_body
            );
        }
    }

    #[test]
    fn due_date_text_kept() {
        let mut invoice = sample_invoice("de", InvoiceKind::Invoice);
        invoice.due_date = "on receipt".to_owned();
        let body = compose(&invoice, &Templates::new()).text_body;
        assert!(body.contains("fällig am on receipt."), "{body}");

        invoice.due_date = String::new();
        let body = compose(&invoice, &Templates::new()).text_body;
        assert!(!body.contains("fällig"), "{body}");
    }

    #[test]
    fn subject_over_998_bytes_rejected() {
        let mut invoice = sample_invoice("fr", InvoiceKind::Invoice);
        invoice.customer.name = "N".repeat(500);
        let set = templates("fr", subject_only("{{ customer }} {{ customer }}"));
        let error = MessageTemplates::new("en")
            .compose(&invoice, "Seller", "billing@seller.example", &set, false)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("templates.fr.subject"), "{error}");
        assert!(error.contains("subject of 1001 bytes"), "{error}");
    }

    #[test]
    fn check_template_rejects_long_subject() {
        let source = "{% for i in range(1000) %}x{% endfor %}";
        let error = check_template("templates.fr.subject", source).unwrap_err();
        assert!(error.contains("subject of 1000 bytes"), "{error}");
        assert_eq!(check_template("templates.fr.text", source), Ok(()));
    }

    #[test]
    fn notifier_html_template_escapes_values() {
        let invoice = sample_invoice("en", InvoiceKind::Invoice);
        let html = MessageTemplate {
            html: Some("<p>{{ customer }}</p>".to_owned()),
            ..MessageTemplate::default()
        };
        let message = compose(&invoice, &templates("en", html));
        assert_eq!(message.html_body, "<p>Müller &amp; Söhne</p>");
    }

    #[test]
    fn check_template_accepts_known_variables() {
        let source =
            "{% if credit_note %}Credit{% endif %} {{ number | upper }} {{ range(2) | length }}";
        assert_eq!(check_template("templates.en.subject", source), Ok(()));
    }

    #[test]
    fn check_template_rejects_syntax_error() {
        let error = check_template("templates.en.subject", "Invoice {% if number %}").unwrap_err();
        assert!(error.contains("templates.en.subject"), "{error}");
        assert!(error.contains("does not parse"), "{error}");
    }

    #[test]
    fn check_template_rejects_unknown_variable() {
        let error = check_template("templates.de.text", "Hallo {{ kunde }}").unwrap_err();
        assert!(error.contains("templates.de.text"), "{error}");
        assert!(error.contains("\"kunde\""), "{error}");
    }

    #[test]
    fn check_template_rejects_unknown_variable_in_untaken_branch() {
        let error = check_template(
            "templates.en.html",
            "{% if false %}{{ missing }}{% endif %}",
        )
        .unwrap_err();
        assert!(error.contains("\"missing\""), "{error}");
    }

    #[test]
    fn check_template_rejects_undefined_attribute() {
        let error = check_template("templates.en.subject", "{{ number.digits }}").unwrap_err();
        assert!(error.contains("failed on a sample invoice"), "{error}");
    }

    #[test]
    fn variables_match_context_fields() {
        let invoice = sample_invoice("en", InvoiceKind::Invoice);
        let context = MessageContext {
            number: &invoice.number,
            credit_note: false,
            customer: "",
            issued_date: String::new(),
            due_date: String::new(),
            total: String::new(),
            currency: "",
            amount: String::new(),
            corrected: false,
            po_number: "",
            company: "",
            company_email: "",
        };
        let value = serde_json::to_value(&context).unwrap();
        let mut fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        let mut expected = VARIABLES.to_vec();
        expected.sort();
        assert_eq!(fields, expected);
    }
}
