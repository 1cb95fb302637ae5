//! Validates an [`OutgoingEmail`] and renders it as an RFC 5322 message with lettre's
//! builder, which encodes display names and subjects per RFC 2047 and attachment file names
//! per RFC 2231. Bcc recipients go into the envelope only, never into a header.

use std::time::SystemTime;

use invoicer_kit::config::MailConfig;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as MimeAttachment, Mailbox as MimeMailbox, MultiPart, SinglePart,
};
use lettre::{Address, Message};

use crate::email::{Attachment, Mailbox, OutgoingEmail, Role};
use crate::error::MailDeliveryError;

const DELIVERY_KEY_MAX_CHARS: usize = 200;

/// The settings a request may leave out, from the `mail` section of the configuration.
#[derive(Debug, Clone)]
pub(crate) struct MessageDefaults {
    from: MimeMailbox,
    reply_to: Option<MimeMailbox>,
    message_id_domain: Option<String>,
}

impl MessageDefaults {
    pub(crate) fn from_config(mail: &MailConfig) -> Result<MessageDefaults, MailDeliveryError> {
        let invalid =
            |key: &'static str, value: &str, reason: String| MailDeliveryError::InvalidConfig {
                key,
                value: value.to_owned(),
                reason,
            };
        let from = mail.from.parse::<MimeMailbox>().map_err(|error| {
            invalid(
                "from",
                &mail.from,
                format!("{error}; expected `Name <address@domain>`"),
            )
        })?;
        let reply_to = match mail
            .reply_to
            .as_deref()
            .filter(|value| !value.trim().is_empty())
        {
            Some(value) => Some(value.parse::<MimeMailbox>().map_err(|error| {
                invalid(
                    "reply_to",
                    value,
                    format!("{error}; expected `Name <address@domain>`"),
                )
            })?),
            None => None,
        };
        let message_id_domain = match mail.message_id_domain.as_deref() {
            Some(domain) if !is_message_id_part(domain) => {
                return Err(invalid(
                    "message_id_domain",
                    domain,
                    "expected a domain name".to_owned(),
                ));
            }
            domain => domain.map(str::to_owned),
        };
        Ok(MessageDefaults {
            from,
            reply_to,
            message_id_domain,
        })
    }
}

/// One envelope recipient, after de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub(crate) address: Address,
    pub(crate) role: Role,
}

#[derive(Debug, Clone)]
struct ValidAttachment {
    file_name: String,
    content_type: ContentType,
    content: Vec<u8>,
}

/// A validated email, rendered for every recipient, that can be rendered again without
/// some recipients (see [`PreparedEmail::render_without`]).
#[derive(Debug, Clone)]
pub(crate) struct PreparedEmail {
    /// Without angle brackets.
    pub(crate) message_id: String,
    pub(crate) delivery_key: Option<String>,
    /// MAIL FROM: the From address.
    pub(crate) sender: Address,
    /// RCPT TO, in order: To, then Cc, then Bcc, each address once.
    pub(crate) recipients: Vec<Recipient>,
    /// The message as rendered for every recipient.
    pub(crate) bytes: Vec<u8>,
    /// A 4xx to some RCPTs defers only those recipients.
    pub(crate) defer_per_recipient: bool,
    from: MimeMailbox,
    to: Vec<MimeMailbox>,
    cc: Vec<MimeMailbox>,
    reply_to: Option<MimeMailbox>,
    subject: String,
    date: SystemTime,
    text_body: String,
    html_body: Option<String>,
    attachments: Vec<ValidAttachment>,
}

/// Validates `email` and renders it; every error names the request field.
pub(crate) fn prepare(
    email: OutgoingEmail,
    defaults: &MessageDefaults,
) -> Result<PreparedEmail, MailDeliveryError> {
    let (from, reply_to) = originator(&email, defaults)?;
    let to = mailboxes("to", &email.to)?;
    let cc = mailboxes("cc", &email.cc)?;
    let bcc = mailboxes("bcc", &email.bcc)?;
    let recipients = envelope_recipients(&to, &cc, &bcc);
    if recipients.is_empty() {
        return Err(MailDeliveryError::invalid_request(
            "to",
            "at least one recipient in to, cc or bcc is required",
        ));
    }
    let recipients = without_skipped(recipients, &email.skip_recipients)?;
    check_header_text("subject", &email.subject)?;
    let message_id_domain = defaults.message_id_domain.as_deref();
    let message_id = message_id(email.message_id.as_deref(), message_id_domain, &from)?;
    let delivery_key = email.delivery_key.as_deref().filter(|key| !key.is_empty());
    let delivery_key = delivery_key.map(checked_delivery_key).transpose()?;

    let mut prepared = PreparedEmail {
        message_id,
        delivery_key,
        sender: from.email.clone(),
        recipients,
        bytes: Vec::new(),
        defer_per_recipient: email.defer_per_recipient,
        from,
        to,
        cc,
        reply_to,
        subject: email.subject,
        date: SystemTime::now(),
        text_body: email.text_body,
        html_body: email.html_body.filter(|html| !html.is_empty()),
        attachments: attachments(email.attachments)?,
    };
    prepared.bytes = prepared.render_without(&[])?;
    Ok(prepared)
}

/// Returns From and Reply-To: the request's, or the configured ones when the request
/// leaves them empty.
fn originator(
    email: &OutgoingEmail,
    defaults: &MessageDefaults,
) -> Result<(MimeMailbox, Option<MimeMailbox>), MailDeliveryError> {
    let from = match &email.from {
        Some(from) if !from.address.trim().is_empty() => mailbox("from", from)?,
        _ => defaults.from.clone(),
    };
    let reply_to = match &email.reply_to {
        Some(reply_to) if !reply_to.address.trim().is_empty() => {
            Some(mailbox("reply_to", reply_to)?)
        }
        _ => defaults.reply_to.clone(),
    };
    Ok((from, reply_to))
}

/// Returns the caller's Message-ID after checking it, or a new `uuid@domain` with the
/// configured domain or else the From address's domain.
fn message_id(
    requested: Option<&str>,
    configured_domain: Option<&str>,
    from: &MimeMailbox,
) -> Result<String, MailDeliveryError> {
    match requested.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => checked_message_id(id),
        None => Ok(generate_message_id(
            configured_domain.unwrap_or(from.email.domain()),
        )),
    }
}

impl PreparedEmail {
    /// Renders the message with the `omitted` addresses left out of To and Cc, for a server
    /// that cannot take them (a non-ASCII address without SMTPUTF8). Date and Message-ID
    /// stay the same; the MIME boundaries change.
    pub(crate) fn render_without(&self, omitted: &[Address]) -> Result<Vec<u8>, MailDeliveryError> {
        let kept = |mailbox: &&MimeMailbox| !omitted.contains(&mailbox.email);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(self.subject.clone())
            .date(self.date)
            .message_id(Some(format!("<{}>", self.message_id)));
        for mailbox in self.to.iter().filter(kept) {
            builder = builder.to(mailbox.clone());
        }
        for mailbox in self.cc.iter().filter(kept) {
            builder = builder.cc(mailbox.clone());
        }
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some(key) = &self.delivery_key {
            builder = builder.header(DeliveryKeyHeader(key.clone()));
        }
        // The envelope only satisfies the builder; the SMTP session sends its own RCPTs.
        let envelope_to = self.recipients.iter().map(|r| r.address.clone()).collect();
        let envelope = lettre::address::Envelope::new(Some(self.sender.clone()), envelope_to)
            .map_err(|error| MailDeliveryError::Build(error.to_string()))?;
        let builder = builder.envelope(envelope);
        let message = match self.body() {
            Body::Single(part) => builder.singlepart(part),
            Body::Multi(part) => builder.multipart(part),
        }
        .map_err(|error| MailDeliveryError::Build(error.to_string()))?;
        Ok(message.formatted())
    }

    fn body(&self) -> Body {
        let text = SinglePart::plain(self.text_body.clone());
        let content = match &self.html_body {
            Some(html) => Body::Multi(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::html(html.clone())),
            ),
            None => Body::Single(text),
        };
        if self.attachments.is_empty() {
            return content;
        }
        let mut mixed = match content {
            Body::Single(part) => MultiPart::mixed().singlepart(part),
            Body::Multi(part) => MultiPart::mixed().multipart(part),
        };
        for attachment in &self.attachments {
            let part = MimeAttachment::new(attachment.file_name.clone())
                .body(attachment.content.clone(), attachment.content_type.clone());
            mixed = mixed.singlepart(part);
        }
        Body::Multi(mixed)
    }
}

/// The top-level MIME body: text alone, or a multipart (alternative, mixed or both).
enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

/// `X-Invoicer-Delivery`: the caller's delivery key, so a bounce or a copy in a mailbox
/// can be traced back to the delivery row.
#[derive(Debug, Clone)]
struct DeliveryKeyHeader(String);

impl Header for DeliveryKeyHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Invoicer-Delivery")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DeliveryKeyHeader(text.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

fn mailbox(field: &str, mailbox: &Mailbox) -> Result<MimeMailbox, MailDeliveryError> {
    let address_text = mailbox.address.trim();
    if address_text.is_empty() {
        return Err(MailDeliveryError::invalid_request(
            format!("{field}.address"),
            "the address is empty",
        ));
    }
    let address = address_text.parse::<Address>().map_err(|error| {
        MailDeliveryError::invalid_request(
            format!("{field}.address"),
            format!("invalid email address {address_text:?}: {error}"),
        )
    })?;
    let name = mailbox.name.trim();
    check_header_text(&format!("{field}.name"), name)?;
    Ok(MimeMailbox::new(
        (!name.is_empty()).then(|| name.to_owned()),
        address,
    ))
}

fn mailboxes(field: &str, list: &[Mailbox]) -> Result<Vec<MimeMailbox>, MailDeliveryError> {
    list.iter()
        .enumerate()
        .map(|(index, entry)| mailbox(&format!("{field}[{index}]"), entry))
        .collect()
}

/// To, Cc and Bcc in that order; an address that appears twice (compared without case) is
/// kept once, with its first role.
fn envelope_recipients(
    to: &[MimeMailbox],
    cc: &[MimeMailbox],
    bcc: &[MimeMailbox],
) -> Vec<Recipient> {
    let mut recipients: Vec<Recipient> = Vec::new();
    let lists = [(to, Role::To), (cc, Role::Cc), (bcc, Role::Bcc)];
    for (list, role) in lists {
        for mailbox in list {
            let address = address_text(&mailbox.email);
            let seen = recipients
                .iter()
                .any(|r| address_text(&r.address).eq_ignore_ascii_case(address));
            if !seen {
                recipients.push(Recipient {
                    address: mailbox.email.clone(),
                    role,
                });
            }
        }
    }
    recipients
}

/// Removes the `skip` addresses from the envelope. Each must name a recipient of to, cc or
/// bcc (compared without case), and at least one recipient must be left.
fn without_skipped(
    recipients: Vec<Recipient>,
    skip: &[String],
) -> Result<Vec<Recipient>, MailDeliveryError> {
    for (index, address) in skip.iter().enumerate() {
        let listed = recipients
            .iter()
            .any(|r| address_text(&r.address).eq_ignore_ascii_case(address.trim()));
        if !listed {
            return Err(MailDeliveryError::invalid_request(
                format!("skip_recipients[{index}]"),
                format!("{address:?} is not a recipient in to, cc or bcc"),
            ));
        }
    }
    let kept: Vec<Recipient> = recipients
        .into_iter()
        .filter(|r| {
            !skip
                .iter()
                .any(|address| address_text(&r.address).eq_ignore_ascii_case(address.trim()))
        })
        .collect();
    if kept.is_empty() {
        return Err(MailDeliveryError::invalid_request(
            "skip_recipients",
            "every recipient is skipped, so there is nobody left to send to",
        ));
    }
    Ok(kept)
}

fn address_text(address: &Address) -> &str {
    address.as_ref()
}

/// Returns whether the address can go into an envelope without SMTPUTF8.
pub(crate) fn is_ascii_address(address: &Address) -> bool {
    address_text(address).is_ascii()
}

fn check_header_text(field: &str, text: &str) -> Result<(), MailDeliveryError> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(MailDeliveryError::invalid_request(
            field,
            "contains a line break or control character",
        ));
    }
    Ok(())
}

fn attachments(list: Vec<Attachment>) -> Result<Vec<ValidAttachment>, MailDeliveryError> {
    let mut valid = Vec::with_capacity(list.len());
    for (index, attachment) in list.into_iter().enumerate() {
        let field = format!("attachments[{index}]");
        let file_name = attachment.file_name.trim().to_owned();
        if file_name.is_empty() || file_name.contains(['/', '\\']) {
            return Err(MailDeliveryError::invalid_request(
                format!("{field}.file_name"),
                format!("invalid file name {file_name:?}: expected a name without folders"),
            ));
        }
        check_header_text(&format!("{field}.file_name"), &file_name)?;
        let content_type = match attachment.content_type.trim() {
            "" => ContentType::parse("application/octet-stream"),
            text => ContentType::parse(text),
        }
        .map_err(|_| {
            MailDeliveryError::invalid_request(
                format!("{field}.content_type"),
                format!(
                    "invalid MIME type {:?}: expected a type such as application/pdf",
                    attachment.content_type
                ),
            )
        })?;
        valid.push(ValidAttachment {
            file_name,
            content_type,
            content: attachment.content,
        });
    }
    Ok(valid)
}

fn checked_message_id(id: &str) -> Result<String, MailDeliveryError> {
    if id.starts_with('<') || id.ends_with('>') {
        return Err(MailDeliveryError::invalid_request(
            "message_id",
            "write the Message-ID without angle brackets",
        ));
    }
    match id.split_once('@') {
        Some((left, right)) if is_message_id_part(left) && is_message_id_part(right) => {
            Ok(id.to_owned())
        }
        _ => Err(MailDeliveryError::invalid_request(
            "message_id",
            format!("invalid Message-ID {id:?}: expected `unique-part@domain` in printable ASCII"),
        )),
    }
}

fn is_message_id_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@' | '"' | '\\'))
}

fn generate_message_id(domain: &str) -> String {
    format!("{}@{}", uuid::Uuid::new_v4(), domain)
}

fn checked_delivery_key(key: &str) -> Result<String, MailDeliveryError> {
    // Invoice numbers in keys may be non-ASCII, and lettre encodes such a header value by
    // RFC 2047. Control characters could end the header, so they are rejected.
    let printable = !key.chars().any(char::is_control);
    if !printable || key.chars().count() > DELIVERY_KEY_MAX_CHARS {
        return Err(MailDeliveryError::invalid_request(
            "delivery_key",
            format!(
                "expected at most {DELIVERY_KEY_MAX_CHARS} characters without control characters"
            ),
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests;
