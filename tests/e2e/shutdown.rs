//! Graceful stop: a delivery in flight when the host stops is finished within the grace
//! period, while the server still serves the calls it makes, and a delivery that no task
//! works on is released for the next replica.

use std::time::Duration;

use anyhow::{Context, Result};
use invoicer_e2e::System;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Stage, TestSmtpServer};

use crate::data::{contact, customer, export, invoice};
use crate::triggers::{drop_trigger, orchestrator_database, reject_writes};

on_both_databases!(
    stop_finishes_delivery_in_flight,
    stop_releases_stranded_delivery
);

async fn stop_finishes_delivery_in_flight(database: TestDatabase) -> Result<()> {
    // The mail server answers the end of DATA after 2 s, so the stop begins mid-send.
    let smtp = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_secs(2))
        .start()
        .await?;
    let mut system = System::start(database, smtp).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;

    let mut client = system.orchestrator()?;
    let request = pb::RunBatchRequest {
        cutoff: String::new(),
        lookback: "30d".to_owned(),
        dry_run: false,
        business_date: String::new(),
    };
    let batch = tokio::spawn(async move { client.run_batch(request).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !system.smtp.commands().iter().any(|c| c.starts_with("DATA")) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the batch never reached DATA"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stops (draining) and starts again on the same database.
    system.restart_with(|_| {}).await?;
    let report = batch.await??.into_inner().batch.context("no batch")?;
    let counts = report.counts.unwrap_or_default();
    assert_eq!((counts.eligible, counts.sent), (1, 1), "{report:?}");
    assert!(report.deliveries.is_empty(), "{:?}", report.deliveries);
    assert_eq!(system.smtp.messages().len(), 1);

    // After the restart the delivery is still sent: nothing was left in flight.
    let request = pb::GetBatchRequest {
        id: report.id.clone(),
        ..Default::default()
    };
    let stored = system
        .orchestrator()?
        .get_batch(request)
        .await?
        .into_inner()
        .batch
        .context("no batch")?;
    assert_eq!(
        stored.deliveries[0].state,
        i32::from(pb::DeliveryState::Sent)
    );
    system.stop().await
}

/// Strands INV-1 (its `submitting` write and every later state change are rejected, so it stays
/// `pending` and leased), then restarts with 10-minute leases. The stop releases the lease, so
/// the new replica takes INV-1 over at once and, once writes go through again, sends it. On
/// PostgreSQL the lease would otherwise keep the new replica away for the full 10 minutes.
async fn stop_releases_stranded_delivery(database: TestDatabase) -> Result<()> {
    let long_lease = |config: &mut invoicer_kit::Config| {
        config.batch.lease_duration = "10m".to_owned();
    };
    let smtp = TestSmtpServer::builder().start().await?;
    let mut system = System::start_with(database, smtp, long_lease).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    let db = orchestrator_database(&system).await?;
    reject_writes(
        &db,
        "reject_inv_1",
        "BEFORE UPDATE ON or_deliveries",
        "NEW.invoice_number = 'INV-1' AND NEW.state <> 'pending'",
    )
    .await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.status, i32::from(pb::BatchStatus::Failed));

    system.restart_with(long_lease).await?;
    drop_trigger(&db, "reject_inv_1", "or_deliveries").await?;
    system.wait_for_messages(1).await?;
    assert_eq!(system.smtp.messages().len(), 1);
    db.close().await?;
    system.stop().await
}
