//! Pooled connections: reused from one message to the next, and replaced before use when the
//! server closed them while idle.

use std::time::Duration;

use anyhow::Result;
use invoicer_mail_delivery::Outcome;
use invoicer_test_smtp::TestSmtpServer;

use crate::support::{WAIT, command_count, invoice_email, mail_config, mailer, mailer_with};

#[tokio::test]
async fn second_message_reuses_connection() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mailer = mailer(server.url());

    let first = mailer.send(invoice_email()).await?;
    let second = mailer.send(invoice_email()).await?;

    assert_eq!(first.outcome, Outcome::Sent, "{first:?}");
    assert_eq!(second.outcome, Outcome::Sent, "{second:?}");
    assert_eq!(server.connection_count(), 1);
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].connection_number, 1);
    assert_eq!(command_count(&server, "RSET"), 1, "checked before reuse");
    assert_eq!(command_count(&server, "QUIT"), 0);

    mailer.close().await;
    assert_eq!(command_count(&server, "QUIT"), 1);
    server.wait_for_open_connections(0, WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn connection_closed_while_idle_is_replaced() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mailer = mailer(server.url());
    mailer.send(invoice_email()).await?;

    server.close_idle_connections();
    server.wait_for_open_connections(0, WAIT).await?;
    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.error, "");
    assert_eq!(server.connection_count(), 2);
    let messages = server.messages();
    assert_eq!(messages.len(), 2, "one copy per send");
    assert_eq!(messages[1].connection_number, 2);
    Ok(())
}

#[tokio::test]
async fn connection_timed_out_by_server_is_replaced() -> Result<()> {
    let server = TestSmtpServer::builder()
        .idle_timeout(Duration::from_millis(200))
        .start()
        .await?;
    let mailer = mailer(server.url());
    mailer.send(invoice_email()).await?;

    server.wait_for_open_connections(0, WAIT).await?;
    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(server.messages().len(), 2);
    assert_eq!(server.connection_count(), 2);
    Ok(())
}

#[tokio::test]
async fn pool_idle_zero_quits_after_each_message() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mut mail = mail_config(server.url());
    mail.pool_idle_secs = 0;
    let mailer = mailer_with(mail);

    mailer.send(invoice_email()).await?;
    mailer.send(invoice_email()).await?;

    assert_eq!(server.connection_count(), 2);
    assert_eq!(command_count(&server, "QUIT"), 2);
    assert_eq!(command_count(&server, "RSET"), 0);
    Ok(())
}

#[tokio::test]
async fn connection_idle_past_pool_timeout_is_not_reused() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;
    let mut mail = mail_config(server.url());
    mail.pool_idle_secs = 1;
    let mailer = mailer_with(mail);

    mailer.send(invoice_email()).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(server.connection_count(), 2);
    assert_eq!(command_count(&server, "RSET"), 0);
    Ok(())
}

#[tokio::test]
async fn rejected_message_leaves_connection_reusable() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reply_to_mail_from(550, "5.7.1 sender not allowed")
        .start()
        .await?;
    let mailer = mailer(server.url());

    let first = mailer.send(invoice_email()).await?;
    let second = mailer.send(invoice_email()).await?;

    assert_eq!(first.outcome, Outcome::Failed);
    assert_eq!(second.outcome, Outcome::Failed);
    assert_eq!(server.connection_count(), 1);
    Ok(())
}
