//! Outcomes whose email log append failed, because audit-log was down, reach the log by the
//! time the next batch returns. audit-log runs in a host of its own here, on a port the rest
//! of the system dials, so the test can start and stop it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use invoicer_e2e::System;
use invoicer_kit::server::RunningServer;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::audit_log::v1::audit_log_service_client::AuditLogServiceClient;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Action, TestSmtpServer};
use tonic::transport::Channel;

use crate::data::{contact, customer, export, invoice};
use crate::triggers::{drop_trigger, orchestrator_database, reject_writes};

on_both_databases!(
    missed_log_entries_appended_by_next_batch,
    retry_outcome_logged_after_outage,
    outcome_appended_again_is_logged_once,
    rejected_outcomes_hold_back_later_ones_one_round
);

/// Starts the system without audit-log and returns it with the port for audit-log.
async fn system_without_audit(
    database: TestDatabase,
    smtp: TestSmtpServer,
    invoices: usize,
) -> Result<(System, u16)> {
    // Bound and released at once: until audit-log starts on this port, every append fails
    // to connect.
    let audit_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let system = System::start_with(database, smtp, |config| {
        config.server.services = "invoice-query,pdf-render,mail-delivery,orchestrator".to_owned();
        config.endpoints.audit_log = Some(format!("http://127.0.0.1:{audit_port}"));
        config.batch.retry_first_delay = "1s".to_owned();
        config.batch.retry_max_delay = "2s".to_owned();
    })
    .await?;
    let invoices = (0..invoices)
        .map(|n| invoice(&format!("INV-{n}"), "C-1", "10.00"))
        .collect();
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        invoices,
    );
    system.import_text("a.json", &document).await?;
    Ok((system, audit_port))
}

async fn start_audit(system: &System, port: u16) -> Result<RunningServer> {
    let mut config = (*system.config).clone();
    config.server.services = "audit-log".to_owned();
    config.server.listen = ([127, 0, 0, 1], port).into();
    invoicer::host::start(Arc::new(config))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn stop_audit(host: RunningServer) -> Result<()> {
    host.shutdown("audit-log stopped by the test")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Returns every email log entry, newest first.
async fn log_entries(port: u16) -> Result<Vec<audit::Entry>> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))?.connect_lazy();
    let request = audit::ListEntriesRequest {
        page_size: 100,
        ..Default::default()
    };
    let response = AuditLogServiceClient::new(channel)
        .list_entries(request)
        .await?;
    Ok(response.into_inner().entries)
}

async fn missed_log_entries_appended_by_next_batch(database: TestDatabase) -> Result<()> {
    const INVOICES: usize = 3;
    let smtp = TestSmtpServer::builder().start().await?;
    let (system, audit_port) = system_without_audit(database, smtp, INVOICES).await?;

    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().sent, INVOICES as u32);
    system.wait_for_messages(INVOICES).await?;

    let audit_host = start_audit(&system, audit_port).await?;
    let before = log_entries(audit_port).await?;
    assert!(before.is_empty(), "{before:?}");

    // Nothing is left to send, and the retry loop sleeps up to 15 s between rounds, so only
    // the batch itself can have appended the entries when it returns.
    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().eligible, 0);
    let entries = log_entries(audit_port).await?;
    assert_eq!(entries.len(), INVOICES, "{entries:?}");
    let first = system.get_batch(&first.id).await?;
    assert_eq!(first.deliveries.len(), INVOICES);
    for delivery in &first.deliveries {
        let logged: Vec<&audit::Entry> = entries
            .iter()
            .filter(|e| e.delivery_id == delivery.id)
            .collect();
        assert_eq!(logged.len(), 1, "{}: {logged:?}", delivery.invoice_number);
        assert_eq!(logged[0].outcome, i32::from(types::DeliveryOutcome::Sent));
    }

    stop_audit(audit_host).await?;
    system.stop().await
}

/// Defers and logs the first attempt, then sends the retry while audit-log is down. The
/// retry's outcome must still reach the log, because a logged earlier attempt does not count
/// for the new one.
async fn retry_outcome_logged_after_outage(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .on_rcpt_first(
            "lee@buyer.example",
            1,
            Action::reply(450, "4.2.0 try again later"),
        )
        .start()
        .await?;
    let (system, audit_port) = system_without_audit(database, smtp, 1).await?;
    let audit_host = start_audit(&system, audit_port).await?;

    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().deferred, 1);
    let deferred = log_entries(audit_port).await?;
    assert_eq!(deferred.len(), 1, "{deferred:?}");
    assert_eq!(
        deferred[0].outcome,
        i32::from(types::DeliveryOutcome::Deferred)
    );

    // The retry loop sends it about a second later, while audit-log is down.
    stop_audit(audit_host).await?;
    system.wait_for_messages(1).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = pb::GetBatchRequest {
            id: first.id.clone(),
            ..Default::default()
        };
        let batch = system
            .orchestrator()?
            .get_batch(request)
            .await?
            .into_inner();
        let sent = batch
            .batch
            .is_some_and(|b| b.counts.unwrap_or_default().sent == 1);
        if sent {
            break;
        }
        if Instant::now() > deadline {
            bail!("the retry was received but its delivery is not stored as sent after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let audit_host = start_audit(&system, audit_port).await?;
    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().eligible, 0);
    let entries = log_entries(audit_port).await?;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].outcome, i32::from(types::DeliveryOutcome::Sent));
    assert_eq!(
        entries[1].outcome,
        i32::from(types::DeliveryOutcome::Deferred)
    );
    assert_eq!(entries[0].delivery_id, entries[1].delivery_id);

    stop_audit(audit_host).await?;
    system.stop().await
}

/// Appends an outcome whose delivery then fails to be marked as logged, as when the process
/// dies between the two. The next batch sends the append again, and audit-log returns the
/// entry it stored under the same idempotency key instead of logging the outcome twice.
async fn outcome_appended_again_is_logged_once(database: TestDatabase) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};

    let smtp = TestSmtpServer::builder().start().await?;
    let system = System::start(database, smtp).await?;
    let invoices = vec![
        invoice("INV-1", "C-1", "10.00"),
        invoice("INV-2", "C-1", "20.00"),
    ];
    let customers = vec![customer(
        "C-1",
        vec![contact("Lee", "lee@buyer.example", "to")],
    )];
    system
        .import_text("a.json", &export(customers, invoices))
        .await?;
    let db = orchestrator_database(&system).await?;
    let trigger = "reject_logged_mark";
    reject_writes(
        &db,
        trigger,
        "BEFORE UPDATE ON or_deliveries",
        "NEW.invoice_number = 'INV-1' AND NEW.logged AND NOT OLD.logged",
    )
    .await?;

    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().sent, 2);
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(entries.len(), 2, "{entries:?}");

    drop_trigger(&db, trigger, "or_deliveries").await?;
    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().eligible, 0);
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    let mut numbers: Vec<&str> = entries
        .iter()
        .map(|entry| entry.invoice_number.as_str())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["INV-1", "INV-2"], "{entries:?}");

    // The second batch's append found the stored entry, and the mark went through.
    let backend = db.get_database_backend();
    let unlogged = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS count FROM or_deliveries WHERE NOT logged",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "count"))
        .transpose()?;
    assert_eq!(unlogged, Some(0));
    db.close().await?;
    system.stop().await
}

/// Outcomes that audit-log rejects every time stay unlogged, and a retry round stops after a
/// page of them. The next round goes on after that page, so a full page of rejected outcomes
/// never keeps a later outcome out of the log. Here 100 copies of a sent delivery, stored
/// without an invoice number and with ids before its own, fill the first page.
async fn rejected_outcomes_hold_back_later_ones_one_round(database: TestDatabase) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};

    let smtp = TestSmtpServer::builder().start().await?;
    let system = System::start(database, smtp).await?;
    let customers = vec![customer(
        "C-1",
        vec![contact("Lee", "lee@buyer.example", "to")],
    )];
    system
        .import_text(
            "a.json",
            &export(customers, vec![invoice("INV-1", "C-1", "10.00")]),
        )
        .await?;
    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().sent, 1);

    let db = orchestrator_database(&system).await?;
    let backend = db.get_database_backend();
    let execute = |sql: String| {
        let db = &db;
        async move {
            db.execute_raw(Statement::from_string(backend, sql)).await?;
            anyhow::Ok(())
        }
    };
    // The rows go back in so that the copies come first in the tables' own order too, as
    // a read without an order would return them.
    execute(
        "CREATE TABLE sent_delivery AS SELECT * FROM or_deliveries \
         WHERE invoice_number = 'INV-1'"
            .to_owned(),
    )
    .await?;
    execute("UPDATE sent_delivery SET logged = FALSE".to_owned()).await?;
    execute("DELETE FROM or_deliveries WHERE invoice_number = 'INV-1'".to_owned()).await?;
    for n in 0..100 {
        execute(format!(
            "INSERT INTO or_deliveries (id, delivery_key, invoice_number, invoice_revision, \
             customer_code, purpose, request_id, state, to_json, cc_json, bcc_json, subject, \
             attachment_name, pdf_sha256, message_id, reason, attempts, next_attempt_at, \
             batch_id, recipients_json, server_reply, destination, actor, resend_reason, \
             trace_id, logged, created_at, updated_at, retry_since, accepted_json, \
             lease_owner, lease_until) \
             SELECT '00000000-0000-7000-8000-{n:012}', 'rejected-{n}', '', invoice_revision, \
             customer_code, purpose, NULL, state, to_json, cc_json, bcc_json, subject, \
             attachment_name, pdf_sha256, message_id, reason, attempts, next_attempt_at, \
             batch_id, recipients_json, server_reply, destination, actor, resend_reason, \
             trace_id, logged, created_at, updated_at, retry_since, accepted_json, \
             lease_owner, lease_until FROM sent_delivery"
        ))
        .await?;
    }
    execute("INSERT INTO or_deliveries SELECT * FROM sent_delivery".to_owned()).await?;
    execute("DROP TABLE sent_delivery".to_owned()).await?;
    let unlogged = |number: &'static str| {
        let db = &db;
        async move {
            let count = db
                .query_one_raw(Statement::from_string(
                    backend,
                    format!(
                        "SELECT COUNT(*) AS count FROM or_deliveries \
                         WHERE NOT logged AND invoice_number = '{number}'"
                    ),
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "count"))
                .transpose()?;
            anyhow::Ok(count.unwrap_or_default())
        }
    };

    // Each batch starts a round; the retry loop may run one between them too.
    for _ in 0..2 {
        let batch = system.run_batch("30d").await?;
        assert_eq!(batch.counts.unwrap_or_default().eligible, 0);
    }
    assert_eq!(unlogged("INV-1").await?, 0, "INV-1 was kept out of the log");
    assert_eq!(
        unlogged("").await?,
        100,
        "audit-log took an entry without a number"
    );
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    let numbers: Vec<&str> = entries
        .iter()
        .map(|entry| entry.invoice_number.as_str())
        .collect();
    assert_eq!(numbers, ["INV-1"], "{entries:?}");
    db.close().await?;
    system.stop().await
}
