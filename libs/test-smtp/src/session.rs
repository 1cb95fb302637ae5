//! One SMTP session (RFC 5321): greeting, EHLO, optional STARTTLS and AUTH, then mail
//! transactions, with the faults the script sets up.

mod auth;
mod data;

use tokio::net::TcpStream;

use crate::connection::{Connection, Line};
use crate::script::{Action, Reply, Response, Script, Stage, TlsMode};
use crate::server::ServerContext;

/// The command loop's next step after one command.
enum Flow {
    Continue,
    Close,
    StartTls,
}

/// The event that ended the wait for the next command.
enum Wait {
    Line(std::io::Result<Line>),
    Idle,
    Closing,
}

/// The reason the command loop stopped.
enum Exit {
    Close,
    StartTls,
}

/// The MAIL FROM and RCPT TO state of the current transaction.
struct Transaction {
    mail_from: String,
    parameters: Vec<String>,
    smtputf8: bool,
    declared_size: Option<usize>,
    rcpt_to: Vec<String>,
}

pub(crate) struct Session<'a> {
    context: &'a ServerContext,
    /// The connection's number, counted from 1 in the order the server accepted them.
    connection_number: usize,
    ehlo_name: Option<String>,
    authenticated_as: Option<String>,
    transaction: Option<Transaction>,
}

impl<'a> Session<'a> {
    /// Serves one connection until QUIT, a fault that closes it, or the client leaving.
    pub(crate) async fn run(
        socket: TcpStream,
        context: &'a ServerContext,
        connection_number: usize,
    ) -> std::io::Result<()> {
        let implicit_tls = context.script.tls == TlsMode::Implicit;
        let mut connection = if implicit_tls {
            Connection::new(Box::new(context.tls.acceptor.accept(socket).await?), true)
        } else {
            Connection::new(Box::new(socket), false)
        };
        let mut session = Session::new(context, connection_number);
        if !session.greet(&mut connection).await? {
            return Ok(());
        }
        loop {
            match session.serve_commands(&mut connection).await? {
                Exit::Close => return Ok(()),
                Exit::StartTls => {
                    let tls_stream = context
                        .tls
                        .acceptor
                        .accept(connection.into_stream())
                        .await?;
                    connection = Connection::new(Box::new(tls_stream), true);
                    // RFC 3207: after the upgrade the client starts again with EHLO.
                    session = Session::new(context, connection_number);
                }
            }
        }
    }

    fn new(context: &'a ServerContext, connection_number: usize) -> Session<'a> {
        Session {
            context,
            connection_number,
            ehlo_name: None,
            authenticated_as: None,
            transaction: None,
        }
    }

    fn script(&self) -> &'a Script {
        &self.context.script
    }

    /// Sends the greeting; returns false when the greeting refuses service or the script
    /// closed the connection.
    async fn greet(&self, connection: &mut Connection) -> std::io::Result<bool> {
        let greeting = self.script().greeting.clone();
        let sent = self
            .respond(connection, Stage::Greeting, None, greeting)
            .await?;
        Ok(sent.is_some_and(|reply| reply.code == 220))
    }

    /// Returns the scripted action for `stage` (and `address` at RCPT TO), counting its use.
    fn scripted(&self, stage: Stage, address: Option<&str>) -> Option<Action> {
        self.script()
            .take_action(&self.context.rule_uses, stage, address)
    }

    /// Sends the reply for `stage`: the scripted one, or `normal`, after any delay. Returns
    /// the reply sent, or `None` when the script closes the connection instead.
    async fn respond(
        &self,
        connection: &mut Connection,
        stage: Stage,
        address: Option<&str>,
        normal: Reply,
    ) -> std::io::Result<Option<Reply>> {
        let action = self.scripted(stage, address);
        self.respond_with(connection, stage, action, normal).await
    }

    async fn respond_with(
        &self,
        connection: &mut Connection,
        stage: Stage,
        action: Option<Action>,
        normal: Reply,
    ) -> std::io::Result<Option<Reply>> {
        if let Some(delay) = self.script().delay(stage) {
            tokio::time::sleep(delay).await;
        }
        let response = match action {
            Some(action) => {
                tokio::time::sleep(action.delay).await;
                action.response
            }
            None => Response::Normal,
        };
        let reply = match response {
            Response::Normal => normal,
            Response::Reply(reply) => reply,
            Response::Close => return Ok(None),
        };
        connection.send(&reply).await?;
        Ok(Some(reply))
    }

    /// Reads the next command line. Returns `None` when the idle timeout passed or the test
    /// closed idle connections, so the connection is to close.
    async fn next_line(&self, connection: &mut Connection) -> std::io::Result<Option<Line>> {
        let mut closing = self.context.store.closing_signal();
        let idle_timeout = self.script().idle_timeout;
        let idle = async {
            match idle_timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let wait = tokio::select! {
            line = connection.read_line() => Wait::Line(line),
            () = idle => Wait::Idle,
            _ = closing.changed() => Wait::Closing,
        };
        match wait {
            Wait::Line(line) => line.map(Some),
            Wait::Idle => {
                connection
                    .reply(421, "4.4.2 idle timeout, closing connection")
                    .await?;
                Ok(None)
            }
            Wait::Closing => Ok(None),
        }
    }

    async fn serve_commands(&mut self, connection: &mut Connection) -> std::io::Result<Exit> {
        loop {
            let Some(line) = self.next_line(connection).await? else {
                return Ok(Exit::Close);
            };
            let line = match line {
                Line::Complete(line) => line,
                Line::TooLong => {
                    connection.reply(500, "5.5.2 line too long").await?;
                    return Ok(Exit::Close);
                }
                Line::Closed => return Ok(Exit::Close),
            };
            let Ok(line) = String::from_utf8(line) else {
                connection
                    .reply(500, "5.5.2 command is not valid UTF-8")
                    .await?;
                continue;
            };
            let line = line.trim_end_matches(['\r', '\n']);
            match self.dispatch(connection, line).await? {
                Flow::Continue => {}
                Flow::Close => return Ok(Exit::Close),
                Flow::StartTls => return Ok(Exit::StartTls),
            }
        }
    }

    async fn dispatch(&mut self, connection: &mut Connection, line: &str) -> std::io::Result<Flow> {
        let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        let logged = if verb == "AUTH" {
            auth::redact(argument)
        } else {
            line.to_owned()
        };
        self.context.store.record_command(logged);

        match verb.as_str() {
            "EHLO" => self.hello(connection, argument, true).await,
            "HELO" => self.hello(connection, argument, false).await,
            "STARTTLS" => self.starttls(connection).await,
            "AUTH" => self.auth(connection, argument).await,
            "MAIL" => self.mail(connection, argument).await,
            "RCPT" => self.rcpt(connection, argument).await,
            "DATA" => self.data(connection).await,
            "RSET" => {
                self.transaction = None;
                let sent = self
                    .respond(connection, Stage::Rset, None, Reply::new(250, "2.0.0 Ok"))
                    .await?;
                Ok(flow_after(sent.as_ref()))
            }
            "NOOP" => {
                let sent = self
                    .respond(connection, Stage::Noop, None, Reply::new(250, "2.0.0 Ok"))
                    .await?;
                Ok(flow_after(sent.as_ref()))
            }
            "QUIT" => {
                let normal = Reply::new(221, "2.0.0 Bye");
                self.respond(connection, Stage::Quit, None, normal).await?;
                Ok(Flow::Close)
            }
            _ => connection
                .reply(500, "5.5.2 command not recognized")
                .await
                .map(|()| Flow::Continue),
        }
    }

    async fn hello(
        &mut self,
        connection: &mut Connection,
        name: &str,
        extended: bool,
    ) -> std::io::Result<Flow> {
        let name = name.trim();
        if name.is_empty() {
            connection
                .reply(501, "5.5.4 a domain or address literal is required")
                .await?;
            return Ok(Flow::Continue);
        }
        let reply = if extended {
            Reply::new(250, self.ehlo_lines(connection.tls, name).join("\n"))
        } else {
            Reply::new(250, format!("{} greets {name}", self.script().hostname))
        };
        let sent = self.respond(connection, Stage::Ehlo, None, reply).await?;
        if sent.as_ref().is_some_and(Reply::is_positive) {
            self.ehlo_name = Some(name.to_owned());
            self.transaction = None;
        }
        Ok(flow_after(sent.as_ref()))
    }

    fn ehlo_lines(&self, tls: bool, client: &str) -> Vec<String> {
        let script = self.script();
        let mut lines = vec![format!("{} greets {client}", script.hostname)];
        lines.push("8BITMIME".to_owned());
        lines.push("ENHANCEDSTATUSCODES".to_owned());
        if script.smtputf8 {
            lines.push("SMTPUTF8".to_owned());
        }
        if let Some(max_size) = script.max_size {
            lines.push(format!("SIZE {max_size}"));
        }
        if matches!(script.tls, TlsMode::StartTls { .. }) && !tls {
            lines.push("STARTTLS".to_owned());
        }
        if script.credentials.is_some() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        lines
    }

    async fn starttls(&mut self, connection: &mut Connection) -> std::io::Result<Flow> {
        if !matches!(self.script().tls, TlsMode::StartTls { .. }) {
            connection.reply(502, "5.5.1 STARTTLS not offered").await?;
            return Ok(Flow::Continue);
        }
        if connection.tls {
            connection.reply(503, "5.5.1 TLS already active").await?;
            return Ok(Flow::Continue);
        }
        let normal = Reply::new(220, "2.0.0 ready to start TLS");
        let sent = self
            .respond(connection, Stage::StartTls, None, normal)
            .await?;
        Ok(match sent {
            Some(reply) if reply.code == 220 => Flow::StartTls,
            Some(_) => Flow::Continue,
            None => Flow::Close,
        })
    }

    /// Returns the reply that rejects MAIL while it is not allowed yet.
    fn mail_refusal(&self, connection: &Connection) -> Option<Reply> {
        let script = self.script();
        if self.ehlo_name.is_none() {
            return Some(Reply::new(503, "5.5.1 send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return Some(Reply::new(503, "5.5.1 MAIL already given, send RSET first"));
        }
        if script.tls == (TlsMode::StartTls { required: true }) && !connection.tls {
            return Some(Reply::new(530, "5.7.0 must issue a STARTTLS command first"));
        }
        if script.require_auth && self.authenticated_as.is_none() {
            return Some(Reply::new(530, "5.7.0 authentication required"));
        }
        None
    }

    async fn mail(&mut self, connection: &mut Connection, argument: &str) -> std::io::Result<Flow> {
        if let Some(refusal) = self.mail_refusal(connection) {
            connection.send(&refusal).await?;
            return Ok(Flow::Continue);
        }
        let transaction = match parse_mail(argument, self.script()) {
            Ok(transaction) => transaction,
            Err(reply) => {
                connection.send(&reply).await?;
                return Ok(Flow::Continue);
            }
        };
        let normal = Reply::new(250, "2.1.0 Ok");
        let sent = self
            .respond(connection, Stage::MailFrom, None, normal)
            .await?;
        if sent.as_ref().is_some_and(Reply::is_positive) {
            self.transaction = Some(transaction);
        }
        Ok(flow_after(sent.as_ref()))
    }

    async fn rcpt(&mut self, connection: &mut Connection, argument: &str) -> std::io::Result<Flow> {
        let Some(transaction) = &self.transaction else {
            connection.reply(503, "5.5.1 send MAIL first").await?;
            return Ok(Flow::Continue);
        };
        let (address, normal) = match parse_path(argument, "TO:") {
            Err(reply) => (None, reply),
            Ok((address, _)) if !address.is_ascii() && !transaction.smtputf8 => (
                None,
                Reply::new(553, "5.6.7 non-ASCII address needs SMTPUTF8"),
            ),
            Ok((address, _)) => (Some(address), Reply::new(250, "2.1.5 Ok")),
        };
        let sent = self
            .respond(connection, Stage::RcptTo, address.as_deref(), normal)
            .await?;
        let accepted = sent.as_ref().is_some_and(Reply::is_positive);
        if let (true, Some(address), Some(transaction)) =
            (accepted, address, self.transaction.as_mut())
        {
            transaction.rcpt_to.push(address);
        }
        Ok(flow_after(sent.as_ref()))
    }
}

/// Continues after a reply and closes after none, which means the script closed the
/// connection.
fn flow_after(sent: Option<&Reply>) -> Flow {
    match sent {
        Some(_) => Flow::Continue,
        None => Flow::Close,
    }
}

/// Parses `FROM:<address> PARAMETERS` and checks each parameter against what EHLO advertised.
fn parse_mail(argument: &str, script: &Script) -> Result<Transaction, Reply> {
    let (mail_from, parameters) = parse_path(argument, "FROM:")?;
    let mut transaction = Transaction {
        mail_from,
        parameters: parameters.clone(),
        smtputf8: false,
        declared_size: None,
        rcpt_to: Vec::new(),
    };
    for parameter in &parameters {
        let (keyword, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match keyword.to_ascii_uppercase().as_str() {
            "SMTPUTF8" if script.smtputf8 => transaction.smtputf8 = true,
            "BODY"
                if value.eq_ignore_ascii_case("8BITMIME") || value.eq_ignore_ascii_case("7BIT") => {
            }
            "SIZE" => transaction.declared_size = Some(parse_size(value, script.max_size)?),
            _ => {
                return Err(Reply::new(
                    555,
                    format!("5.5.4 unsupported parameter {parameter}"),
                ));
            }
        }
    }
    if !transaction.mail_from.is_ascii() && !transaction.smtputf8 {
        return Err(Reply::new(553, "5.6.7 non-ASCII address needs SMTPUTF8"));
    }
    Ok(transaction)
}

fn parse_size(value: &str, max_size: Option<usize>) -> Result<usize, Reply> {
    let size: usize = value
        .parse()
        .map_err(|_| Reply::new(501, format!("5.5.4 invalid SIZE value {value:?}")))?;
    match max_size {
        Some(max_size) if size > max_size => Err(Reply::new(
            552,
            "5.3.4 message size exceeds fixed maximum message size",
        )),
        _ => Ok(size),
    }
}

/// Splits `FROM:<path> PARAM PARAM` (or `TO:`) into the address and the parameters.
fn parse_path(argument: &str, prefix: &str) -> Result<(String, Vec<String>), Reply> {
    let syntax_error = || Reply::new(501, format!("5.5.4 syntax: {prefix}<address> [parameters]"));
    let head = argument.get(..prefix.len()).ok_or_else(syntax_error)?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(syntax_error());
    }
    let rest = argument[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<').ok_or_else(syntax_error)?;
    let (address, parameters) = rest.split_once('>').ok_or_else(syntax_error)?;
    let parameters = parameters.split_whitespace().map(str::to_owned).collect();
    Ok((address.to_owned(), parameters))
}
