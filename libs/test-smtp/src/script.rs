//! The server's behaviour, set up through the builder: the extensions it advertises and the
//! faults it injects.

use std::collections::HashMap;
use std::time::Duration;

/// One SMTP reply: a three-digit code and its text, for example `550` and
/// `5.1.1 no such user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            text: text.into(),
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

/// The points of a session where the builder can delay the server's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Greeting,
    Ehlo,
    MailFrom,
    RcptTo,
    /// The reply to the `DATA` command itself (354 or a scripted refusal).
    Data,
    /// The reply after the final dot of the message.
    DataEnd,
}

/// The server's use of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    None,
    /// Advertises STARTTLS; `required` rejects MAIL before the upgrade.
    StartTls {
        required: bool,
    },
    /// TLS from the first byte, as on port 465.
    Implicit,
}

/// The full behaviour of one server, shared read-only by its sessions.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) hostname: String,
    pub(crate) greeting: Reply,
    pub(crate) smtputf8: bool,
    pub(crate) max_size: Option<usize>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) require_auth: bool,
    pub(crate) tls: TlsMode,
    pub(crate) mail_from_reply: Option<Reply>,
    /// Keyed by the lowercased address.
    pub(crate) rcpt_replies: HashMap<String, Reply>,
    pub(crate) data_reply: Option<Reply>,
    pub(crate) data_end_reply: Option<Reply>,
    pub(crate) close_after_data: bool,
    pub(crate) delays: HashMap<Stage, Duration>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            hostname: "test-smtp.localhost".to_owned(),
            greeting: Reply::new(220, "test-smtp.localhost ESMTP ready"),
            smtputf8: true,
            max_size: None,
            credentials: None,
            require_auth: false,
            tls: TlsMode::None,
            mail_from_reply: None,
            rcpt_replies: HashMap::new(),
            data_reply: None,
            data_end_reply: None,
            close_after_data: false,
            delays: HashMap::new(),
        }
    }
}

impl Script {
    pub(crate) fn rcpt_reply(&self, address: &str) -> Option<&Reply> {
        self.rcpt_replies.get(&address.to_lowercase())
    }

    pub(crate) fn delay(&self, stage: Stage) -> Option<Duration> {
        self.delays.get(&stage).copied()
    }
}

/// Builds a [`TestSmtpServer`](crate::TestSmtpServer); `start` binds it on `127.0.0.1:0`.
#[derive(Debug, Clone, Default)]
pub struct TestSmtpServerBuilder {
    pub(crate) script: Script,
}

impl TestSmtpServerBuilder {
    /// Sets the name the server gives in its greeting and EHLO reply.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        let hostname = hostname.into();
        self.script.greeting = Reply::new(220, format!("{hostname} ESMTP ready"));
        self.script.hostname = hostname;
        self
    }

    /// Replaces the 220 greeting. Any code other than 220 is sent and the connection closed,
    /// as a server does with `421 4.3.2 service not available`.
    pub fn greeting(mut self, code: u16, text: impl Into<String>) -> Self {
        self.script.greeting = Reply::new(code, text);
        self
    }

    /// Sets whether EHLO advertises SMTPUTF8 (the default is yes). Without it, MAIL with the
    /// SMTPUTF8 parameter and any non-ASCII address are rejected.
    pub fn smtputf8(mut self, advertised: bool) -> Self {
        self.script.smtputf8 = advertised;
        self
    }

    /// Advertises `SIZE bytes` and rejects a larger SIZE parameter or message with 552.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.script.max_size = Some(bytes);
        self
    }

    /// Advertises AUTH PLAIN and LOGIN and accepts exactly these credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.script.credentials = Some((username.into(), password.into()));
        self
    }

    /// Rejects MAIL with 530 until the client has authenticated.
    pub fn require_auth(mut self) -> Self {
        self.script.require_auth = true;
        self
    }

    /// Advertises STARTTLS; the client may still send mail in plain text.
    pub fn starttls(mut self) -> Self {
        self.script.tls = TlsMode::StartTls { required: false };
        self
    }

    /// Advertises STARTTLS and rejects MAIL with 530 until the client has upgraded.
    pub fn require_starttls(mut self) -> Self {
        self.script.tls = TlsMode::StartTls { required: true };
        self
    }

    /// Speaks TLS from the first byte (implicit TLS, `smtps://`).
    pub fn implicit_tls(mut self) -> Self {
        self.script.tls = TlsMode::Implicit;
        self
    }

    /// Replies to every MAIL FROM with this reply instead of `250`.
    pub fn reply_to_mail_from(mut self, code: u16, text: impl Into<String>) -> Self {
        self.script.mail_from_reply = Some(Reply::new(code, text));
        self
    }

    /// Replies to `RCPT TO:<address>` (compared without case) with this reply, for example
    /// `550 5.1.1 no such user` or `450 4.2.0 try later`.
    pub fn reject_rcpt(mut self, address: &str, code: u16, text: impl Into<String>) -> Self {
        self.script
            .rcpt_replies
            .insert(address.to_lowercase(), Reply::new(code, text));
        self
    }

    /// Replies to the DATA command with this reply instead of `354`.
    pub fn reply_to_data(mut self, code: u16, text: impl Into<String>) -> Self {
        self.script.data_reply = Some(Reply::new(code, text));
        self
    }

    /// Replies to the final dot of a message with this reply instead of `250`, for example
    /// `451 4.3.0 try again later` or `554 5.6.0 message rejected`.
    pub fn reply_at_data_end(mut self, code: u16, text: impl Into<String>) -> Self {
        self.script.data_end_reply = Some(Reply::new(code, text));
        self
    }

    /// Reads the whole message, then closes the connection without replying to the final
    /// dot, so the client cannot know whether the message was accepted.
    pub fn close_after_data(mut self) -> Self {
        self.script.close_after_data = true;
        self
    }

    /// Waits this long before the reply at `stage`.
    pub fn delay(mut self, stage: Stage, delay: Duration) -> Self {
        self.script.delays.insert(stage, delay);
        self
    }
}
