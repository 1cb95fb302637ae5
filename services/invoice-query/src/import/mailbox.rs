//! Syntactic check of one RFC 5322 `mailbox`: a bare `addr-spec` (`j@x.example`) or a
//! `name-addr` with an optional display name (`"Lee, Jordan" <j@x.example>`).
//!
//! Comments and white space are accepted where RFC 5322 allows CFWS, UTF-8 where RFC 6532
//! allows it, and the obsolete `.` inside an unquoted display name (`J. Smith <j@x.example>`)
//! because ERPs write names that way. Folding white space is not accepted because text fields
//! reject line breaks. Group syntax and address lists are rejected: a contact has one address.

/// The parts of a valid mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// The display name with quotes and escapes removed, when there is one.
    pub(crate) display_name: Option<String>,
    /// The `addr-spec` as written, such as `j@x.example`.
    pub(crate) address: String,
}

/// Limits from RFC 5321 section 4.5.3.1, in octets.
const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;

const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Parses `text` as one mailbox. The error explains what is wrong and where, as a 1-based
/// character position.
pub(crate) fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    let mut bare = Parser::new(text);
    let bare_result = bare.addr_spec_only();
    if bare_result.is_ok() || !text.contains('<') {
        return bare_result.map(|address| Mailbox {
            display_name: None,
            address,
        });
    }
    Parser::new(text).name_addr()
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c) || !c.is_ascii()
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Printable ASCII and, per RFC 6532, any non-ASCII character; excludes control characters.
fn is_visible(c: char) -> bool {
    ('!'..='~').contains(&c) || (!c.is_ascii() && !c.is_control())
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    offset: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, offset: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.offset += expected.len_utf8();
            return true;
        }
        false
    }

    /// 1-based character position of the next character, for messages.
    fn position(&self) -> usize {
        self.text[..self.offset].chars().count() + 1
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.peek() {
            None => format!("{expected} expected at the end"),
            Some(',') => format!(
                "unexpected ',' at character {}: a contact has one address, and a display name \
                 that contains a comma must be quoted, as in \"Lee, Jordan\" <j@x.example>",
                self.position()
            ),
            Some(c) => format!(
                "unexpected {c:?} at character {}: {expected} expected",
                self.position()
            ),
        }
    }

    fn addr_spec_only(&mut self) -> Result<String, String> {
        self.skip_cfws()?;
        let address = self.addr_spec()?;
        self.skip_cfws()?;
        self.expect_end()?;
        Ok(address)
    }

    fn name_addr(&mut self) -> Result<Mailbox, String> {
        self.skip_cfws()?;
        let display_name = self.phrase()?;
        self.skip_cfws()?;
        if !self.eat('<') {
            return Err(self.unexpected("'<' before the address"));
        }
        let address = self.addr_spec()?;
        self.skip_cfws()?;
        if !self.eat('>') {
            return Err(self.unexpected("'>' after the address"));
        }
        self.skip_cfws()?;
        self.expect_end()?;
        Ok(Mailbox {
            display_name,
            address,
        })
    }

    fn expect_end(&self) -> Result<(), String> {
        if self.peek().is_none() {
            return Ok(());
        }
        Err(self.unexpected("the end of the address"))
    }

    /// Skips white space and (nested) comments.
    fn skip_cfws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(c) if is_wsp(c) => {
                    self.bump();
                }
                Some('(') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        let start = self.position();
        self.bump();
        let mut depth = 1;
        while depth > 0 {
            match self.bump() {
                None => return Err(format!("comment opened at character {start} is not closed")),
                Some('(') => depth += 1,
                Some(')') => depth -= 1,
                Some('\\') => self.quoted_pair_rest()?,
                Some(c) if is_visible(c) || is_wsp(c) => {}
                Some(c) => return Err(format!("character {c:?} is not allowed in a comment")),
            }
        }
        Ok(())
    }

    /// Reads the character after a backslash.
    fn quoted_pair_rest(&mut self) -> Result<(), String> {
        match self.bump() {
            Some(c) if is_visible(c) || is_wsp(c) => Ok(()),
            _ => Err(format!(
                "backslash before character {} escapes nothing",
                self.position()
            )),
        }
    }

    /// Reads `phrase = word *(word / "." / CFWS)`, or nothing when a `<` comes first.
    fn phrase(&mut self) -> Result<Option<String>, String> {
        let mut words: Vec<String> = Vec::new();
        loop {
            self.skip_cfws()?;
            match self.peek() {
                Some('"') => words.push(self.quoted_string()?),
                Some(c) if is_atext(c) => words.push(self.atom()),
                Some('.') if !words.is_empty() => {
                    self.bump();
                    if let Some(last) = words.last_mut() {
                        last.push('.');
                    }
                }
                _ => break,
            }
        }
        Ok((!words.is_empty()).then(|| words.join(" ")))
    }

    fn atom(&mut self) -> String {
        let start = self.offset;
        while self.peek().is_some_and(is_atext) {
            self.bump();
        }
        self.text[start..self.offset].to_owned()
    }

    /// Reads a quoted string and returns its content without quotes and escapes.
    fn quoted_string(&mut self) -> Result<String, String> {
        let start = self.position();
        self.bump();
        let mut content = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "quoted string opened at character {start} is not closed"
                    ));
                }
                Some('"') => return Ok(content),
                Some('\\') => {
                    self.quoted_pair_rest()?;
                    content.push(self.text[..self.offset].chars().next_back().unwrap_or(' '));
                }
                Some(c) if is_visible(c) || is_wsp(c) => content.push(c),
                Some(c) => {
                    return Err(format!("character {c:?} is not allowed in a quoted string"));
                }
            }
        }
    }

    fn addr_spec(&mut self) -> Result<String, String> {
        self.skip_cfws()?;
        let local_start = self.offset;
        if self.peek() == Some('"') {
            self.quoted_string()?;
        } else {
            self.dot_atom_text("the local part before '@'")?;
        }
        let local_end = self.offset;
        self.skip_cfws()?;
        if !self.eat('@') {
            return Err(self.unexpected("'@'"));
        }
        self.skip_cfws()?;
        let domain_start = self.offset;
        if self.peek() == Some('[') {
            self.domain_literal()?;
        } else {
            self.dot_atom_text("the domain after '@'")?;
        }
        let domain = &self.text[domain_start..self.offset];
        let local = &self.text[local_start..local_end];
        check_lengths(local.len(), domain.len())?;
        Ok(format!("{local}@{domain}"))
    }

    fn dot_atom_text(&mut self, part: &str) -> Result<(), String> {
        loop {
            if !self.peek().is_some_and(is_atext) {
                return Err(self.unexpected(part));
            }
            self.atom();
            if !self.eat('.') {
                return Ok(());
            }
        }
    }

    fn domain_literal(&mut self) -> Result<(), String> {
        let start = self.position();
        self.bump();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "domain literal opened at character {start} is not closed"
                    ));
                }
                Some(']') => return Ok(()),
                Some('[' | '\\') => {
                    return Err(format!(
                        "'[' and '\\' are not allowed in the domain literal at character {start}"
                    ));
                }
                Some(c) if is_visible(c) || is_wsp(c) => {}
                Some(c) => {
                    return Err(format!(
                        "character {c:?} is not allowed in a domain literal"
                    ));
                }
            }
        }
    }
}

fn check_lengths(local_len: usize, domain_len: usize) -> Result<(), String> {
    if local_len > MAX_LOCAL_PART {
        return Err(format!(
            "the local part is {local_len} bytes long; the maximum is {MAX_LOCAL_PART}"
        ));
    }
    if domain_len > MAX_DOMAIN {
        return Err(format!(
            "the domain is {domain_len} bytes long; the maximum is {MAX_DOMAIN}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address_of(text: &str) -> String {
        parse_mailbox(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .address
    }

    fn name_of(text: &str) -> Option<String> {
        parse_mailbox(text).unwrap().display_name
    }

    fn error_of(text: &str) -> String {
        parse_mailbox(text).expect_err(text)
    }

    #[test]
    fn bare_address() {
        assert_eq!(
            address_of("anna.schmidt@mueller-soehne.example"),
            "anna.schmidt@mueller-soehne.example"
        );
        assert_eq!(name_of("anna@x.example"), None);
    }

    #[test]
    fn address_in_angle_brackets() {
        assert_eq!(address_of("<j@x.example>"), "j@x.example");
        assert_eq!(name_of("<j@x.example>"), None);
    }

    #[test]
    fn quoted_display_name_with_comma() {
        let mailbox = parse_mailbox("\"Lee, Jordan\" <j@x.example>").unwrap();
        assert_eq!(mailbox.display_name.as_deref(), Some("Lee, Jordan"));
        assert_eq!(mailbox.address, "j@x.example");
    }

    #[test]
    fn unquoted_display_name() {
        assert_eq!(
            name_of("Anna Schmidt <anna@x.example>").as_deref(),
            Some("Anna Schmidt")
        );
    }

    #[test]
    fn unicode_display_name() {
        assert_eq!(
            name_of("Luís Gonçalves <luisg@embraer.example>").as_deref(),
            Some("Luís Gonçalves")
        );
    }

    #[test]
    fn display_name_with_obsolete_period() {
        assert_eq!(
            name_of("J. Smith <j@x.example>").as_deref(),
            Some("J. Smith")
        );
    }

    #[test]
    fn quoted_pair_in_display_name() {
        assert_eq!(
            name_of(r#""Say \"hi\"" <j@x.example>"#).as_deref(),
            Some("Say \"hi\"")
        );
    }

    #[test]
    fn quoted_local_part() {
        assert_eq!(
            address_of("\"john smith\"@x.example"),
            "\"john smith\"@x.example"
        );
    }

    #[test]
    fn domain_literal() {
        assert_eq!(address_of("root@[192.0.2.1]"), "root@[192.0.2.1]");
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            address_of("Anna (billing) <anna@x.example> (main)"),
            "anna@x.example"
        );
    }

    #[test]
    fn plus_and_specials_in_local_part() {
        assert_eq!(
            address_of("billing+erp/2026@x.example"),
            "billing+erp/2026@x.example"
        );
    }

    #[test]
    fn rejects_unquoted_comma_in_name() {
        let error = error_of("Lee, Jordan <j@x.example>");
        assert!(error.contains("unexpected ','"), "{error}");
        assert!(error.contains("must be quoted"), "{error}");
    }

    #[test]
    fn rejects_two_addresses() {
        let error = error_of("a@x.example, b@x.example");
        assert!(error.contains("one address"), "{error}");
    }

    #[test]
    fn rejects_missing_at() {
        let error = error_of("anna.x.example");
        assert!(error.contains("'@' expected"), "{error}");
    }

    #[test]
    fn rejects_empty_domain() {
        let error = error_of("anna@");
        assert!(error.contains("the domain after '@' expected"), "{error}");
    }

    #[test]
    fn rejects_double_dot() {
        let error = error_of("anna..schmidt@x.example");
        assert!(error.contains("unexpected '.' at character 6"), "{error}");
    }

    #[test]
    fn rejects_trailing_dot_in_domain() {
        assert!(parse_mailbox("anna@x.example.").is_err());
    }

    #[test]
    fn rejects_unclosed_angle_bracket() {
        let error = error_of("Anna <anna@x.example");
        assert!(error.contains("'>' after the address"), "{error}");
    }

    #[test]
    fn rejects_unclosed_quote() {
        let error = error_of("\"Anna <anna@x.example>");
        assert!(error.contains("not closed"), "{error}");
    }

    #[test]
    fn rejects_text_after_address() {
        let error = error_of("<anna@x.example> Anna");
        assert!(error.contains("the end of the address"), "{error}");
    }

    #[test]
    fn rejects_group_syntax() {
        assert!(parse_mailbox("Billing: anna@x.example;").is_err());
    }

    #[test]
    fn rejects_empty_text() {
        let error = error_of("");
        assert!(error.contains("expected at the end"), "{error}");
    }

    #[test]
    fn rejects_long_local_part() {
        let error = error_of(&format!("{}@x.example", "a".repeat(65)));
        assert!(error.contains("65 bytes"), "{error}");
    }

    #[test]
    fn rejects_space_inside_address() {
        assert!(parse_mailbox("anna schmidt@x.example").is_err());
    }
}
