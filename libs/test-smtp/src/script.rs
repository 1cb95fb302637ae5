//! The server's behaviour, set up through the builder: the extensions it advertises and the
//! faults it injects.

use std::collections::HashMap;
use std::sync::Mutex;
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

/// The points of a session where the builder can delay or replace the server's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Greeting,
    /// The reply to EHLO or HELO.
    Ehlo,
    /// The reply to the STARTTLS command (220 before the upgrade).
    StartTls,
    /// The reply to the AUTH command, given before any challenge.
    Auth,
    MailFrom,
    /// Every RCPT TO; [`TestSmtpServerBuilder::on_rcpt`] scripts one address.
    RcptTo,
    /// The reply to the `DATA` command itself (354 or a scripted refusal).
    Data,
    /// The reply after the final dot of the message.
    DataEnd,
    Rset,
    Noop,
    Quit,
}

/// The server's behaviour at one stage in place of the normal one: wait, then send a given
/// reply, the normal reply, or close the connection without replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub(crate) delay: Duration,
    pub(crate) response: Response,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    Normal,
    Reply(Reply),
    Close,
}

impl Action {
    /// Sends this reply in place of the normal one. A positive reply has the normal effect
    /// (the recipient is accepted, the message is stored, TLS starts after a 220).
    pub fn reply(code: u16, text: impl Into<String>) -> Action {
        Action {
            delay: Duration::ZERO,
            response: Response::Reply(Reply::new(code, text)),
        }
    }

    /// Closes the connection without a reply. At [`Stage::DataEnd`] the message is read
    /// and stored first.
    pub fn close() -> Action {
        Action {
            delay: Duration::ZERO,
            response: Response::Close,
        }
    }

    /// Sends the normal reply after `delay`.
    pub fn delay(delay: Duration) -> Action {
        Action {
            delay,
            response: Response::Normal,
        }
    }

    /// Waits `delay` before this action.
    pub fn after(mut self, delay: Duration) -> Action {
        self.delay = delay;
        self
    }
}

/// The command a scripted action applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Stage(Stage),
    /// RCPT TO for one address, lowercased.
    Rcpt(String),
}

/// One scripted action with the number of times it applies (`None`: every time).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    target: Target,
    action: Action,
    times: Option<usize>,
}

/// How often each rule has been used, across every connection of one server.
#[derive(Debug, Default)]
pub(crate) struct RuleUses(Mutex<Vec<usize>>);

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
    /// Checked in order; the first rule for the target that has uses left applies.
    pub(crate) rules: Vec<Rule>,
    pub(crate) delays: HashMap<Stage, Duration>,
    /// Closes a connection that sends no command for this long, after a 421 reply.
    pub(crate) idle_timeout: Option<Duration>,
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
            rules: Vec::new(),
            delays: HashMap::new(),
            idle_timeout: None,
        }
    }
}

impl Script {
    pub(crate) fn delay(&self, stage: Stage) -> Option<Duration> {
        self.delays.get(&stage).copied()
    }

    /// Returns the scripted action at `stage` and counts its use; for RCPT TO, a rule for
    /// `address` comes before a rule for every recipient.
    pub(crate) fn take_action(
        &self,
        uses: &RuleUses,
        stage: Stage,
        address: Option<&str>,
    ) -> Option<Action> {
        let mut uses = uses
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        uses.resize(self.rules.len(), 0);
        let rcpt_target = address.map(|address| Target::Rcpt(address.to_lowercase()));
        let targets = rcpt_target.into_iter().chain([Target::Stage(stage)]);
        for target in targets {
            let found = self.rules.iter().enumerate().find(|(index, rule)| {
                rule.target == target && rule.times.is_none_or(|times| uses[*index] < times)
            });
            if let Some((index, rule)) = found {
                uses[index] += 1;
                return Some(rule.action.clone());
            }
        }
        None
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
    pub fn reply_to_mail_from(self, code: u16, text: impl Into<String>) -> Self {
        self.on(Stage::MailFrom, Action::reply(code, text))
    }

    /// Replies to `RCPT TO:<address>` (compared without case) with this reply, for example
    /// `550 5.1.1 no such user` or `450 4.2.0 try later`.
    pub fn reject_rcpt(self, address: &str, code: u16, text: impl Into<String>) -> Self {
        self.on_rcpt(address, Action::reply(code, text))
    }

    /// Replies to the DATA command with this reply instead of `354`.
    pub fn reply_to_data(self, code: u16, text: impl Into<String>) -> Self {
        self.on(Stage::Data, Action::reply(code, text))
    }

    /// Replies to the final dot of a message with this reply instead of `250`, for example
    /// `451 4.3.0 try again later` or `554 5.6.0 message rejected`.
    pub fn reply_at_data_end(self, code: u16, text: impl Into<String>) -> Self {
        self.on(Stage::DataEnd, Action::reply(code, text))
    }

    /// Reads the whole message, then closes the connection without replying to the final
    /// dot, so the client cannot know whether the message was accepted.
    pub fn close_after_data(self) -> Self {
        self.on(Stage::DataEnd, Action::close())
    }

    /// Waits this long before the reply at `stage`, on top of any scripted action.
    pub fn delay(mut self, stage: Stage, delay: Duration) -> Self {
        self.script.delays.insert(stage, delay);
        self
    }

    /// Runs `action` at every `stage`, in place of the normal reply.
    pub fn on(self, stage: Stage, action: Action) -> Self {
        self.rule(Target::Stage(stage), action, None)
    }

    /// Runs `action` at the first `times` occurrences of `stage` across every connection.
    /// Later occurrences go to the next rule for the stage, or get the normal reply.
    pub fn on_first(self, stage: Stage, times: usize, action: Action) -> Self {
        self.rule(Target::Stage(stage), action, Some(times))
    }

    /// Runs `action` at every `RCPT TO:<address>` (compared without case).
    pub fn on_rcpt(self, address: &str, action: Action) -> Self {
        self.rule(Target::Rcpt(address.to_lowercase()), action, None)
    }

    /// Runs `action` at the first `times` `RCPT TO:<address>` commands across every
    /// connection, then falls back as [`on_first`](Self::on_first) does.
    pub fn on_rcpt_first(self, address: &str, times: usize, action: Action) -> Self {
        self.rule(Target::Rcpt(address.to_lowercase()), action, Some(times))
    }

    /// Closes a connection that sends no command for `timeout`, after a `421` reply, as
    /// servers end idle sessions.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.script.idle_timeout = Some(timeout);
        self
    }

    fn rule(mut self, target: Target, action: Action, times: Option<usize>) -> Self {
        self.script.rules.push(Rule {
            target,
            action,
            times,
        });
        self
    }
}
