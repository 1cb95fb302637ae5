//! The subject and body of an invoice email, rendered with minijinja from invoice fields.
//! Templates exist per language; an unknown language falls back to English.

use minijinja::{Environment, context};

use crate::upstream::{Invoice, InvoiceKind};

#[derive(Debug, thiserror::Error)]
#[error("email template {template} failed: {source}")]
pub(crate) struct MessageError {
    template: String,
    source: minijinja::Error,
}

pub(crate) struct ComposedMessage {
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

const LANGUAGES: &[&str] = &["en", "de"];

const EN_SUBJECT: &str =
    "{% if credit_note %}Credit note{% else %}Invoice{% endif %} {{ number }} from {{ company }}";
const EN_TEXT: &str = "\
Dear {{ customer }},

please find attached {% if credit_note %}credit note{% else %}invoice{% endif %} {{ number }} \
of {{ issued_date }} for {{ total }} {{ currency }}.
{%- if due_date %} It is due on {{ due_date }}.{% endif %}
{%- if po_number %} Your purchase order: {{ po_number }}.{% endif %}

Kind regards
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
";
const EN_HTML: &str = "\
<p>Dear {{ customer }},</p>
<p>please find attached {% if credit_note %}credit note{% else %}invoice{% endif %} \
<strong>{{ number }}</strong> of {{ issued_date }} for {{ total }} {{ currency }}.
{%- if due_date %} It is due on {{ due_date }}.{% endif %}
{%- if po_number %} Your purchase order: {{ po_number }}.{% endif %}</p>
<p>Kind regards<br>{{ company }}</p>
";

const DE_SUBJECT: &str =
    "{% if credit_note %}Gutschrift{% else %}Rechnung{% endif %} {{ number }} von {{ company }}";
const DE_TEXT: &str = "\
Guten Tag {{ customer }},

anbei erhalten Sie {% if credit_note %}die Gutschrift{% else %}die Rechnung{% endif %} {{ number }} \
vom {{ issued_date }} über {{ total }} {{ currency }}.
{%- if due_date %} Sie ist fällig am {{ due_date }}.{% endif %}
{%- if po_number %} Ihre Bestellung: {{ po_number }}.{% endif %}

Mit freundlichen Grüßen
{{ company }}
{%- if company_email %}
{{ company_email }}{% endif %}
";
const DE_HTML: &str = "\
<p>Guten Tag {{ customer }},</p>
<p>anbei erhalten Sie {% if credit_note %}die Gutschrift{% else %}die Rechnung{% endif %} \
<strong>{{ number }}</strong> vom {{ issued_date }} über {{ total }} {{ currency }}.
{%- if due_date %} Sie ist fällig am {{ due_date }}.{% endif %}
{%- if po_number %} Ihre Bestellung: {{ po_number }}.{% endif %}</p>
<p>Mit freundlichen Grüßen<br>{{ company }}</p>
";

pub(crate) struct MessageTemplates {
    environment: Environment<'static>,
}

impl MessageTemplates {
    pub(crate) fn new() -> MessageTemplates {
        let mut environment = Environment::new();
        // `.html` templates are escaped automatically; plain text and subjects are not.
        environment.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        for (name, source) in [
            ("en/subject.txt", EN_SUBJECT),
            ("en/body.txt", EN_TEXT),
            ("en/body.html", EN_HTML),
            ("de/subject.txt", DE_SUBJECT),
            ("de/body.txt", DE_TEXT),
            ("de/body.html", DE_HTML),
        ] {
            environment
                .add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in template {name} does not parse: {e}"));
        }
        MessageTemplates { environment }
    }

    pub(crate) fn compose(
        &self,
        invoice: &Invoice,
        company: &str,
        company_email: &str,
    ) -> Result<ComposedMessage, MessageError> {
        let language = pick_language(&invoice.customer.language);
        let context = context! {
            number => invoice.number,
            credit_note => invoice.kind == InvoiceKind::CreditNote,
            customer => invoice.customer.name,
            issued_date => invoice.issued_at.date_naive().to_string(),
            due_date => invoice.due_date,
            total => invoice.total,
            currency => invoice.currency,
            po_number => invoice.po_number,
            company => company,
            company_email => company_email,
        };
        let render = |kind: &str| {
            let name = format!("{language}/{kind}");
            self.environment
                .get_template(&name)
                .and_then(|template| template.render(&context))
                .map_err(|source| MessageError {
                    template: name,
                    source,
                })
        };
        let subject = render("subject.txt")?;
        Ok(ComposedMessage {
            // A header value must stay on one line whatever the data holds.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text_body: render("body.txt")?,
            html_body: render("body.html")?,
        })
    }
}

/// The primary subtag of a BCP 47 tag when a template exists for it, else English.
fn pick_language(tag: &str) -> &'static str {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .copied()
        .find(|l| *l == primary)
        .unwrap_or("en")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_falls_back_to_english() {
        assert_eq!(pick_language("de-AT"), "de");
        assert_eq!(pick_language("pt"), "en");
        assert_eq!(pick_language(""), "en");
    }
}
