//! Reading the fields of one export record, collecting every problem with its JSON path
//! instead of stopping at the first one.

use invoicer_domain::{Currency, parse_decimal};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// One problem with one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldProblem {
    /// JSON path such as `invoices[3].lines[0].amount`.
    pub(crate) field: String,
    pub(crate) message: String,
}

/// Whether a text field may contain line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    Single,
    Multiple,
}

/// Maximum number of characters of a text value quoted in a message.
const EXCERPT_CHARS: usize = 60;

/// A JSON object being checked, and the path that leads to it.
pub(crate) struct Scope<'a> {
    pub(crate) object: &'a Map<String, Value>,
    pub(crate) path: String,
}

impl<'a> Scope<'a> {
    pub(crate) fn field_path(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }
}

/// Collects the problems of one record.
#[derive(Default)]
pub(crate) struct Checker {
    /// Problems that reject the record.
    pub(crate) problems: Vec<FieldProblem>,
    /// Problems that are reported but do not reject the record.
    pub(crate) warnings: Vec<FieldProblem>,
}

impl Checker {
    pub(crate) fn report(&mut self, field: String, message: impl Into<String>) {
        self.problems.push(FieldProblem {
            field,
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, field: String, message: impl Into<String>) {
        self.warnings.push(FieldProblem {
            field,
            message: message.into(),
        });
    }

    /// Views `value` as an object, or reports that it is not one.
    pub(crate) fn object<'a>(&mut self, value: &'a Value, path: &str) -> Option<Scope<'a>> {
        let Some(object) = value.as_object() else {
            self.report(
                path.to_owned(),
                format!("must be a JSON object, found {}", json_kind(value)),
            );
            return None;
        };
        Some(Scope {
            object,
            path: path.to_owned(),
        })
    }

    /// Reports every field of `scope` that is not in `known`, so a misspelled field such as
    /// `notify_optout` is never ignored silently.
    pub(crate) fn reject_unknown_fields(&mut self, scope: &Scope<'_>, known: &[&str]) {
        for name in scope.object.keys() {
            if !known.contains(&name.as_str()) {
                let expected = known.join(", ");
                self.report(
                    scope.field_path(name),
                    format!("unknown field {name:?}; known fields are {expected}"),
                );
            }
        }
    }

    pub(crate) fn required_text(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        lines: Lines,
    ) -> Option<String> {
        let text = self.optional_text(scope, name, lines);
        if text.is_none() && scope.get(name).is_none() {
            self.report(scope.field_path(name), "missing required field");
        }
        text
    }

    /// Reads a string field; `null` counts as absent.
    pub(crate) fn optional_text(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        lines: Lines,
    ) -> Option<String> {
        let value = scope.get(name)?;
        let Some(text) = value.as_str() else {
            self.report(
                scope.field_path(name),
                format!("must be a string, found {}", json_kind(value)),
            );
            return None;
        };
        if let Err(message) = check_text(text, lines) {
            self.report(scope.field_path(name), message);
            return None;
        }
        Some(text.to_owned())
    }

    /// Reads a key field (customer code, invoice number): required, non-empty, at most
    /// `max_chars` characters, printable, and without leading or trailing white space.
    pub(crate) fn key(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        max_chars: usize,
    ) -> Option<String> {
        let text = self.required_text(scope, name, Lines::Single)?;
        match check_key(&text, max_chars) {
            Ok(()) => Some(text),
            Err(message) => {
                self.report(scope.field_path(name), message);
                None
            }
        }
    }

    /// Reads an optional string field whose value must be one of `allowed`.
    pub(crate) fn choice<T>(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        parse: fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Option<T> {
        let text = self.optional_text(scope, name, Lines::Single)?;
        let parsed = parse(&text);
        if parsed.is_none() {
            let expected = quote_all(allowed);
            self.report(
                scope.field_path(name),
                format!(
                    "invalid value {}: expected one of {expected}",
                    excerpt(&text)
                ),
            );
        }
        parsed
    }

    pub(crate) fn required_choice<T>(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        parse: fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Option<T> {
        if scope.get(name).is_none() {
            let expected = quote_all(allowed);
            self.report(
                scope.field_path(name),
                format!("missing required field: expected one of {expected}"),
            );
            return None;
        }
        self.choice(scope, name, parse, allowed)
    }

    /// Reads a decimal string with any number of fraction digits, such as a quantity or rate.
    pub(crate) fn optional_decimal(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
    ) -> Option<(String, Decimal)> {
        let text = self.decimal_text(scope, name)?;
        match parse_decimal(&text) {
            Ok(value) => Some((text, value)),
            Err(error) => {
                self.report(scope.field_path(name), error.to_string());
                None
            }
        }
    }

    /// Reads a required amount: a decimal string with at most `currency`'s minor digits. With
    /// no valid currency only the decimal syntax is checked.
    pub(crate) fn amount(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        currency: Option<Currency>,
    ) -> Option<(String, Decimal)> {
        if scope.get(name).is_none() {
            self.report(scope.field_path(name), "missing required field");
            return None;
        }
        let (text, value) = self.optional_decimal(scope, name)?;
        if let Some(currency) = currency
            && let Err(error) = currency.check_minor_digits(&value, &text)
        {
            self.report(scope.field_path(name), error.to_string());
            return None;
        }
        Some((text, value))
    }

    fn decimal_text(&mut self, scope: &Scope<'_>, name: &str) -> Option<String> {
        let value = scope.get(name)?;
        if value.is_number() {
            // JSON numbers are floats to many parsers, so the export sends amounts as strings.
            self.report(
                scope.field_path(name),
                format!(
                    "must be a decimal string such as \"{value}\", found the JSON number {value}"
                ),
            );
            return None;
        }
        self.optional_text(scope, name, Lines::Single)
    }

    /// Reads an optional boolean; absent or `null` is `false`.
    pub(crate) fn flag(&mut self, scope: &Scope<'_>, name: &str) -> bool {
        let Some(value) = scope.get(name) else {
            return false;
        };
        value.as_bool().unwrap_or_else(|| {
            self.report(
                scope.field_path(name),
                format!("must be true or false, found {}", json_kind(value)),
            );
            false
        })
    }

    /// Reads an array field and returns its elements with their paths. A missing required
    /// array is reported; a missing optional one is empty.
    pub(crate) fn array<'a>(
        &mut self,
        scope: &Scope<'a>,
        name: &str,
        required: bool,
    ) -> Vec<(String, &'a Value)> {
        let Some(value) = scope.get(name) else {
            if required {
                self.report(scope.field_path(name), "missing required field");
            }
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.report(
                scope.field_path(name),
                format!("must be an array, found {}", json_kind(value)),
            );
            return Vec::new();
        };
        let path = scope.field_path(name);
        items
            .iter()
            .enumerate()
            .map(|(index, item)| (format!("{path}[{index}]"), item))
            .collect()
    }

    /// Reads an array of single-line strings.
    pub(crate) fn text_list(&mut self, scope: &Scope<'_>, name: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for (path, item) in self.array(scope, name, false) {
            let Some(text) = item.as_str() else {
                self.report(path, format!("must be a string, found {}", json_kind(item)));
                continue;
            };
            match check_text(text, Lines::Single) {
                Ok(()) => texts.push(text.to_owned()),
                Err(message) => self.report(path, message),
            }
        }
        texts
    }
}

fn quote_all(values: &[&str]) -> String {
    values
        .iter()
        .map(|value| format!("{value:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names the JSON type of `value` for messages.
pub(crate) fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("the string {}", excerpt(text)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Quotes `text` for a message, shortened to its first characters.
pub(crate) fn excerpt(text: &str) -> String {
    if text.chars().count() <= EXCERPT_CHARS {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(EXCERPT_CHARS).collect();
    format!("{head:?}…")
}

/// The maximum sizes pdf-render accepts for one line of text (a name, an address line) and for
/// text with line breaks (notes, a line description). A longer value could be imported but
/// never rendered, so the import rejects it. NOTE: pdf-render's 64-byte maximum of short
/// values such as the unit is not checked here, so such a value fails at render time.
const MAX_LINE_BYTES: usize = 512;
const MAX_MULTILINE_BYTES: usize = 8 << 10;

/// Rejects text longer than pdf-render prints, control characters other than tab, and line
/// breaks unless `lines` allows them. U+2028 and U+2029 count as line breaks although Unicode
/// does not class them as controls.
pub(crate) fn check_text(text: &str, lines: Lines) -> Result<(), String> {
    let max = match lines {
        Lines::Single => MAX_LINE_BYTES,
        Lines::Multiple => MAX_MULTILINE_BYTES,
    };
    if text.len() > max {
        return Err(format!(
            "value {} is {} bytes long, more than the {max} bytes an invoice PDF can print; \
             shorten it in the ERP",
            excerpt(text),
            text.len()
        ));
    }
    for (index, c) in text.chars().enumerate() {
        let line_break = matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if line_break && lines == Lines::Multiple {
            continue;
        }
        let position = index + 1;
        if line_break {
            return Err(format!(
                "value {} contains a line break (U+{:04X}) at character {position}; line breaks \
                 are allowed only in notes and line descriptions",
                excerpt(text),
                u32::from(c)
            ));
        }
        if c.is_control() && c != '\t' {
            return Err(format!(
                "value {} contains the control character U+{:04X} at character {position}; only tab \
                 is allowed",
                excerpt(text),
                u32::from(c)
            ));
        }
    }
    Ok(())
}

fn check_key(text: &str, max_chars: usize) -> Result<(), String> {
    let length = text.chars().count();
    if length == 0 {
        return Err("must not be empty".to_owned());
    }
    if length > max_chars {
        return Err(format!(
            "value {} is {length} characters long; the maximum is {max_chars}",
            excerpt(text)
        ));
    }
    if text.contains('\t') {
        return Err(format!(
            "value {} contains a tab; keys must be printable characters",
            excerpt(text)
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "value {} has leading or trailing white space",
            excerpt(text)
        ));
    }
    Ok(())
}
