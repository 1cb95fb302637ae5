//! The socket under lettre's SMTP client: TCP, or TCP with implicit TLS, wrapped so that the
//! session can tell whether the reply to the final dot of DATA was being awaited when the
//! connection broke.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::tls::TlsSettings;
use crate::smtp_url::{SmtpUrl, TlsMode};

/// Records the first read from the socket after [`DataProbe::arm`]. lettre's client writes
/// the whole message and its final dot before it reads the reply, and TLS writes never read
/// from the socket, so that first read means the final dot has been handed to the kernel.
/// It also records whether the client wrote anything yet, which separates a failed greeting
/// from a failed EHLO.
#[derive(Debug, Default)]
pub(crate) struct DataProbe {
    armed: AtomicBool,
    wrote: AtomicBool,
    reply_wait_started: Mutex<Option<Instant>>,
    reply_wait_notify: Notify,
}

impl DataProbe {
    /// Starts watching, right before the message body is sent. It clears the state of the
    /// previous message on a reused connection.
    pub(crate) fn arm(&self) {
        *self.lock() = None;
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Stops watching, once the reply to the final dot has arrived.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// When the client began reading the reply to the final dot, if it has.
    pub(crate) fn reply_wait_started(&self) -> Option<Instant> {
        *self.lock()
    }

    /// Resolves once the client begins reading the reply to the final dot.
    pub(crate) async fn reply_wait_began(&self) {
        self.reply_wait_notify.notified().await;
    }

    /// Returns whether the client has written anything to the socket.
    pub(crate) fn wrote_any(&self) -> bool {
        self.wrote.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.reply_wait_started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn on_read(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let mut started = self.lock();
        if started.is_none() {
            *started = Some(Instant::now());
            self.reply_wait_notify.notify_one();
        }
    }
}

#[derive(Debug)]
pub(crate) struct ProbedStream<S> {
    inner: S,
    probe: Arc<DataProbe>,
}

impl<S: AsyncRead + Unpin> AsyncRead for ProbedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.probe.on_read();
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProbedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.probe.wrote.store(true, Ordering::SeqCst);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.probe.wrote.store(true, Ordering::SeqCst);
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ProbedStream<TcpStream> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl AsyncTokioStream for ProbedStream<TlsStream<TcpStream>> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().0.peer_addr()
    }
}

/// Connects to the server of `url` (with the TLS handshake for `smtps://`), each step within
/// `timeout`. The error is a reason for the log and the report, without the URL.
pub(crate) async fn connect(
    url: &SmtpUrl,
    tls: &TlsSettings,
    timeout: Duration,
) -> Result<(Box<dyn AsyncTokioStream>, Arc<DataProbe>), String> {
    let connect = TcpStream::connect((url.host.as_str(), url.port));
    let tcp = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => return Err(error.to_string()),
        Err(_) => return Err(format!("timed out after {}s", timeout.as_secs())),
    };
    // SMTP is a command-reply protocol; Nagle's algorithm would only add latency.
    let _ = tcp.set_nodelay(true);
    let probe = Arc::new(DataProbe::default());
    if url.tls != TlsMode::Implicit {
        return Ok((
            Box::new(ProbedStream {
                inner: tcp,
                probe: probe.clone(),
            }),
            probe,
        ));
    }

    let server_name = ServerName::try_from(url.host.clone())
        .map_err(|_| format!("{:?} is not a valid TLS server name", url.host))?;
    let handshake = tls.connector().connect(server_name, tcp);
    let tls_stream = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(format!("TLS handshake failed: {error}")),
        Err(_) => {
            return Err(format!(
                "TLS handshake timed out after {}s",
                timeout.as_secs()
            ));
        }
    };
    Ok((
        Box::new(ProbedStream {
            inner: tls_stream,
            probe: probe.clone(),
        }),
        probe,
    ))
}
