//! Line I/O of one SMTP connection, plain or TLS, with a cap on the line length.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::script::Reply;

/// Maximum line length accepted, CRLF included. RFC 5321 allows 512 octets for a command and 1000
/// for a text line; the server is lenient so that it tests clients, not itself.
const MAX_LINE_BYTES: u64 = 1 << 20;

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) enum Line {
    /// One line with its line ending.
    Complete(Vec<u8>),
    TooLong,
    /// The client closed the connection.
    Closed,
}

pub(crate) struct Connection {
    stream: BufReader<Box<dyn Io>>,
    pub(crate) tls: bool,
}

impl Connection {
    pub(crate) fn new(stream: Box<dyn Io>, tls: bool) -> Connection {
        Connection {
            stream: BufReader::new(stream),
            tls,
        }
    }

    /// Returns the stream for a TLS upgrade. Bytes the client pipelined after STARTTLS are
    /// dropped, as RFC 3207 requires.
    pub(crate) fn into_stream(self) -> Box<dyn Io> {
        self.stream.into_inner()
    }

    pub(crate) async fn read_line(&mut self) -> std::io::Result<Line> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(Line::Closed);
        }
        if !line.ends_with(b"\n") {
            return Ok(if read as u64 == MAX_LINE_BYTES {
                Line::TooLong
            } else {
                Line::Closed
            });
        }
        Ok(Line::Complete(line))
    }

    /// Sends a reply; a text with several lines becomes a multi-line reply (`250-...`).
    pub(crate) async fn send(&mut self, reply: &Reply) -> std::io::Result<()> {
        let lines: Vec<&str> = reply.text.split('\n').collect();
        let mut out = String::new();
        for (index, line) in lines.iter().enumerate() {
            let separator = if index + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{}{separator}{line}\r\n", reply.code));
        }
        let stream = self.stream.get_mut();
        stream.write_all(out.as_bytes()).await?;
        stream.flush().await
    }

    /// Sends a reply of code and text.
    pub(crate) async fn reply(&mut self, code: u16, text: &str) -> std::io::Result<()> {
        self.send(&Reply::new(code, text)).await
    }
}
