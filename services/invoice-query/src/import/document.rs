//! Telling a JSON document from JSON Lines, and splitting either into records.

use serde_json::{Map, Value};

use super::customer::check_customer;
use super::fields::json_kind;
use super::invoice::check_invoice;
use super::{ParsedExport, UntypedRecord};
use crate::model::{RecordType, Rejection};

/// The `format` value of a JSON document in this export format.
pub const FORMAT: &str = "invoicer.erp-export.v1";

const TOP_LEVEL_FIELDS: &[&str] = &["format", "customers", "invoices"];

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
    let mut export = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) if object.contains_key("format") => parse_document(&object)?,
        Ok(Value::Object(object)) if object.contains_key("type") => parse_json_lines(text)?,
        Ok(Value::Object(_)) => {
            return Err(format!(
                "missing field \"format\": a JSON document needs \"format\": {FORMAT:?}, and each \
                 JSON Lines record a \"type\" of \"customer\" or \"invoice\""
            ));
        }
        Ok(other) => {
            return Err(format!(
                "the document must be a JSON object or JSON Lines of objects, found {}",
                json_kind(&other)
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

fn parse_document(object: &Map<String, Value>) -> Result<ParsedExport, String> {
    let format = object.get("format").unwrap_or(&Value::Null);
    if format.as_str() != Some(FORMAT) {
        return Err(format!(
            "unsupported format {format}: expected \"format\": {FORMAT:?}"
        ));
    }
    if let Some(unknown) = object
        .keys()
        .find(|key| !TOP_LEVEL_FIELDS.contains(&key.as_str()))
    {
        return Err(format!(
            "unknown top-level field {unknown:?}: a document has only \"format\", \"customers\" \
             and \"invoices\""
        ));
    }
    let mut export = ParsedExport::default();
    for (index, value) in top_level_array(object, "customers")?.iter().enumerate() {
        export
            .customers
            .push(check_customer(value, &format!("customers[{index}]"), false));
    }
    for (index, value) in top_level_array(object, "invoices")?.iter().enumerate() {
        export
            .invoices
            .push(check_invoice(value, &format!("invoices[{index}]"), false));
    }
    Ok(export)
}

fn top_level_array<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!(
            "{name:?} must be an array, found {}",
            json_kind(other)
        )),
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
