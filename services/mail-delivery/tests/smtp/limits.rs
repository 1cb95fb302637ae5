//! The relay's limits: open connections at once and messages per second, as the fixture
//! observes them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use invoicer_mail_delivery::{Mailer, Outcome};
use invoicer_test_smtp::{Stage, TestSmtpServer};

use crate::support::{WAIT, invoice_email, mail_config, mailer_with};

/// Sends `count` messages at once and returns when all have finished.
async fn send_concurrently(mailer: Arc<Mailer>, count: usize) -> Result<()> {
    let mut sends = tokio::task::JoinSet::new();
    for index in 0..count {
        let mailer = mailer.clone();
        sends.spawn(async move {
            let mut email = invoice_email();
            email.message_id = Some(format!("inv-{index}@company.example"));
            mailer.send(email).await
        });
    }
    while let Some(result) = sends.join_next().await {
        let report = result??;
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    }
    Ok(())
}

#[tokio::test]
async fn open_connections_stay_within_limit() -> Result<()> {
    let server = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_millis(100))
        .start()
        .await?;
    let mut mail = mail_config(server.url());
    mail.max_connections = 2;
    let mailer = Arc::new(mailer_with(mail));

    send_concurrently(mailer, 8).await?;

    assert_eq!(server.wait_for_messages(8, WAIT).await?.len(), 8);
    assert_eq!(server.max_open_connections(), 2);
    assert_eq!(server.connection_count(), 2, "connections are reused");
    Ok(())
}

#[tokio::test]
async fn one_connection_limit_serialises_sends() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mut mail = mail_config(server.url());
    mail.max_connections = 1;
    let mailer = Arc::new(mailer_with(mail));

    send_concurrently(mailer, 4).await?;

    assert_eq!(server.messages().len(), 4);
    assert_eq!(server.max_open_connections(), 1);
    Ok(())
}

#[tokio::test]
async fn message_rate_is_limited() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mut mail = mail_config(server.url());
    mail.max_connections = 3;
    mail.max_messages_per_second = 10.0;
    let mailer = Arc::new(mailer_with(mail));

    send_concurrently(mailer, 6).await?;

    let mut arrivals: Vec<_> = server
        .messages()
        .iter()
        .map(|message| message.received_at)
        .collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 6);
    // Six messages at 10 per second start over at least 0.5 s; 50 ms of tolerance for
    // timer and scheduling jitter.
    let span = arrivals[5] - arrivals[0];
    assert!(span >= Duration::from_millis(450), "span {span:?}");
    assert!(span < Duration::from_secs(3), "span {span:?}");
    Ok(())
}
