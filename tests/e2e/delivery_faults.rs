//! What the batch does with SMTP replies other than 250: each ends in its own state.

use std::process::ExitCode;

use anyhow::Result;
use invoicer_e2e::System;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::types::v1 as types;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;

on_both_databases!(
    rejected_recipient_fails_alone,
    transient_reply_defers_and_waits,
    lost_reply_after_data_is_unknown_never_resent,
    permanent_data_reply_fails
);

use crate::data::{contact, customer, export, invoice};

async fn system_with(database: TestDatabase, smtp: TestSmtpServer) -> Result<System> {
    let system = System::start(database, smtp).await?;
    let contacts = vec![
        contact("Lee", "lee@buyer.example", "to"),
        contact("Gone", "gone@buyer.example", "cc"),
    ];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    Ok(system)
}

async fn rejected_recipient_fails_alone(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reject_rcpt("gone@buyer.example", 550, "5.1.1 no such user")
        .start()
        .await?;
    let system = system_with(database, smtp).await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);
    assert!(
        batch.deliveries[0].reason.contains("gone@buyer.example"),
        "{}",
        batch.deliveries[0].reason
    );
    assert_eq!(
        system.wait_for_messages(1).await?[0].rcpt_to,
        ["lee@buyer.example"]
    );
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(
        entries[0].outcome,
        i32::from(types::DeliveryOutcome::PartiallySent)
    );
    system.stop().await
}

async fn transient_reply_defers_and_waits(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reject_rcpt("lee@buyer.example", 450, "4.2.0 try later")
        .start()
        .await?;
    let system = system_with(database, smtp).await?;
    let first = system.run_batch("30d").await?;
    let counts = first.counts.unwrap_or_default();
    assert_eq!((counts.eligible, counts.deferred, counts.sent), (1, 1, 0));
    assert!(!first.deliveries[0].next_attempt_at.is_empty());
    // A deferred invoice is tried again by itself: the second batch below, run by the CLI,
    // exits 0.
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(
        entries[0].outcome,
        i32::from(types::DeliveryOutcome::Deferred)
    );

    // A 4xx to one RCPT defers that recipient only: the Cc contact has the message already.
    let received = system.smtp.messages();
    assert_eq!(
        received.len(),
        1,
        "one copy for the recipient that accepted"
    );
    assert_eq!(received[0].rcpt_to, ["gone@buyer.example"]);

    // The retry time is an hour away: a second batch counts it as deferred and sends nothing.
    let second = system.cli(&["batch", "run", "--lookback", "30d"]).await?;
    assert_eq!(second.code, ExitCode::SUCCESS, "{}", second.stdout);
    assert!(
        second.stdout.contains("failed 0  deferred 1  unknown 0"),
        "{}",
        second.stdout
    );
    // The report shows when the deferred invoice is tried next, and that the orchestrator
    // retries it without a request.
    let next_try = format!("    next try: {}", first.deliveries[0].next_attempt_at);
    assert!(second.stdout.contains(&next_try), "{}", second.stdout);
    let json = system
        .cli(&["batch", "run", "--lookback", "30d", "--json"])
        .await?;
    let deferred = &json.json_lines()?[0];
    assert_eq!(
        deferred["next_attempt_at"], first.deliveries[0].next_attempt_at,
        "{}",
        json.stdout
    );
    assert!(
        second
            .stdout
            .contains("1 invoice was deferred after a temporary failure and is tried again"),
        "{}",
        second.stdout
    );
    assert_eq!(
        system.smtp.messages().len(),
        1,
        "the second batch sent again"
    );
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(entries.len(), 1, "the waiting delivery was attempted again");
    system.stop().await
}

async fn lost_reply_after_data_is_unknown_never_resent(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder().close_after_data().start().await?;
    let system = system_with(database, smtp).await?;
    let first = system.cli(&["batch", "run", "--lookback", "30d"]).await?;
    assert_eq!(first.code, ExitCode::from(1), "{}", first.stdout);
    assert!(first.stdout.contains("unknown 1"), "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("1 invoice may have reached the mail server before the connection broke"),
        "{}",
        first.stdout
    );
    let second = system.run_batch("30d").await?;
    assert_eq!(
        second.counts.unwrap_or_default().eligible,
        0,
        "an unknown delivery was tried again"
    );
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].outcome,
        i32::from(types::DeliveryOutcome::Unknown)
    );
    system.stop().await
}

async fn permanent_data_reply_fails(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reply_at_data_end(554, "5.7.1 rejected by policy")
        .start()
        .await?;
    let system = system_with(database, smtp).await?;
    // The CLI lists the failed invoice with the reply and exits 1, so a cron job notices.
    let run = system
        .cli(&["batch", "run", "--lookback", "30d", "--json"])
        .await?;
    assert_eq!(run.code, ExitCode::from(1), "{}", run.stdout);
    let lines = run.json_lines()?;
    let [delivery, totals] = lines.as_slice() else {
        panic!("expected one delivery and the totals: {}", run.stdout);
    };
    assert_eq!(delivery["outcome"], "failed", "{}", run.stdout);
    assert_eq!(totals["failed"], 1, "{}", run.stdout);
    let batch_id = totals["batch"].as_str().unwrap_or_default();
    let batch = system.get_batch(batch_id).await?;
    assert!(
        batch.deliveries[0].reason.contains("554")
            || batch.deliveries[0].server_reply.contains("554"),
        "{:?}",
        batch.deliveries[0]
    );
    system.stop().await
}
