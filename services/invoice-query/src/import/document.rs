//! Telling a JSON document from JSON Lines, and splitting either into records.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::customer::check_customer;
use super::fields::json_kind;
use super::invoice::{ValidInvoice, check_invoice};
use super::{CheckedRecord, ParsedExport, UntypedRecord};
use crate::model::{Customer, RecordType, Rejection};

/// The `format` value of a JSON document in this export format.
pub const FORMAT: &str = "invoicer.erp-export.v1";

/// Parses an export. An error means that the document as a whole is malformed (not UTF-8,
/// not JSON, an unknown `format`), so nothing may be imported. Problems with single records
/// are in the returned records instead.
pub(crate) fn parse_export(bytes: &[u8]) -> Result<ParsedExport, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        format!(
            "the document is not valid UTF-8: invalid byte at offset {}",
            error.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err("the document is empty".to_owned());
    }
    let mut export = match read_top_level(text) {
        Ok(TopLevel::Object(object)) if object.format.is_some() => object.into_export()?,
        Ok(TopLevel::Object(object)) if object.has_type => parse_json_lines(text)?,
        Ok(TopLevel::Object(_)) => {
            return Err(format!(
                "missing field \"format\": a JSON document needs \"format\": {FORMAT:?}, and each \
                 JSON Lines record a \"type\" of \"customer\" or \"invoice\""
            ));
        }
        Ok(TopLevel::Other(kind)) => {
            return Err(format!(
                "the document must be a JSON object or JSON Lines of objects, found {kind}"
            ));
        }
        Err(_) if first_line_is_object(text) => parse_json_lines(text)?,
        Err(error) => return Err(format!("the document is not valid JSON: {error}")),
    };
    export.reject_duplicates();
    Ok(export)
}

fn first_line_is_object(text: &str) -> bool {
    let Some(first) = text.lines().find(|line| !line.trim().is_empty()) else {
        return false;
    };
    matches!(serde_json::from_str::<Value>(first), Ok(Value::Object(_)))
}

/// The whole text read as one JSON value: an object, or the kind of anything else.
enum TopLevel {
    Object(DocumentObject),
    Other(String),
}

/// A top-level object, read one member at a time. The records of `customers` and `invoices`
/// are checked as they are read, so only one record's JSON tree is in memory at a time, not
/// the tree of the whole document, which takes about ten times the document's size.
#[derive(Default)]
struct DocumentObject {
    format: Option<Value>,
    /// The object has a `type` member, as a one-line JSON Lines document has.
    has_type: bool,
    /// Members other than `format`, `customers` and `invoices`, in document order.
    unknown: Vec<String>,
    /// A member that appeared more than once.
    repeated: Option<String>,
    customers: Option<RecordList<Customer>>,
    invoices: Option<RecordList<ValidInvoice>>,
}

/// The records of a top-level array, or the kind of the value that is not an array.
type RecordList<T> = Result<Vec<CheckedRecord<T>>, String>;

impl DocumentObject {
    /// Applies the document-level checks, in this order: the format, unknown and repeated
    /// members, then the two arrays.
    fn into_export(self) -> Result<ParsedExport, String> {
        let format = self.format.unwrap_or(Value::Null);
        if format.as_str() != Some(FORMAT) {
            return Err(format!(
                "unsupported format {format}: expected \"format\": {FORMAT:?}"
            ));
        }
        if let Some(unknown) = self.unknown.first() {
            return Err(format!(
                "unknown top-level field {unknown:?}: a document has only \"format\", \"customers\" \
                 and \"invoices\""
            ));
        }
        if let Some(name) = self.repeated {
            return Err(format!(
                "top-level field {name:?} appears more than once; write it once"
            ));
        }
        let customers = self.customers.unwrap_or(Ok(Vec::new()));
        let customers =
            customers.map_err(|kind| format!("\"customers\" must be an array, found {kind}"))?;
        let invoices = self.invoices.unwrap_or(Ok(Vec::new()));
        let invoices =
            invoices.map_err(|kind| format!("\"invoices\" must be an array, found {kind}"))?;
        Ok(ParsedExport {
            customers,
            invoices,
            untyped: Vec::new(),
        })
    }
}

fn read_top_level(text: &str) -> Result<TopLevel, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let top = deserializer.deserialize_any(TopLevelVisitor)?;
    deserializer.end()?;
    Ok(top)
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut object = DocumentObject::default();
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                object.repeated.get_or_insert_with(|| name.clone());
            }
            match name.as_str() {
                "format" => object.format = Some(map.next_value()?),
                "customers" => {
                    let records = map.next_value_seed(RecordsSeed {
                        name: "customers",
                        check: |value: &Value, path: &str| check_customer(value, path, false),
                    })?;
                    object.customers = Some(records);
                }
                "invoices" => {
                    let records = map.next_value_seed(RecordsSeed {
                        name: "invoices",
                        check: |value: &Value, path: &str| check_invoice(value, path, false),
                    })?;
                    object.invoices = Some(records);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    object.has_type |= name == "type";
                    object.unknown.push(name);
                }
            }
        }
        Ok(TopLevel::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other("an array".to_owned()))
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::Null)))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::Bool(flag))))
    }

    fn visit_i64<E>(self, number: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::from(number))))
    }

    fn visit_u64<E>(self, number: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::from(number))))
    }

    fn visit_f64<E>(self, number: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::from(number))))
    }

    fn visit_str<E>(self, text: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_kind(&Value::from(text))))
    }
}

/// Reads the value of a top-level array member and checks each element as it is read.
struct RecordsSeed<F> {
    name: &'static str,
    check: F,
}

impl<'de, T, F> DeserializeSeed<'de> for RecordsSeed<F>
where
    F: Fn(&Value, &str) -> CheckedRecord<T>,
{
    type Value = RecordList<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T, F> Visitor<'de> for RecordsSeed<F>
where
    F: Fn(&Value, &str) -> CheckedRecord<T>,
{
    type Value = RecordList<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "the array {:?}", self.name)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element::<Value>()? {
            let path = format!("{}[{}]", self.name, records.len());
            records.push((self.check)(&value, &path));
        }
        Ok(Ok(records))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err("an object".to_owned()))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::Bool(flag))))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(number))))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(number))))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(number))))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Err(json_kind(&Value::from(text))))
    }
}

fn parse_json_lines(text: &str) -> Result<ParsedExport, String> {
    let mut export = ParsedExport::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        let value: Value = serde_json::from_str(line).map_err(|error| {
            format!("line {line_number} of the JSON Lines document is not valid JSON: {error}")
        })?;
        let path = format!("line[{line_number}]");
        match value.get("type").and_then(Value::as_str) {
            Some("customer") => export.customers.push(check_customer(&value, &path, true)),
            Some("invoice") => export.invoices.push(check_invoice(&value, &path, true)),
            _ => export.untyped.push(untyped_rejection(&value, &path)),
        }
    }
    Ok(export)
}

fn untyped_rejection(value: &Value, path: &str) -> UntypedRecord {
    let key = ["number", "code"]
        .iter()
        .find_map(|name| value.get(name).and_then(Value::as_str))
        .unwrap_or_default();
    let message = match value.get("type") {
        _ if !value.is_object() => format!("must be a JSON object, found {}", json_kind(value)),
        None | Some(Value::Null) => {
            "missing required field: expected \"customer\" or \"invoice\"".to_owned()
        }
        Some(other) => format!("invalid value {other}: expected \"customer\" or \"invoice\""),
    };
    let rejection = Rejection {
        record_type: RecordType::Unknown,
        key: key.to_owned(),
        field: format!("{path}.type"),
        message,
    };
    let customer_like = value.get("code").is_some() && value.get("number").is_none();
    let counts_as = if customer_like {
        RecordType::Customer
    } else {
        RecordType::Invoice
    };
    UntypedRecord {
        rejection,
        counts_as,
    }
}
