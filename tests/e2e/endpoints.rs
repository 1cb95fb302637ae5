//! The CLI's errors when `--endpoint` names something other than a running invoicer server:
//! each names the endpoint and what to change.

use anyhow::Result;
use invoicer_e2e::System;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn cli_error(args: &[&str]) -> Result<String> {
    let argv = std::iter::once("invoicer")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let mut stdout = Vec::new();
    match invoicer::run(argv, &mut stdout).await {
        Ok(code) => anyhow::bail!("invoicer {args:?} ended with {code:?} and no error"),
        Err(error) => Ok(format!("{error:#}")),
    }
}

/// Starts a server on loopback that reads the start of each request, writes `reply` (which may
/// be empty) and closes the connection. Returns its `http://` endpoint.
async fn raw_server(reply: &'static [u8]) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.write_all(reply).await;
        }
    });
    Ok(format!("http://{address}"))
}

#[tokio::test]
async fn non_grpc_endpoint_named() -> Result<()> {
    // An HTTP/1.1 error, as a web server or a proxy on the wrong port gives.
    let endpoint = raw_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await?;
    let message = cli_error(&["--endpoint", &endpoint, "batch", "list"]).await?;
    assert!(
        message.contains(&format!(
            "the server at {endpoint} is not an invoicer gRPC server"
        )),
        "{message}"
    );
    assert!(message.contains("INVOICER_ENDPOINT"), "{message}");
    Ok(())
}

/// A server that reads the request and closes without a word, as a database does when it
/// gets bytes it cannot parse.
#[tokio::test]
async fn closing_endpoint_named() -> Result<()> {
    let endpoint = raw_server(b"").await?;
    let message = cli_error(&["--endpoint", &endpoint, "batch", "list"]).await?;
    assert!(
        message.contains(&format!(
            "the connection to {endpoint} closed without a gRPC response"
        )),
        "{message}"
    );
    assert!(message.contains("INVOICER_ENDPOINT"), "{message}");
    Ok(())
}

/// A port nothing listens on: the message adds the system's reason to tonic's words.
#[tokio::test]
async fn closed_port_gives_reason() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let message = cli_error(&["--endpoint", &endpoint, "batch", "list"]).await?;
    assert!(
        message.contains(&format!("cannot reach invoicer at {endpoint}")),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_to_plaintext_suggests_http() -> Result<()> {
    let database = TestDatabase::sqlite()?;
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let endpoint = system.endpoint.replace("http://", "https://");
    let message = cli_error(&["--endpoint", &endpoint, "batch", "list"]).await?;
    assert!(
        message.contains(&format!(
            "the server at {endpoint} did not respond with TLS"
        )),
        "{message}"
    );
    assert!(message.contains("dial http:// instead"), "{message}");
    system.stop().await
}

/// A port past 65535 is named as the error; the URI parser alone would dial port 80.
#[tokio::test]
async fn out_of_range_port_named() -> Result<()> {
    let message = cli_error(&["--endpoint", "http://127.0.0.1:99999", "batch", "list"]).await?;
    assert!(
        message.starts_with(
            "invalid endpoint \"http://127.0.0.1:99999\": port 99999 is not between 1 and 65535; \
             the endpoint comes from --endpoint or INVOICER_ENDPOINT"
        ),
        "{message}"
    );
    Ok(())
}
