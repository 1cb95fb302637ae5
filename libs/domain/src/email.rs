//! Email addresses as the ERP writes them in a contact field: one mailbox or a list of them,
//! separated by commas or semicolons, each an RFC 5322 address with an optional display name.

use std::fmt;

/// One recipient: an address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub name: Option<String>,
    /// `local@domain`, with the domain lowercased.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid email address {input:?}: {reason}")]
pub struct AddressError {
    /// The list element as written, trimmed.
    pub input: String,
    pub reason: &'static str,
}

impl Mailbox {
    /// Parses exactly one mailbox, such as `a@x.example` or `"Lee, Jordan" <j@x.example>`.
    pub fn parse(input: &str) -> Result<Mailbox, AddressError> {
        let trimmed = input.trim();
        let error = |reason| AddressError {
            input: trimmed.to_owned(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(error("the address is empty"));
        }
        let (name, address) = match trimmed.rfind('<') {
            Some(open) => {
                let Some(inner) = trimmed[open + 1..].strip_suffix('>') else {
                    return Err(error("`<` without a closing `>` at the end"));
                };
                (display_name(&trimmed[..open]).map_err(error)?, inner.trim())
            }
            None => (None, trimmed),
        };
        let address = normalize_addr_spec(address).map_err(error)?;
        Ok(Mailbox { name, address })
    }

    /// Returns whether the address needs the SMTPUTF8 extension (a non-ASCII local part or domain).
    pub fn needs_smtputf8(&self) -> bool {
        !self.address.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(
                f,
                "\"{}\" <{}>",
                name.replace('\\', "\\\\").replace('"', "\\\""),
                self.address
            ),
            None => f.write_str(&self.address),
        }
    }
}

/// Parses an address list. Each element is parsed on its own, so one invalid address does not
/// hide the valid ones beside it. Empty elements (such as a trailing `;`) are ignored.
pub fn parse_address_list(input: &str) -> Vec<Result<Mailbox, AddressError>> {
    split_list(input)
        .into_iter()
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(Mailbox::parse)
        .collect()
}

/// Splits at commas and semicolons that are outside quotes, angle brackets and comments.
fn split_list(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle_depth = 0u32;
    let mut comment_depth = 0u32;
    for (index, ch) in input.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => angle_depth += 1,
            '>' if !in_quotes => angle_depth = angle_depth.saturating_sub(1),
            '(' if !in_quotes => comment_depth += 1,
            ')' if !in_quotes => comment_depth = comment_depth.saturating_sub(1),
            ',' | ';' if !in_quotes && angle_depth == 0 && comment_depth == 0 => {
                parts.push(&input[start..index]);
                start = index + ch.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn display_name(raw: &str) -> Result<Option<String>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let name = match raw.strip_prefix('"') {
        Some(rest) => {
            let inner = rest
                .strip_suffix('"')
                .ok_or("unbalanced quotes in the display name")?;
            unescape_quoted(inner)?
        }
        None => {
            if raw.contains('"') {
                return Err("unbalanced quotes in the display name");
            }
            raw.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    if name.chars().any(char::is_control) {
        return Err("control character in the display name");
    }
    Ok(Some(name))
}

fn unescape_quoted(inner: &str) -> Result<String, &'static str> {
    let mut name = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => name.push(chars.next().ok_or("display name ends in a backslash")?),
            '"' => return Err("unescaped quote inside the display name"),
            other => name.push(other),
        }
    }
    Ok(name)
}

/// Checks `local@domain` and lowercases the domain.
fn normalize_addr_spec(spec: &str) -> Result<String, &'static str> {
    let Some((local, domain)) = spec.rsplit_once('@') else {
        return Err("missing `@`");
    };
    check_local_part(local)?;
    let domain = domain.to_lowercase();
    check_domain(&domain)?;
    Ok(format!("{local}@{domain}"))
}

fn check_local_part(local: &str) -> Result<(), &'static str> {
    if local.is_empty() {
        return Err("the part before `@` is empty");
    }
    if local.len() > 64 {
        return Err("the part before `@` is longer than 64 bytes");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("misplaced `.` in the part before `@`");
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii();
    if !local
        .chars()
        .all(|c| allowed(c) && !c.is_control() && !c.is_whitespace())
    {
        return Err("character not allowed before `@`");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("the domain after `@` is empty");
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 bytes");
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("the domain has an empty or over-long label");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain label starts or ends with `-`");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("character not allowed in the domain");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(input: &str) -> Vec<Result<String, String>> {
        parse_address_list(input)
            .into_iter()
            .map(|r| r.map(|m| m.to_string()).map_err(|e| e.input))
            .collect()
    }

    #[test]
    fn single_bare_address() {
        assert_eq!(addresses("a@x.example"), vec![Ok("a@x.example".to_owned())]);
    }

    #[test]
    fn domain_is_lowercased() {
        assert_eq!(
            Mailbox::parse("Ann@X.Example").unwrap().address,
            "Ann@x.example"
        );
    }

    #[test]
    fn comma_and_semicolon_separate() {
        assert_eq!(
            addresses("a@x.example, b@x.example; c@x.example"),
            vec![
                Ok("a@x.example".into()),
                Ok("b@x.example".into()),
                Ok("c@x.example".into())
            ]
        );
    }

    #[test]
    fn quoted_name_with_comma_is_one_mailbox() {
        let list = parse_address_list("\"Lee, Jordan\" <j@x.example>, k@x.example");
        assert_eq!(list.len(), 2);
        let first = list[0].as_ref().unwrap();
        assert_eq!(first.name.as_deref(), Some("Lee, Jordan"));
        assert_eq!(first.address, "j@x.example");
    }

    #[test]
    fn invalid_element_reported_alone() {
        let list = addresses("a@x.example, not-an-address, b@x.example");
        assert_eq!(list[0], Ok("a@x.example".into()));
        assert_eq!(list[1], Err("not-an-address".into()));
        assert_eq!(list[2], Ok("b@x.example".into()));
    }

    #[test]
    fn empty_elements_ignored() {
        assert_eq!(addresses("a@x.example;; ").len(), 1);
    }

    #[test]
    fn unquoted_display_name() {
        let mailbox = Mailbox::parse("Anna  Schmidt <anna@x.example>").unwrap();
        assert_eq!(mailbox.name.as_deref(), Some("Anna Schmidt"));
    }

    #[test]
    fn non_ascii_local_part_needs_smtputf8() {
        let mailbox = Mailbox::parse("stanisław.wójcik@wp.example").unwrap();
        assert!(mailbox.needs_smtputf8());
        assert!(!Mailbox::parse("a@x.example").unwrap().needs_smtputf8());
    }

    #[test]
    fn rejects_each_malformed_form() {
        for (input, reason) in [
            ("", "the address is empty"),
            ("ax.example", "missing `@`"),
            ("@x.example", "the part before `@` is empty"),
            ("a@", "the domain after `@` is empty"),
            ("a..b@x.example", "misplaced `.` in the part before `@`"),
            ("a b@x.example", "character not allowed before `@`"),
            ("a@x..example", "the domain has an empty or over-long label"),
            ("a@-x.example", "a domain label starts or ends with `-`"),
            ("a@x_y.example", "character not allowed in the domain"),
            ("Ann <a@x.example", "`<` without a closing `>` at the end"),
            (
                "\"Ann <a@x.example>",
                "unbalanced quotes in the display name",
            ),
        ] {
            let error = Mailbox::parse(input).unwrap_err();
            assert_eq!(error.reason, reason, "input {input:?}");
        }
    }

    #[test]
    fn display_quotes_names() {
        let mailbox = Mailbox::parse("\"Lee, \\\"J\\\"\" <j@x.example>").unwrap();
        assert_eq!(mailbox.name.as_deref(), Some("Lee, \"J\""));
        assert_eq!(mailbox.to_string(), "\"Lee, \\\"J\\\"\" <j@x.example>");
    }
}
