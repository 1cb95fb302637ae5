//! The retry schedule of deferred deliveries: picked up at their retry time, also after a
//! restart, and failed with the last reply once the retry lifetime has passed, or ended sent
//! when a To recipient got the message in an earlier attempt.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use invoicer_e2e::System;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;

use crate::data::{contact, customer, export, invoice};

on_both_databases!(
    deferred_retried_after_restart,
    deferred_fails_after_lifetime,
    partly_accepted_delivery_ends_sent_after_lifetime,
    delivery_only_cc_accepted_fails_after_lifetime
);

async fn import_one_invoice(system: &System) -> Result<()> {
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    Ok(())
}

/// Polls the batch until its only delivery reaches `state`, for at most `timeout`.
async fn wait_for_state(
    system: &System,
    batch_id: &str,
    state: pb::DeliveryState,
    timeout: Duration,
) -> Result<pb::Delivery> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let request = pb::GetBatchRequest {
            id: batch_id.to_owned(),
            ..Default::default()
        };
        let batch = system
            .orchestrator()?
            .get_batch(request)
            .await?
            .into_inner()
            .batch
            .context("GetBatch returned no batch")?;
        let delivery = batch.deliveries.first().context("batch has no delivery")?;
        if delivery.state == i32::from(state) {
            return Ok(delivery.clone());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("delivery still {:?} after {timeout:?}", delivery);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn deferred_retried_after_restart(database: TestDatabase) -> Result<()> {
    let busy = TestSmtpServer::builder()
        .reject_rcpt("lee@buyer.example", 451, "4.3.0 try again later")
        .start()
        .await?;
    let mut system = System::start_with(database, busy, |config| {
        config.batch.retry_first_delay = "3s".to_owned();
    })
    .await?;
    import_one_invoice(&system).await?;
    let batch = system.run_batch("30d").await?;
    let first = &batch.deliveries[0];
    assert_eq!(first.state, i32::from(pb::DeliveryState::Deferred));
    assert_eq!(first.attempts, 1);
    let next = chrono::DateTime::parse_from_rfc3339(&first.next_attempt_at)?;
    let wait = next.signed_duration_since(chrono::Utc::now());
    assert!(
        wait > chrono::Duration::seconds(1) && wait <= chrono::Duration::milliseconds(3800),
        "first retry not about 3 s ahead: {wait}"
    );

    // Down while the retry comes due; up again with a mail server that accepts.
    let healthy = TestSmtpServer::builder().start().await?;
    let healthy_url = healthy.url();
    system
        .restart_with(|config| {
            config.batch.retry_first_delay = "3s".to_owned();
            config.mail.smtp_url = Some(healthy_url);
        })
        .await?;
    let sent = wait_for_state(
        &system,
        &batch.id,
        pb::DeliveryState::Sent,
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(sent.attempts, 2);
    let received = healthy
        .wait_for_messages(1, Duration::from_secs(10))
        .await?;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["lee@buyer.example"]);
    assert!(system.smtp.messages().is_empty());

    // The outcome is stored before it is appended to the email log, so the sent entry may
    // arrive moments after the state.
    let mut expected = vec![
        i32::from(types::DeliveryOutcome::Sent),
        i32::from(types::DeliveryOutcome::Deferred),
    ];
    expected.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut outcomes: Vec<i32> = system
            .log_entries(audit::ListEntriesRequest::default())
            .await?
            .iter()
            .map(|entry| entry.outcome)
            .collect();
        outcomes.sort();
        if outcomes == expected {
            break;
        }
        assert!(
            outcomes.len() < expected.len() && tokio::time::Instant::now() < deadline,
            "email log outcomes {outcomes:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    system.stop().await
}

async fn deferred_fails_after_lifetime(database: TestDatabase) -> Result<()> {
    let busy = TestSmtpServer::builder()
        .reject_rcpt("lee@buyer.example", 452, "4.2.2 mailbox full")
        .start()
        .await?;
    let system = System::start_with(database, busy, |config| {
        config.batch.retry_first_delay = "1s".to_owned();
        config.batch.retry_lifetime = "3s".to_owned();
    })
    .await?;
    import_one_invoice(&system).await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(
        batch.deliveries[0].state,
        i32::from(pb::DeliveryState::Deferred)
    );
    let failed = wait_for_state(
        &system,
        &batch.id,
        pb::DeliveryState::Failed,
        Duration::from_secs(30),
    )
    .await?;
    assert!(failed.reason.contains("gave up after"), "{}", failed.reason);
    assert!(failed.reason.contains("452"), "{}", failed.reason);
    assert!(failed.attempts >= 3, "attempts {}", failed.attempts);
    assert!(failed.next_attempt_at.is_empty());
    assert!(system.smtp.messages().is_empty());

    // The email log's last entry is the failure, with the reason, not one more deferral.
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    let last = last_entry(&entries)?;
    assert_eq!(
        last.outcome,
        i32::from(types::DeliveryOutcome::Failed),
        "{last:?}"
    );
    assert!(last.detail.contains("gave up after"), "{}", last.detail);
    let deferrals = entries
        .iter()
        .filter(|e| e.outcome == i32::from(types::DeliveryOutcome::Deferred))
        .count();
    assert_eq!(deferrals + 1, entries.len(), "{entries:?}");

    // A failed delivery is settled: the next batch leaves it alone.
    let next = system.run_batch("30d").await?;
    assert_eq!(next.counts.unwrap_or_default().eligible, 0);
    system.stop().await
}

/// Returns the email log entry appended last.
fn last_entry(entries: &[audit::Entry]) -> Result<&audit::Entry> {
    entries
        .iter()
        .max_by_key(|entry| entry.sequence)
        .context("no email log entry")
}

/// Starts the system with a retry lifetime of 3 s and an SMTP server on which Kim's mailbox
/// stays busy (451). Then imports one invoice for Lee as `lee_role` and Kim as `kim_role` and
/// runs a batch, which sends the invoice to Lee and defers Kim.
async fn batch_with_busy_mailbox(
    database: TestDatabase,
    lee_role: &str,
    kim_role: &str,
) -> Result<(System, pb::Batch)> {
    let busy = TestSmtpServer::builder()
        .reject_rcpt("kim@buyer.example", 451, "4.2.0 mailbox busy")
        .start()
        .await?;
    let system = System::start_with(database, busy, |config| {
        config.batch.retry_first_delay = "1s".to_owned();
        config.batch.retry_lifetime = "3s".to_owned();
    })
    .await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![
                contact("Lee", "lee@buyer.example", lee_role),
                contact("Kim", "kim@buyer.example", kim_role),
            ],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    let batch = system.run_batch("30d").await?;
    Ok((system, batch))
}

/// Ends a delivery sent when the To contact accepted the first attempt and the Cc contact's
/// mailbox stayed busy. Once the retries are over the delivery ends sent, naming the Cc contact and its reply, and the
/// To contact got the message once: a `failed` delivery would invite a resend to both.
async fn partly_accepted_delivery_ends_sent_after_lifetime(database: TestDatabase) -> Result<()> {
    let (system, batch) = batch_with_busy_mailbox(database, "to", "cc").await?;
    assert_eq!(
        batch.deliveries[0].state,
        i32::from(pb::DeliveryState::Deferred)
    );
    let sent = wait_for_state(
        &system,
        &batch.id,
        pb::DeliveryState::Sent,
        Duration::from_secs(30),
    )
    .await?;
    assert!(sent.reason.contains("gave up after"), "{}", sent.reason);
    assert!(
        sent.reason
            .contains("not delivered to kim@buyer.example (451 4.2.0 mailbox busy)"),
        "{}",
        sent.reason
    );
    assert!(sent.attempts >= 3, "attempts {}", sent.attempts);
    let messages = system.smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].rcpt_to, ["lee@buyer.example"]);

    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    let last = last_entry(&entries)?;
    assert_eq!(
        last.outcome,
        i32::from(types::DeliveryOutcome::PartiallySent),
        "{last:?}"
    );
    let next = system.run_batch("30d").await?;
    assert_eq!(next.counts.unwrap_or_default().eligible, 0);
    system.stop().await
}

/// Fails a delivery when only the Cc contact accepted the first attempt and the To contact's
/// mailbox stayed busy. Once the retries are over the delivery fails, because the billing contact never got the invoice,
/// and the reason names who has it so that a resend can go to the others only.
async fn delivery_only_cc_accepted_fails_after_lifetime(database: TestDatabase) -> Result<()> {
    let (system, batch) = batch_with_busy_mailbox(database, "cc", "to").await?;
    let failed = wait_for_state(
        &system,
        &batch.id,
        pb::DeliveryState::Failed,
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        failed.reason.contains(
            "not delivered to kim@buyer.example (451 4.2.0 mailbox busy); only \
             lee@buyer.example got it, in an earlier attempt, so resend it to the others with \
             `--to`"
        ),
        "{}",
        failed.reason
    );
    let messages = system.smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].rcpt_to, ["lee@buyer.example"]);
    system.stop().await
}
