//! Open SMTP connections to the relay, reused from one message to the next, and the limit
//! on how many may be open at once (`mail.max_connections`, idle ones included).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::SmtpMailer;
use super::outcome::Stop;
use super::session::Session;

pub(crate) struct Pool {
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    /// Wakes senders that wait for a connection when one goes back to the pool.
    returned: Notify,
    /// How long a connection may wait for its next message; zero closes each after use.
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(max_connections: usize, idle_timeout: Duration) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_connections)),
            returned: Notify::new(),
            idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Session>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns an open session: an idle one that still replies to RSET, or a new one once the
    /// connection limit allows. An idle connection that the server closed is replaced
    /// without the caller noticing.
    pub(crate) async fn checkout(&self, mailer: &SmtpMailer) -> Result<Session, Stop> {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();

            if let Some(mut session) = self.take_idle() {
                match session.reset().await {
                    Ok(()) => return Ok(session),
                    Err(error) => {
                        tracing::info!(
                            destination = %session.destination,
                            %error,
                            "pooled smtp connection no longer replies, opening another"
                        );
                        continue;
                    }
                }
            }
            let permit = match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => tokio::select! {
                    permit = self.permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => continue,
                    },
                    () = &mut returned => continue,
                },
            };
            return self.open(mailer, permit).await;
        }
    }

    async fn open(
        &self,
        mailer: &SmtpMailer,
        permit: OwnedSemaphorePermit,
    ) -> Result<Session, Stop> {
        let session = Session::open(mailer, permit).await;
        // A failed open released its permit; a sender waiting for one may go on.
        self.returned.notify_waiters();
        session
    }

    /// Takes the most recently used idle session, closing those idle for too long.
    fn take_idle(&self) -> Option<Session> {
        let mut idle = self.lock();
        while let Some(session) = idle.pop() {
            if session.idle_since.elapsed() < self.idle_timeout {
                return Some(session);
            }
            tracing::debug!(destination = %session.destination, "closing idle smtp connection");
            drop(session);
        }
        None
    }

    /// Puts a session whose last transaction ended with a reply back for the next message,
    /// or closes it with QUIT when pooling is off.
    pub(crate) async fn checkin(&self, mut session: Session) {
        if self.idle_timeout.is_zero() {
            session.close(true).await;
            self.returned.notify_waiters();
            return;
        }
        session.idle_since = tokio::time::Instant::now();
        self.lock().push(session);
        self.returned.notify_waiters();
    }

    /// Drops a session that cannot take another command, freeing its place in the limit.
    pub(crate) fn discard(&self, session: Session) {
        drop(session);
        self.returned.notify_waiters();
    }

    /// Closes every idle connection with QUIT.
    pub(crate) async fn close_idle(&self) {
        let sessions: Vec<Session> = std::mem::take(&mut *self.lock());
        for session in sessions {
            session.close(true).await;
        }
    }
}
