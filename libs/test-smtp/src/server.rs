//! The listening server: accepts connections on `127.0.0.1:0`, runs one session task per
//! connection and keeps what the sessions received.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::TestSmtpError;
use crate::script::{RuleUses, Script, TestSmtpServerBuilder, TlsMode};
use crate::session::Session;
use crate::tls::{self, TlsMaterial};

/// One message whose DATA the server read to the final dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The MAIL FROM address, without angle brackets (empty for the null sender).
    pub mail_from: String,
    /// The MAIL FROM parameters as sent, such as `SIZE=1024` or `SMTPUTF8`.
    pub mail_parameters: Vec<String>,
    /// The RCPT TO addresses the server accepted, in order.
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, with the final `.` line removed.
    pub data: Vec<u8>,
    /// The name the client gave in EHLO or HELO on this connection.
    pub ehlo_name: Option<String>,
    /// The user name the client authenticated as, `None` without AUTH.
    pub authenticated_as: Option<String>,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The server's reply to the final dot, `None` when it closed the connection instead.
    pub final_reply: Option<crate::Reply>,
    /// The connection it came on, numbered from 1 in the order the server accepted them.
    pub connection_number: usize,
    /// When the server had read the final dot.
    pub received_at: Instant,
}

impl ReceivedMessage {
    /// Returns the message as text, and panics when it is not UTF-8.
    pub fn data_text(&self) -> &str {
        std::str::from_utf8(&self.data).expect("received message is not UTF-8")
    }

    fn accepted(&self) -> bool {
        self.final_reply
            .as_ref()
            .is_some_and(|reply| (200..300).contains(&reply.code))
    }
}

#[derive(Default)]
struct Received {
    messages: Vec<ReceivedMessage>,
    commands: Vec<String>,
    connections: usize,
    open_connections: usize,
    max_open_connections: usize,
}

/// The state the sessions share with the test: the received messages, a wake-up for
/// waiters and the signal that closes idle connections.
pub(crate) struct Store {
    received: Mutex<Received>,
    changed: Notify,
    closing: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            received: Mutex::default(),
            changed: Notify::new(),
            closing: watch::Sender::new(0),
        }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Received> {
        // A panicking session must not hide what the others received.
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn record_message(&self, message: ReceivedMessage) {
        self.lock().messages.push(message);
        self.changed.notify_waiters();
    }

    pub(crate) fn record_command(&self, line: String) {
        self.lock().commands.push(line);
    }

    /// Counts a new open connection and returns its number.
    fn record_connection(&self) -> usize {
        let number = {
            let mut received = self.lock();
            received.connections += 1;
            received.open_connections += 1;
            received.max_open_connections =
                received.max_open_connections.max(received.open_connections);
            received.connections
        };
        self.changed.notify_waiters();
        number
    }

    fn record_close(&self) {
        self.lock().open_connections -= 1;
        self.changed.notify_waiters();
    }

    /// Returns a receiver that changes when the test closes idle connections.
    pub(crate) fn closing_signal(&self) -> watch::Receiver<u64> {
        self.closing.subscribe()
    }
}

/// A running SMTP server for tests. Dropping it stops the server and its sessions.
pub struct TestSmtpServer {
    local_addr: SocketAddr,
    implicit_tls: bool,
    ca_pem: String,
    store: Arc<Store>,
    accept_task: JoinHandle<()>,
}

impl TestSmtpServer {
    pub fn builder() -> TestSmtpServerBuilder {
        TestSmtpServerBuilder::default()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `smtp://127.0.0.1:<port>`, or `smtps://` for implicit TLS, with no parameters.
    pub fn url(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// PEM of the CA that signed the server certificate; trust it to connect over TLS.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA PEM to `dir/test-smtp-ca.pem` and returns that path.
    pub fn write_ca_file(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("test-smtp-ca.pem");
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }

    /// Returns the messages the server accepted with a 2xx reply to the final dot.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.store
            .lock()
            .messages
            .iter()
            .filter(|m| m.accepted())
            .cloned()
            .collect()
    }

    /// Returns the messages the server read completely but rejected or left without a reply.
    pub fn rejected_messages(&self) -> Vec<ReceivedMessage> {
        self.store
            .lock()
            .messages
            .iter()
            .filter(|m| !m.accepted())
            .cloned()
            .collect()
    }

    /// Returns every command line received, in order, across connections. AUTH exchanges appear
    /// without their credentials.
    pub fn commands(&self) -> Vec<String> {
        self.store.lock().commands.clone()
    }

    /// Returns the number of connections the server accepted.
    pub fn connection_count(&self) -> usize {
        self.store.lock().connections
    }

    /// Returns the number of connections open now.
    pub fn open_connections(&self) -> usize {
        self.store.lock().open_connections
    }

    /// Returns the largest number of connections that were open at the same time.
    pub fn max_open_connections(&self) -> usize {
        self.store.lock().max_open_connections
    }

    /// Closes every connection that is waiting for a command, without a reply, as a server
    /// does when it drops idle sessions. Connections in the middle of a command are left open.
    pub fn close_idle_connections(&self) {
        self.store
            .closing
            .send_modify(|generation| *generation += 1);
    }

    /// Waits until at most `count` connections are open.
    pub async fn wait_for_open_connections(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<(), TestSmtpError> {
        let wait = async {
            loop {
                let changed = self.store.changed.notified();
                if self.open_connections() <= count {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            TestSmtpError::OpenConnectionsTimedOut {
                expected: count,
                open: self.open_connections(),
                timeout,
            }
        })
    }

    /// Waits until the server has accepted at least `count` messages and returns them.
    pub async fn wait_for_messages(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, TestSmtpError> {
        let wait = async {
            loop {
                let changed = self.store.changed.notified();
                let messages = self.messages();
                if messages.len() >= count {
                    return messages;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| TestSmtpError::WaitTimedOut {
                expected: count,
                received: self.messages().len(),
                timeout,
            })
    }
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl TestSmtpServerBuilder {
    /// Binds `127.0.0.1:0`, makes a fresh certificate and starts accepting connections.
    pub async fn start(self) -> Result<TestSmtpServer, TestSmtpError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local_addr = listener.local_addr()?;
        let tls = tls::generate()?;
        let ca_pem = tls.ca_pem.clone();
        let implicit_tls = self.script.tls == TlsMode::Implicit;
        let store = Arc::new(Store::default());
        let context = Arc::new(ServerContext {
            script: self.script,
            rule_uses: RuleUses::default(),
            tls,
            store: store.clone(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, context));
        tracing::debug!(address = %local_addr, implicit_tls, "test smtp server started");
        Ok(TestSmtpServer {
            local_addr,
            implicit_tls,
            ca_pem,
            store,
            accept_task,
        })
    }
}

pub(crate) struct ServerContext {
    pub(crate) script: Script,
    pub(crate) rule_uses: RuleUses,
    pub(crate) tls: TlsMaterial,
    pub(crate) store: Arc<Store>,
}

async fn accept_loop(listener: TcpListener, context: Arc<ServerContext>) {
    // The sessions live in this set, so aborting the accept task also ends them.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let number = context.store.record_connection();
                    sessions.spawn(serve_connection(socket, peer, number, context.clone()));
                }
                Err(error) => tracing::warn!(%error, "test smtp server cannot accept a connection"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    number: usize,
    context: Arc<ServerContext>,
) {
    if let Err(error) = Session::run(socket, &context, number).await {
        tracing::debug!(%peer, %error, "test smtp session ended with an error");
    }
    context.store.record_close();
}
