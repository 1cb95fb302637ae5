//! Canonical JSON of stored content and its SHA-256, so identical content always hashes alike.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serializes `content` as compact JSON with the keys of every object sorted by their UTF-8
/// bytes. The result does not depend on field order or on serde_json's `preserve_order`.
pub(crate) fn canonical_json<T: Serialize>(content: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(content)?;
    let mut output = String::new();
    write_canonical(&value, &mut output)?;
    Ok(output)
}

fn write_canonical(value: &Value, output: &mut String) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            output.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                output.push_str(&serde_json::to_string(key)?);
                output.push(':');
                write_canonical(item, output)?;
            }
            output.push('}');
        }
        Value::Array(items) => {
            output.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                write_canonical(item, output)?;
            }
            output.push(']');
        }
        scalar => output.push_str(&serde_json::to_string(scalar)?),
    }
    Ok(())
}

/// Lowercase hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"d": [ {"z": true, "y": null} ], "c": "x"}});
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"a":{"c":"x","d":[{"y":null,"z":true}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_json_escapes_strings() {
        let value = serde_json::json!({"notes": "line one\nline \"two\""});
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"notes":"line one\nline \"two\""}"#
        );
    }

    #[test]
    fn sha256_hex_of_known_text() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
