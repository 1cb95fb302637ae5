//! One SMTP connection with lettre's low-level `AsyncSmtpConnection`: connect, read the
//! greeting, EHLO, STARTTLS and AUTH as the URL sets, then one mail transaction after the
//! other (see `transaction.rs`) until the pool closes it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Ehlo, Rset};
use lettre::transport::smtp::extension::Extension;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::SmtpMailer;
use super::outcome::{Stop, stop_at};
use super::reply::StepError;
use super::stream::{self, DataProbe};
use crate::email::{Outcome, SmtpStage};
use crate::smtp_url::TlsMode;

/// Maximum wait for the reply to QUIT. The message is settled by then.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Session {
    pub(super) destination: String,
    pub(super) timeout: Duration,
    pub(super) connection: AsyncSmtpConnection,
    pub(super) probe: Arc<DataProbe>,
    /// The server's SIZE limit in bytes, from its EHLO reply; `None` when it sets none.
    pub(super) max_size: Option<u64>,
    /// When the connection last finished a transaction.
    pub(super) idle_since: Instant,
    /// This connection's share of `mail.max_connections`, released when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Session {
    /// Connects, reads the greeting, sends EHLO, then STARTTLS and AUTH as the URL sets.
    pub(super) async fn open(
        mailer: &SmtpMailer,
        permit: OwnedSemaphorePermit,
    ) -> Result<Session, Stop> {
        let destination = mailer.url.destination();
        let (socket, probe) = stream::connect(&mailer.url, &mailer.tls, mailer.timeout)
            .instrument(tracing::info_span!("smtp.connect"))
            .await
            .map_err(|reason| {
                stop_at(
                    SmtpStage::Connect,
                    StepError::Connection(reason),
                    &destination,
                )
            })?;
        let hello = AsyncSmtpConnection::connect_with_transport(socket, &mailer.hello);
        let connection = match timed(mailer.timeout, hello)
            .instrument(tracing::info_span!("smtp.ehlo"))
            .await
        {
            Ok(connection) => connection,
            Err(error) => {
                // lettre reads the greeting and sends EHLO in one call; nothing written yet
                // means the greeting failed.
                let stage = match probe.wrote_any() {
                    true => SmtpStage::Ehlo,
                    false => SmtpStage::Greeting,
                };
                return Err(stop_at(stage, error, &destination));
            }
        };

        let mut session = Session {
            destination,
            timeout: mailer.timeout,
            connection,
            probe,
            max_size: None,
            idle_since: Instant::now(),
            _permit: permit,
        };
        session.secure(mailer).await?;
        session.read_size_limit(mailer).await?;
        session.authenticate(mailer).await?;
        Ok(session)
    }

    pub(super) fn supports(&self, extension: Extension) -> bool {
        self.connection.server_info().supports_feature(extension)
    }

    async fn secure(&mut self, mailer: &SmtpMailer) -> Result<(), Stop> {
        let offered = self.connection.can_starttls();
        match mailer.url.tls {
            TlsMode::Plain | TlsMode::Implicit => return Ok(()),
            TlsMode::Opportunistic if !offered => {
                tracing::debug!(destination = %self.destination, "server offers no STARTTLS, sending in plain text");
                return Ok(());
            }
            TlsMode::StartTls if !offered => {
                let error = format!(
                    "{}: the server does not offer STARTTLS, which tls=starttls requires",
                    self.destination
                );
                return Err(Stop {
                    connection_usable: false,
                    ..Stop::by_client(Outcome::Deferred, SmtpStage::StartTls, error)
                });
            }
            TlsMode::StartTls | TlsMode::Opportunistic => {}
        }
        let upgrade = self
            .connection
            .starttls(mailer.tls.starttls_parameters(), &mailer.hello);
        timed(self.timeout, upgrade)
            .await
            .map_err(|error| stop_at(SmtpStage::StartTls, error, &self.destination))
    }

    /// Sends EHLO once more and reads SIZE from the reply, because lettre's `ServerInfo`
    /// keeps no SIZE. RFC 5321 allows EHLO again at any time outside a transaction.
    async fn read_size_limit(&mut self, mailer: &SmtpMailer) -> Result<(), Stop> {
        let ehlo = self.connection.command(Ehlo::new(mailer.hello.clone()));
        let response = timed(self.timeout, ehlo)
            .await
            .map_err(|error| stop_at(SmtpStage::Ehlo, error, &self.destination))?;
        self.max_size = response.message().find_map(size_limit);
        Ok(())
    }

    async fn authenticate(&mut self, mailer: &SmtpMailer) -> Result<(), Stop> {
        let Some(credentials) = &mailer.credentials else {
            return Ok(());
        };
        let credentials =
            Credentials::new(credentials.username.clone(), credentials.password.clone());
        let login = self
            .connection
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials);
        timed(self.timeout, login)
            .await
            .map(drop)
            .map_err(|error| stop_at(SmtpStage::Auth, error, &self.destination))
    }

    /// Sends RSET before a pooled connection's next message: it ends any half-done
    /// transaction and shows whether the server still listens.
    pub(super) async fn reset(&mut self) -> Result<(), StepError> {
        if self.connection.has_broken() {
            return Err(StepError::Connection(
                "the connection broke earlier".to_owned(),
            ));
        }
        timed(self.timeout, self.connection.command(Rset))
            .await
            .map(drop)
    }

    /// Closes the connection, with QUIT when `quit` is set.
    pub(super) async fn close(mut self, quit: bool) {
        if !quit {
            return;
        }
        match tokio::time::timeout(QUIT_TIMEOUT, self.connection.quit()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(destination = %self.destination, %error, "QUIT failed")
            }
            Err(_) => tracing::debug!(destination = %self.destination, "QUIT timed out"),
        }
    }
}

/// Reads `SIZE 1048576` from one line of an EHLO reply. `SIZE` alone or `SIZE 0` sets no
/// limit (RFC 1870).
fn size_limit(line: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    let keyword = words.next()?;
    if !keyword.eq_ignore_ascii_case("SIZE") {
        return None;
    }
    words.next()?.parse().ok().filter(|&limit| limit > 0)
}

/// Runs one lettre call within `timeout`.
pub(super) async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, LettreError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StepError::from_lettre(&error)),
        Err(_) => Err(StepError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::size_limit;

    #[test]
    fn size_limit_reads_ehlo_line() {
        assert_eq!(size_limit("SIZE 1048576"), Some(1_048_576));
        assert_eq!(size_limit("size 10"), Some(10));
        assert_eq!(size_limit("SIZE"), None);
        assert_eq!(size_limit("SIZE 0"), None);
        assert_eq!(size_limit("SIZE many"), None);
        assert_eq!(size_limit("8BITMIME"), None);
    }
}
