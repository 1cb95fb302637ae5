//! BCP 47 language tags (RFC 5646), checked for well-formedness only: the subtags must follow
//! the RFC's syntax, but whether the IANA registry lists them is not checked.

use std::fmt;

use crate::error::DomainError;

/// Tags that RFC 5646 section 2.2.8 grandfathers and that do not fit the `langtag` syntax.
const IRREGULAR_GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
];

/// A well-formed BCP 47 tag such as `de`, `pt-BR` or `zh-Hant-TW`, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LanguageTag(String);

impl LanguageTag {
    pub fn parse(tag: &str) -> Result<LanguageTag, DomainError> {
        check_well_formed(tag).map_err(|reason| DomainError::InvalidLanguageTag {
            tag: tag.to_owned(),
            reason,
        })?;
        Ok(LanguageTag(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the primary language subtag in lowercase, such as `pt` for `pt-BR`.
    pub fn primary_language(&self) -> String {
        let primary = self.0.split('-').next().unwrap_or_default();
        primary.to_ascii_lowercase()
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_well_formed(tag: &str) -> Result<(), String> {
    if IRREGULAR_GRANDFATHERED
        .iter()
        .any(|known| known.eq_ignore_ascii_case(tag))
    {
        return Ok(());
    }

    let subtags: Vec<&str> = tag.split('-').collect();
    for subtag in &subtags {
        if subtag.is_empty() || subtag.len() > 8 {
            return Err(
                "every subtag must be 1 to 8 characters, separated by single hyphens".into(),
            );
        }
        if !subtag.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "subtag {subtag:?} contains a character other than A-Z, a-z, 0-9"
            ));
        }
    }

    let mut rest = subtags.as_slice();
    if is_private_use_singleton(rest[0]) {
        return check_private_use(rest);
    }
    rest = take_language(rest)?;
    rest = take_optional(rest, is_script);
    rest = take_optional(rest, is_region);
    rest = take_variants(rest)?;
    rest = take_extensions(rest)?;

    if rest.is_empty() {
        return Ok(());
    }
    if is_private_use_singleton(rest[0]) {
        return check_private_use(rest);
    }
    Err(format!("unexpected subtag {:?}", rest[0]))
}

fn is_alpha(subtag: &str) -> bool {
    subtag.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_script(subtag: &str) -> bool {
    subtag.len() == 4 && is_alpha(subtag)
}

fn is_region(subtag: &str) -> bool {
    (subtag.len() == 2 && is_alpha(subtag))
        || (subtag.len() == 3 && subtag.bytes().all(|b| b.is_ascii_digit()))
}

fn is_variant(subtag: &str) -> bool {
    let starts_with_digit = subtag.as_bytes()[0].is_ascii_digit();
    (5..=8).contains(&subtag.len()) || (subtag.len() == 4 && starts_with_digit)
}

fn is_private_use_singleton(subtag: &str) -> bool {
    subtag.eq_ignore_ascii_case("x")
}

/// Takes `language = 2*3ALPHA ["-" extlang] / 4ALPHA / 5*8ALPHA`, where an extlang is up to
/// three subtags of 3 letters.
fn take_language<'a, 'b>(subtags: &'a [&'b str]) -> Result<&'a [&'b str], String> {
    let primary = subtags[0];
    if !is_alpha(primary) || primary.len() < 2 {
        return Err(format!(
            "primary language subtag {primary:?} must be 2 to 8 letters"
        ));
    }
    let mut rest = &subtags[1..];
    if primary.len() <= 3 {
        let mut extlangs = 0;
        while extlangs < 3 && rest.first().is_some_and(|s| s.len() == 3 && is_alpha(s)) {
            rest = &rest[1..];
            extlangs += 1;
        }
    }
    Ok(rest)
}

fn take_optional<'a, 'b>(subtags: &'a [&'b str], accepts: fn(&str) -> bool) -> &'a [&'b str] {
    match subtags.first() {
        Some(subtag) if accepts(subtag) => &subtags[1..],
        _ => subtags,
    }
}

fn take_variants<'a, 'b>(mut subtags: &'a [&'b str]) -> Result<&'a [&'b str], String> {
    let mut seen: Vec<String> = Vec::new();
    while let Some(subtag) = subtags.first().filter(|s| is_variant(s)) {
        let lowered = subtag.to_ascii_lowercase();
        if seen.contains(&lowered) {
            return Err(format!("variant subtag {subtag:?} appears twice"));
        }
        seen.push(lowered);
        subtags = &subtags[1..];
    }
    Ok(subtags)
}

/// Takes `*("-" extension)`, where an extension is a singleton other than `x` followed by
/// one or more subtags of 2 to 8 characters.
fn take_extensions<'a, 'b>(mut subtags: &'a [&'b str]) -> Result<&'a [&'b str], String> {
    let mut seen: Vec<String> = Vec::new();
    while let Some(singleton) = subtags.first().filter(|s| s.len() == 1) {
        if is_private_use_singleton(singleton) {
            break;
        }
        let lowered = singleton.to_ascii_lowercase();
        if seen.contains(&lowered) {
            return Err(format!("extension singleton {singleton:?} appears twice"));
        }
        seen.push(lowered);
        subtags = &subtags[1..];
        let length = subtags.iter().take_while(|s| s.len() >= 2).count();
        if length == 0 {
            return Err(format!(
                "extension {singleton:?} needs at least one subtag of 2 to 8 characters"
            ));
        }
        subtags = &subtags[length..];
    }
    Ok(subtags)
}

fn check_private_use(subtags: &[&str]) -> Result<(), String> {
    if subtags.len() < 2 {
        return Err("private use section `x` needs at least one subtag".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_well_formed_tags() {
        let tags = [
            "de",
            "pt-BR",
            "zh-Hant-TW",
            "sr-Latn-RS",
            "es-419",
            "de-CH-1901",
            "sl-rozaj-biske",
            "zh-yue-HK",
            "en-US-u-ca-gregory",
            "en-a-bbb-x-a-ccc",
            "x-whatever",
            "i-klingon",
            "en-GB-oed",
            "tlh",
            "qaa-Qaaa-QM-x-southern",
        ];
        for tag in tags {
            assert!(
                LanguageTag::parse(tag).is_ok(),
                "{tag} should be well-formed"
            );
        }
    }

    #[test]
    fn parse_keeps_case_as_written() {
        assert_eq!(LanguageTag::parse("pt-br").unwrap().as_str(), "pt-br");
        assert_eq!(
            LanguageTag::parse("PT-BR").unwrap().primary_language(),
            "pt"
        );
    }

    #[test]
    fn parse_rejects_underscore() {
        let error = LanguageTag::parse("de_DE").unwrap_err();
        assert!(error.to_string().contains("\"de_DE\""), "{error}");
    }

    #[test]
    fn parse_rejects_empty_tag() {
        assert!(LanguageTag::parse("").is_err());
    }

    #[test]
    fn parse_rejects_empty_subtag() {
        let error = LanguageTag::parse("en--US").unwrap_err();
        assert!(error.to_string().contains("\"en--US\""), "{error}");
    }

    #[test]
    fn parse_rejects_one_letter_language() {
        let error = LanguageTag::parse("e").unwrap_err();
        assert!(
            error.to_string().contains("primary language subtag \"e\""),
            "{error}"
        );
    }

    #[test]
    fn parse_rejects_digit_language() {
        assert!(LanguageTag::parse("12-US").is_err());
    }

    #[test]
    fn parse_rejects_long_subtag() {
        assert!(LanguageTag::parse("en-abcdefghi").is_err());
    }

    #[test]
    fn parse_rejects_misplaced_subtag() {
        // A region before the script.
        let error = LanguageTag::parse("en-US-Latn").unwrap_err();
        assert!(
            error.to_string().contains("unexpected subtag \"Latn\""),
            "{error}"
        );
    }

    #[test]
    fn parse_rejects_duplicate_variant() {
        let error = LanguageTag::parse("de-1901-1901").unwrap_err();
        assert!(error.to_string().contains("appears twice"), "{error}");
    }

    #[test]
    fn parse_rejects_empty_extension() {
        let error = LanguageTag::parse("en-u").unwrap_err();
        assert!(error.to_string().contains("extension \"u\""), "{error}");
    }

    #[test]
    fn parse_rejects_empty_private_use() {
        assert!(LanguageTag::parse("en-x").is_err());
    }

    #[test]
    fn parse_rejects_whitespace() {
        assert!(LanguageTag::parse(" de").is_err());
    }
}
