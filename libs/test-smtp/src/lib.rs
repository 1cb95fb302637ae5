//! A scriptable SMTP server (RFC 5321 over TCP on `127.0.0.1:0`) for tests. It stores every
//! message it reads and injects the faults a test sets up. At any stage (greeting, EHLO,
//! STARTTLS, AUTH, MAIL, RCPT per address, DATA, end of data, RSET, NOOP, QUIT) it can send
//! any reply, wait, or close the connection, every time or the first few times. It closes
//! idle connections after a timeout or on request. It advertises SIZE when set, speaks
//! STARTTLS and implicit TLS with a certificate made at start, and AUTH PLAIN and LOGIN. It
//! counts open connections and records when each message arrived.
//!
//! ```no_run
//! # async fn example() -> Result<(), invoicer_test_smtp::TestSmtpError> {
//! use invoicer_test_smtp::TestSmtpServer;
//!
//! let server = TestSmtpServer::builder()
//!     .reject_rcpt("gone@example.com", 550, "5.1.1 no such user")
//!     .start()
//!     .await?;
//! // ... send mail to server.url() ...
//! let messages = server.wait_for_messages(1, std::time::Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

mod connection;
mod script;
mod server;
mod session;
mod tls;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use script::{Action, Reply, Stage, TestSmtpServerBuilder};
pub use server::{ReceivedMessage, TestSmtpServer};
pub use tls::CERTIFICATE_NAMES;

#[derive(Debug, thiserror::Error)]
pub enum TestSmtpError {
    #[error("test smtp server i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot generate the test certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot build the test TLS configuration: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    #[error(
        "timed out after {timeout:?} waiting for {expected} accepted messages; the server \
         accepted {received}"
    )]
    WaitTimedOut {
        expected: usize,
        received: usize,
        timeout: Duration,
    },
    #[error(
        "timed out after {timeout:?} waiting for at most {expected} open connections; {open} \
         are open"
    )]
    OpenConnectionsTimedOut {
        expected: usize,
        open: usize,
        timeout: Duration,
    },
}
