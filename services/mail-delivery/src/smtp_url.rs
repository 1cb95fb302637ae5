//! Parses `mail.smtp_url`: where the SMTP server is, how to secure the connection and
//! which credentials to use.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::error::MailDeliveryError;

/// The accepted forms, quoted in every parse error.
pub(crate) const SMTP_URL_FORMS: &str = "smtp://[user:password@]host[:port] (port 25) or \
    smtps://[user:password@]host[:port] (implicit TLS, port 465), with optional parameters \
    tls=none|starttls|opportunistic (smtp only), ehlo=NAME, timeout=SECONDS and \
    ca_file=/path/to/ca.pem; percent-encode special characters in the user and password";

const SMTP_PORT: u16 = 25;
const SMTPS_PORT: u16 = 465;
const MAX_TIMEOUT_SECS: u64 = 3600;

/// The connection's TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// No TLS at all.
    Plain,
    /// STARTTLS is required: a server that does not offer it gets no mail.
    StartTls,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

impl TlsMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TlsMode::Plain => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Implicit => "implicit",
        }
    }
}

/// AUTH credentials. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmtpUrl {
    /// A DNS name, an IPv4 address or an IPv6 address without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
    pub(crate) credentials: Option<Credentials>,
    /// Whether the URL itself carries a password, as opposed to a user alone.
    pub(crate) password_in_url: bool,
    pub(crate) ehlo_name: Option<String>,
    /// Overrides `mail.timeout_secs`.
    pub(crate) timeout: Option<Duration>,
    /// Extra CA certificates (PEM) to trust besides the built-in web roots.
    pub(crate) ca_file: Option<PathBuf>,
}

impl SmtpUrl {
    pub(crate) fn parse(raw: &str) -> Result<SmtpUrl, MailDeliveryError> {
        let invalid = |reason: String| MailDeliveryError::InvalidSmtpUrl {
            url: redact_password(raw),
            reason,
        };
        let url = Url::parse(raw.trim()).map_err(|error| invalid(error.to_string()))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(invalid(format!("unsupported scheme {other:?}"))),
        };
        if !matches!(url.path(), "" | "/") {
            return Err(invalid(format!("unexpected path {:?}", url.path())));
        }
        if url.fragment().is_some() {
            return Err(invalid("unexpected fragment".to_owned()));
        }

        let mut parsed = SmtpUrl {
            host: host(&url).map_err(invalid)?,
            port: url
                .port()
                .unwrap_or(if implicit_tls { SMTPS_PORT } else { SMTP_PORT }),
            tls: if implicit_tls {
                TlsMode::Implicit
            } else {
                TlsMode::Plain
            },
            credentials: credentials(&url).map_err(invalid)?,
            password_in_url: url.password().is_some(),
            ehlo_name: None,
            timeout: None,
            ca_file: None,
        };
        parsed.apply_parameters(&url).map_err(invalid)?;
        Ok(parsed)
    }

    fn apply_parameters(&mut self, url: &Url) -> Result<(), String> {
        let mut seen = Vec::new();
        for (key, value) in url.query_pairs() {
            if seen.contains(&key) {
                return Err(format!("parameter {key} given twice"));
            }
            match key.as_ref() {
                "tls" => self.tls = tls_mode(self.tls, &value)?,
                "ehlo" => self.ehlo_name = Some(ehlo_name(&value)?),
                "timeout" => self.timeout = Some(timeout(&value)?),
                "ca_file" if value.is_empty() => return Err("ca_file is empty".to_owned()),
                "ca_file" => self.ca_file = Some(PathBuf::from(value.as_ref())),
                other => return Err(format!("unknown parameter {other:?}")),
            }
            seen.push(key);
        }
        Ok(())
    }

    /// `smtp://host:port` or `smtps://host:port`, never with credentials.
    pub(crate) fn destination(&self) -> String {
        let scheme = if self.tls == TlsMode::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        format!("{scheme}://{}", self.address())
    }

    /// Returns whether the host is `localhost` or a loopback address (127.0.0.0/8, ::1).
    pub(crate) fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
    }

    /// Returns whether mail may cross the network in plain text with this URL's TLS mode.
    pub(crate) fn may_send_plaintext(&self) -> bool {
        matches!(self.tls, TlsMode::Plain | TlsMode::Opportunistic)
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn host(url: &Url) -> Result<String, String> {
    let host = match url.host() {
        Some(Host::Domain(domain)) => decode(domain, "host")?,
        Some(Host::Ipv4(address)) => address.to_string(),
        Some(Host::Ipv6(address)) => address.to_string(),
        None => String::new(),
    };
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid host {host:?}"));
    }
    Ok(host)
}

fn credentials(url: &Url) -> Result<Option<Credentials>, String> {
    let username = decode(url.username(), "user")?;
    let password = url
        .password()
        .map(|password| decode(password, "password"))
        .transpose()?;
    match (username.is_empty(), password) {
        (true, None) => Ok(None),
        (true, Some(_)) => Err("a password is given without a user".to_owned()),
        (false, password) => Ok(Some(Credentials {
            username,
            password: password.unwrap_or_default(),
        })),
    }
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("the {what} is not UTF-8 after percent-decoding"))
}

fn tls_mode(scheme_mode: TlsMode, value: &str) -> Result<TlsMode, String> {
    if scheme_mode == TlsMode::Implicit {
        return Err("tls= applies to smtp:// only; smtps:// always uses implicit TLS".to_owned());
    }
    match value {
        "none" => Ok(TlsMode::Plain),
        "starttls" => Ok(TlsMode::StartTls),
        "opportunistic" => Ok(TlsMode::Opportunistic),
        other => Err(format!(
            "invalid tls value {other:?}, expected none, starttls or opportunistic"
        )),
    }
}

fn ehlo_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty() && value.chars().all(|c| c.is_ascii_graphic());
    if !valid {
        return Err(format!(
            "invalid ehlo name {value:?}, expected a domain name or address literal"
        ));
    }
    Ok(value.to_owned())
}

fn timeout(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "invalid timeout {value:?}, expected whole seconds from 1 to {MAX_TIMEOUT_SECS}"
        )),
    }
}

/// Replaces the password of `raw` with `***`, also when `raw` does not parse. It masks from
/// the first `:` after the scheme up to the last `@`, which may hide more than the password
/// but never less.
pub(crate) fn redact_password(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |index| index + 3);
    let Some(at) = raw[start..].rfind('@').map(|index| start + index) else {
        return raw.to_owned();
    };
    let Some(colon) = raw[start..at].find(':').map(|index| start + index) else {
        return raw.to_owned();
    };
    format!("{}***{}", &raw[..=colon], &raw[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> SmtpUrl {
        SmtpUrl::parse(raw).unwrap_or_else(|error| panic!("{raw}: {error}"))
    }

    fn error(raw: &str) -> String {
        SmtpUrl::parse(raw).expect_err(raw).to_string()
    }

    #[test]
    fn plain_url_defaults_to_port_25() {
        let url = parse("smtp://mail.example.com");
        assert_eq!(url.host, "mail.example.com");
        assert_eq!(url.port, 25);
        assert_eq!(url.tls, TlsMode::Plain);
        assert_eq!(url.credentials, None);
        assert_eq!(url.destination(), "smtp://mail.example.com:25");
    }

    #[test]
    fn smtps_url_uses_implicit_tls_on_465() {
        let url = parse("smtps://mail.example.com");
        assert_eq!(url.port, 465);
        assert_eq!(url.tls, TlsMode::Implicit);
        assert_eq!(url.destination(), "smtps://mail.example.com:465");
    }

    #[test]
    fn tls_parameter_selects_mode() {
        for (raw, expected) in [
            ("smtp://h:587?tls=starttls", TlsMode::StartTls),
            ("smtp://h:25?tls=opportunistic", TlsMode::Opportunistic),
            ("smtp://h:25?tls=none", TlsMode::Plain),
        ] {
            assert_eq!(parse(raw).tls, expected, "{raw}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let url = parse("smtp://billing%40company.example:p%40ss%3Aw%2Frd@127.0.0.1:2525");
        let credentials = url.credentials.unwrap();
        assert_eq!(credentials.username, "billing@company.example");
        assert_eq!(credentials.password, "p@ss:w/rd");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 2525);
    }

    #[test]
    fn optional_parameters_are_read() {
        let url = parse("smtp://h:25?ehlo=invoicer.example&timeout=7&ca_file=/tmp/ca.pem");
        assert_eq!(url.ehlo_name.as_deref(), Some("invoicer.example"));
        assert_eq!(url.timeout, Some(Duration::from_secs(7)));
        assert_eq!(url.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for raw in [
            "smtp://127.0.0.1",
            "smtp://127.8.0.1",
            "smtp://[::1]",
            "smtp://LocalHost",
        ] {
            assert!(parse(raw).is_loopback(), "{raw}");
        }
        for raw in [
            "smtp://10.0.0.1",
            "smtp://mail.example.com",
            "smtp://localhost.example",
        ] {
            assert!(!parse(raw).is_loopback(), "{raw}");
        }
    }

    #[test]
    fn password_in_url_is_noted() {
        assert!(parse("smtp://u:p@h").password_in_url);
        assert!(!parse("smtp://u@h").password_in_url);
    }

    #[test]
    fn ipv6_host_keeps_brackets_in_destination() {
        let url = parse("smtp://[::1]:2525");
        assert_eq!(url.host, "::1");
        assert_eq!(url.destination(), "smtp://[::1]:2525");
    }

    #[test]
    fn debug_output_hides_password() {
        let url = parse("smtp://user:hunter2@h:25");
        let debug = format!("{url:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn invalid_urls_name_the_problem() {
        for (raw, expected) in [
            ("http://h:25", "unsupported scheme \"http\""),
            ("smtp://", "the host is missing"),
            ("smtp://h:25/path", "unexpected path"),
            ("smtp://h:25?tls=always", "invalid tls value \"always\""),
            ("smtps://h?tls=starttls", "applies to smtp:// only"),
            ("smtp://h?timeout=0", "invalid timeout \"0\""),
            ("smtp://h?timeout=abc", "invalid timeout \"abc\""),
            ("smtp://h?ehlo=", "invalid ehlo name"),
            ("smtp://h?colour=blue", "unknown parameter \"colour\""),
            (
                "smtp://h?tls=none&tls=starttls",
                "parameter tls given twice",
            ),
            ("smtp://:secret@h", "a password is given without a user"),
            ("smtp://h:99999", "invalid port number"),
            (
                "mail.example.com:25",
                "unsupported scheme \"mail.example.com\"",
            ),
            ("mail.example.com", "relative URL without a base"),
        ] {
            let message = error(raw);
            assert!(message.contains(expected), "{raw}: {message}");
            assert!(message.contains("expected smtp://"), "{raw}: {message}");
        }
    }

    #[test]
    fn invalid_url_error_hides_password() {
        for raw in [
            "smtp://user:hunter2@h:25?tls=always",
            "smtp://user:hunter2@h:notaport",
            "smtp://user:hun/ter2@h:25",
            "ftp://user:hunter2@h",
        ] {
            let message = error(raw);
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains("ter2"), "{message}");
            assert!(
                message.contains("smtp://user:***@h") || message.contains("ftp://user:***@h"),
                "{message}"
            );
        }
    }

    #[test]
    fn redaction_leaves_urls_without_password_alone() {
        assert_eq!(redact_password("smtp://h:25"), "smtp://h:25");
        assert_eq!(redact_password("smtp://user@h:25"), "smtp://user@h:25");
        assert_eq!(
            redact_password("smtp://u:p@h:25?x=1"),
            "smtp://u:***@h:25?x=1"
        );
    }
}
