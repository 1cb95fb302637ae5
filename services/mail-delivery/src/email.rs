//! The domain types of one send: the email as the caller described it and the report of
//! what happened to it.

/// A display name and an address, as the caller sent them (not yet validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// Empty for a bare address.
    pub name: String,
    pub address: String,
}

/// The header that names a recipient. Bcc recipients appear in the envelope only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    To,
    Cc,
    Bcc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    /// A MIME type such as `application/pdf`; empty means `application/octet-stream`.
    pub content_type: String,
    pub content: Vec<u8>,
}

/// One message to send, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// `None` uses `mail.from` from the configuration.
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    /// `None` uses `mail.reply_to` from the configuration, when set.
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text_body: String,
    /// With it, the message is multipart/alternative.
    pub html_body: Option<String>,
    pub attachments: Vec<Attachment>,
    /// Without angle brackets; `None` generates `<uuid@domain>`.
    pub message_id: Option<String>,
    /// Written as the `X-Invoicer-Delivery` header.
    pub delivery_key: Option<String>,
    /// Addresses of `to`, `cc` or `bcc` that get no RCPT TO in this send because an earlier
    /// send of the same message settled them. They stay in the To and Cc headers.
    pub skip_recipients: Vec<String>,
    /// With it, a transient reply to some RCPTs defers only those recipients, and the
    /// message goes to the others (outcome [`Outcome::PartiallyDeferred`]). Without it, such
    /// a reply defers the whole message for every recipient.
    pub defer_per_recipient: bool,
}

/// The outcome of one send, with the meanings the `DeliveryOutcome` proto enum documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    PartiallySent,
    /// Accepted for some recipients; the others got a transient reply and are due a retry.
    PartiallyDeferred,
    Deferred,
    Failed,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::PartiallySent => "partially_sent",
            Outcome::PartiallyDeferred => "partially_deferred",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The step of an SMTP session where a send ended: [`SmtpStage::DataEnd`] once the server
/// replied to the final dot, or the step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStage {
    /// No SMTP session: the message went to the outbox.
    NoSession,
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    /// MAIL FROM, and the client's checks just before it (SIZE, SMTPUTF8).
    MailFrom,
    RcptTo,
    /// The DATA command and the message body up to the final dot.
    Data,
    /// The reply to the final dot.
    DataEnd,
}

impl SmtpStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpStage::NoSession => "none",
            SmtpStage::Connect => "connect",
            SmtpStage::Greeting => "greeting",
            SmtpStage::Ehlo => "EHLO",
            SmtpStage::StartTls => "STARTTLS",
            SmtpStage::Auth => "AUTH",
            SmtpStage::MailFrom => "MAIL FROM",
            SmtpStage::RcptTo => "RCPT TO",
            SmtpStage::Data => "DATA",
            SmtpStage::DataEnd => "end of data",
        }
    }
}

/// The result for one envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    pub address: String,
    pub role: Role,
    /// True only when the server accepted the message for this recipient: its RCPT TO got a
    /// 2xx reply and so did the end of DATA. False for every recipient of a deferred, failed
    /// or unknown send.
    pub accepted: bool,
    /// The reply to RCPT TO, 0 when none was received (the command was never sent, or the
    /// recipient failed locally, as a non-ASCII address does without SMTPUTF8).
    pub reply_code: u16,
    pub reply_text: String,
    /// The recipient's own outcome: `Sent` when `accepted`, `Failed` after a 5xx to its
    /// RCPT TO or a local failure, `Deferred` after a 4xx to its RCPT TO, otherwise the
    /// outcome of the whole message.
    pub outcome: Outcome,
}

/// The result of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub outcome: Outcome,
    pub recipients: Vec<RecipientReport>,
    /// The reply to the end of DATA (`250 2.0.0 Ok: queued as 4F2A`), or the outbox note.
    pub server_reply: String,
    pub message_id: String,
    /// `smtp://host:port` (never with credentials) or the outbox file's path.
    pub destination: String,
    /// The reason the send did not fully succeed, empty when it did.
    pub error: String,
    /// Bytes of the message handed to DATA or the outbox; 0 when the send stopped before.
    pub message_size: u64,
    /// The stage the session ended at.
    pub stage: SmtpStage,
    /// The last reply the server sent (`451 4.3.0 try later`), empty when it sent none.
    pub last_reply: String,
}
