//! One SMTP session (RFC 5321): greeting, EHLO, optional STARTTLS and AUTH, then mail
//! transactions, with the faults the script sets up.

mod auth;
mod data;

use tokio::net::TcpStream;

use crate::connection::{Connection, Line};
use crate::script::{Reply, Script, Stage, TlsMode};
use crate::server::ServerContext;

/// The command loop's next step after one command.
enum Flow {
    Continue,
    Close,
    StartTls,
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
    ehlo_name: Option<String>,
    authenticated_as: Option<String>,
    transaction: Option<Transaction>,
}

impl<'a> Session<'a> {
    /// Serves one connection until QUIT, a fault that closes it, or the client leaving.
    pub(crate) async fn run(socket: TcpStream, context: &'a ServerContext) -> std::io::Result<()> {
        let implicit_tls = context.script.tls == TlsMode::Implicit;
        let mut connection = if implicit_tls {
            Connection::new(Box::new(context.tls.acceptor.accept(socket).await?), true)
        } else {
            Connection::new(Box::new(socket), false)
        };
        let mut session = Session::new(context);
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
                    session = Session::new(context);
                }
            }
        }
    }

    fn new(context: &'a ServerContext) -> Session<'a> {
        Session {
            context,
            ehlo_name: None,
            authenticated_as: None,
            transaction: None,
        }
    }

    fn script(&self) -> &'a Script {
        &self.context.script
    }

    /// Sends the greeting; returns false when the script's greeting refuses service.
    async fn greet(&self, connection: &mut Connection) -> std::io::Result<bool> {
        let greeting = &self.script().greeting;
        self.send_at(connection, Stage::Greeting, greeting).await?;
        Ok(greeting.code == 220)
    }

    async fn send_at(
        &self,
        connection: &mut Connection,
        stage: Stage,
        reply: &Reply,
    ) -> std::io::Result<()> {
        if let Some(delay) = self.script().delay(stage) {
            tokio::time::sleep(delay).await;
        }
        connection.send(reply).await
    }

    async fn serve_commands(&mut self, connection: &mut Connection) -> std::io::Result<Exit> {
        loop {
            let line = match connection.read_line().await? {
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
                connection
                    .reply(250, "2.0.0 Ok")
                    .await
                    .map(|()| Flow::Continue)
            }
            "NOOP" => connection
                .reply(250, "2.0.0 Ok")
                .await
                .map(|()| Flow::Continue),
            "QUIT" => connection
                .reply(221, "2.0.0 Bye")
                .await
                .map(|()| Flow::Close),
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
        self.ehlo_name = Some(name.to_owned());
        self.transaction = None;
        let reply = if extended {
            Reply::new(250, self.ehlo_lines(connection.tls, name).join("\n"))
        } else {
            Reply::new(250, format!("{} greets {name}", self.script().hostname))
        };
        self.send_at(connection, Stage::Ehlo, &reply).await?;
        Ok(Flow::Continue)
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
        connection.reply(220, "2.0.0 ready to start TLS").await?;
        Ok(Flow::StartTls)
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
        let reply = self
            .script()
            .mail_from_reply
            .clone()
            .unwrap_or(Reply::new(250, "2.1.0 Ok"));
        if reply.is_positive() {
            self.transaction = Some(transaction);
        }
        self.send_at(connection, Stage::MailFrom, &reply).await?;
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, connection: &mut Connection, argument: &str) -> std::io::Result<Flow> {
        let script = self.script();
        let Some(transaction) = &mut self.transaction else {
            connection.reply(503, "5.5.1 send MAIL first").await?;
            return Ok(Flow::Continue);
        };
        let reply = match parse_path(argument, "TO:") {
            Err(reply) => reply,
            Ok((address, _)) if !address.is_ascii() && !transaction.smtputf8 => {
                Reply::new(553, "5.6.7 non-ASCII address needs SMTPUTF8")
            }
            Ok((address, _)) => {
                let reply = script
                    .rcpt_reply(&address)
                    .cloned()
                    .unwrap_or(Reply::new(250, "2.1.5 Ok"));
                if reply.is_positive() {
                    transaction.rcpt_to.push(address);
                }
                reply
            }
        };
        self.send_at(connection, Stage::RcptTo, &reply).await?;
        Ok(Flow::Continue)
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
