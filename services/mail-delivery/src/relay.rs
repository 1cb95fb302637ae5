//! Checks the `mail` settings of the SMTP relay at start-up: the TLS policy, where the
//! password comes from, and the limits.

use std::path::Path;
use std::time::Duration;

use invoicer_kit::config::MailConfig;

use crate::error::MailDeliveryError;
use crate::smtp::RelaySettings;
use crate::smtp_url::{Credentials, SmtpUrl, redact_password};

/// Builds the relay settings for `url`. Plain text to a host other than loopback, two
/// password sources, or an invalid limit is an error.
pub(crate) fn settings(
    mail: &MailConfig,
    url: &SmtpUrl,
) -> Result<RelaySettings, MailDeliveryError> {
    check_tls_policy(mail, url)?;
    Ok(RelaySettings {
        default_timeout: command_timeout(mail.timeout_secs)?,
        credentials: credentials(mail, url)?,
        skip_certificate_check: host_listed(&mail.insecure_skip_verify_hosts, &url.host),
        max_connections: max_connections(mail.max_connections)?,
        max_messages_per_second: max_messages_per_second(mail.max_messages_per_second)?,
        pool_idle_timeout: Duration::from_secs(mail.pool_idle_secs),
    })
}

fn host_listed(hosts: &[String], host: &str) -> bool {
    hosts
        .iter()
        .any(|listed| listed.trim().eq_ignore_ascii_case(host))
}

fn check_tls_policy(mail: &MailConfig, url: &SmtpUrl) -> Result<(), MailDeliveryError> {
    if !url.may_send_plaintext() || url.is_loopback() {
        return Ok(());
    }
    if host_listed(&mail.allow_plaintext_hosts, &url.host) {
        return Ok(());
    }
    Err(MailDeliveryError::PlaintextNotAllowed {
        url: redact_password(mail.smtp_url.as_deref().unwrap_or_default()),
        host: url.host.clone(),
        tls: url.tls.as_str(),
    })
}

/// Returns the credentials when the password comes from `INVOICER_SMTP_PASSWORD` or
/// `mail.password_file`; `None` leaves the URL's own.
fn credentials(mail: &MailConfig, url: &SmtpUrl) -> Result<Option<Credentials>, MailDeliveryError> {
    let from_file = match &mail.password_file {
        Some(path) => Some(read_password_file(path)?),
        None => None,
    };
    let from_env = mail
        .password
        .as_ref()
        .map(|secret| secret.expose().to_owned());
    let sources: Vec<&str> = [
        url.password_in_url.then_some("the password in smtp_url"),
        from_env.is_some().then_some("INVOICER_SMTP_PASSWORD"),
        from_file.is_some().then_some("mail.password_file"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sources.len() > 1 {
        return Err(MailDeliveryError::InvalidConfig {
            key: "password_file",
            value: sources.join(", "),
            reason: "the SMTP password is set in more than one place; keep exactly one".to_owned(),
        });
    }
    let Some(password) = from_env.or(from_file) else {
        return Ok(None);
    };
    let Some(username) = url.credentials.as_ref().map(|c| c.username.clone()) else {
        return Err(MailDeliveryError::InvalidConfig {
            key: "smtp_url",
            value: redact_password(mail.smtp_url.as_deref().unwrap_or_default()),
            reason: "an SMTP password is set but the URL names no user; write smtp://USER@host"
                .to_owned(),
        });
    };
    Ok(Some(Credentials { username, password }))
}

fn read_password_file(path: &Path) -> Result<String, MailDeliveryError> {
    let invalid = |reason: String| MailDeliveryError::InvalidConfig {
        key: "password_file",
        value: path.display().to_string(),
        reason,
    };
    let content = std::fs::read_to_string(path)
        .map_err(|error| invalid(format!("cannot read the file: {error}")))?;
    let password = content.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(invalid("the file is empty".to_owned()));
    }
    Ok(password.to_owned())
}

fn command_timeout(secs: u64) -> Result<Duration, MailDeliveryError> {
    if secs == 0 {
        return Err(MailDeliveryError::InvalidConfig {
            key: "timeout_secs",
            value: secs.to_string(),
            reason: "expected at least 1 second".to_owned(),
        });
    }
    Ok(Duration::from_secs(secs))
}

fn max_connections(count: usize) -> Result<usize, MailDeliveryError> {
    if count == 0 {
        return Err(MailDeliveryError::InvalidConfig {
            key: "max_connections",
            value: count.to_string(),
            reason: "expected at least 1 connection".to_owned(),
        });
    }
    Ok(count)
}

fn max_messages_per_second(rate: f64) -> Result<f64, MailDeliveryError> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(MailDeliveryError::InvalidConfig {
            key: "max_messages_per_second",
            value: rate.to_string(),
            reason: "expected 0 (no limit) or a positive number of messages per second".to_owned(),
        });
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoicer_kit::config::Secret;

    fn mail(smtp_url: &str) -> MailConfig {
        MailConfig {
            smtp_url: Some(smtp_url.to_owned()),
            ..MailConfig::default()
        }
    }

    fn check(mail: &MailConfig) -> Result<RelaySettings, MailDeliveryError> {
        let url = SmtpUrl::parse(mail.smtp_url.as_deref().unwrap()).unwrap();
        settings(mail, &url)
    }

    #[test]
    fn plain_text_to_remote_host_is_rejected() {
        for raw in [
            "smtp://mail.example.com",
            "smtp://mail.example.com:587?tls=none",
            "smtp://mail.example.com:25?tls=opportunistic",
            "smtp://10.1.2.3",
        ] {
            let error = check(&mail(raw)).unwrap_err().to_string();
            assert!(error.contains("without TLS"), "{raw}: {error}");
            assert!(error.contains("tls=starttls"), "{raw}: {error}");
            assert!(
                error.contains("mail.allow_plaintext_hosts"),
                "{raw}: {error}"
            );
        }
    }

    #[test]
    fn plain_text_error_hides_password() {
        let error = check(&mail("smtp://u:hunter2@mail.example.com"))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn tls_or_loopback_or_listed_host_passes() {
        for raw in [
            "smtp://mail.example.com:587?tls=starttls",
            "smtps://mail.example.com",
            "smtp://127.0.0.1:2525",
            "smtp://[::1]:2525",
            "smtp://localhost:2525?tls=opportunistic",
        ] {
            assert!(check(&mail(raw)).is_ok(), "{raw}");
        }
        let mut listed = mail("smtp://relay.internal:25");
        listed.allow_plaintext_hosts = vec!["Relay.Internal".to_owned()];
        assert!(check(&listed).is_ok());
    }

    #[test]
    fn insecure_skip_verify_applies_to_named_host_only() {
        let mut config = mail("smtps://mail.example.com");
        config.insecure_skip_verify_hosts = vec!["other.example.com".to_owned()];
        assert!(!check(&config).unwrap().skip_certificate_check);
        config.insecure_skip_verify_hosts = vec!["mail.example.com".to_owned()];
        assert!(check(&config).unwrap().skip_certificate_check);
    }

    #[test]
    fn password_from_env_needs_user_in_url() {
        let mut config = mail("smtps://mail.example.com");
        config.password = Some(Secret::new("hunter2"));
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("names no user"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn password_from_env_joins_user_of_url() {
        let mut config = mail("smtps://billing@mail.example.com");
        config.password = Some(Secret::new("hunter2"));
        let credentials = check(&config).unwrap().credentials.unwrap();
        assert_eq!(credentials.username, "billing");
        assert_eq!(credentials.password, "hunter2");
    }

    #[test]
    fn password_file_is_read_without_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp-password");
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut config = mail("smtps://billing@mail.example.com");
        config.password_file = Some(path);
        let credentials = check(&config).unwrap().credentials.unwrap();
        assert_eq!(credentials.password, "s3cret");
    }

    #[test]
    fn password_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let mut config = mail("smtps://billing@mail.example.com");
        config.password_file = Some(missing.clone());
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("cannot read the file"), "{error}");
        assert!(error.contains(&missing.display().to_string()), "{error}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        config.password_file = Some(empty);
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("the file is empty"), "{error}");
    }

    #[test]
    fn two_password_sources_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp-password");
        std::fs::write(&path, "from-file").unwrap();
        let mut config = mail("smtps://billing:in-url@mail.example.com");
        config.password = Some(Secret::new("from-env"));
        config.password_file = Some(path);
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("more than one place"), "{error}");
        assert!(error.contains("INVOICER_SMTP_PASSWORD"), "{error}");
        for secret in ["in-url", "from-env", "from-file"] {
            assert!(!error.contains(secret), "{error}");
        }
    }

    #[test]
    fn invalid_limits_name_the_key() {
        let mut config = mail("smtp://127.0.0.1:2525");
        config.max_connections = 0;
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("mail.max_connections"), "{error}");

        let mut config = mail("smtp://127.0.0.1:2525");
        config.max_messages_per_second = -1.0;
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("mail.max_messages_per_second"), "{error}");

        config.max_messages_per_second = f64::NAN;
        assert!(check(&config).is_err());

        let mut config = mail("smtp://127.0.0.1:2525");
        config.timeout_secs = 0;
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("mail.timeout_secs"), "{error}");
    }
}
