//! A scriptable SMTP server (RFC 5321 over TCP on `127.0.0.1:0`) for tests. It stores every
//! message it reads and injects the faults a test sets up: per-recipient replies, a reply
//! to MAIL FROM or to the final dot, a connection closed after the final dot, a refusing
//! greeting, delays. It speaks STARTTLS and implicit TLS with a certificate made at start,
//! and AUTH PLAIN and LOGIN.
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

pub use script::{Reply, Stage, TestSmtpServerBuilder};
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
}
