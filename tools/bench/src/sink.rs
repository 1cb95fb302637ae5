//! A fast SMTP sink: accepts every command and every message, and keeps nothing but a count.
//! It runs as its own process (`bench sink`), so its work is not charged to the services.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const EHLO_REPLY: &[u8] =
    b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600\r\n";

/// Serves on `listen` until SIGTERM or Ctrl-C, and prints the bound address as the first line
/// of stdout (`listening 127.0.0.1:PORT`) and the message count at exit.
#[allow(
    clippy::print_stdout,
    reason = "stdout is how the sink reports to the benchmark"
)]
pub(crate) async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let messages = Arc::new(AtomicU64::new(0));
    println!("listening {}", listener.local_addr()?);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let messages = messages.clone();
                tokio::spawn(async move {
                    if let Err(error) = session(stream, &messages).await {
                        eprintln!("sink session failed: {error}");
                    }
                });
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("messages {}", messages.load(Ordering::Relaxed));
    Ok(())
}

async fn session(stream: TcpStream, messages: &AtomicU64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb: Vec<u8> = line
            .iter()
            .take(4)
            .map(|byte| byte.to_ascii_uppercase())
            .collect();
        match verb.as_slice() {
            b"EHLO" => write.write_all(EHLO_REPLY).await?,
            b"HELO" | b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => {
                write.write_all(b"250 2.0.0 ok\r\n").await?
            }
            b"DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                messages.fetch_add(1, Ordering::Relaxed);
                write.write_all(b"250 2.0.0 queued\r\n").await?;
            }
            b"QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"502 5.5.2 not implemented\r\n").await?,
        }
    }
}
