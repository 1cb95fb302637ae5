//! Graceful stop: a delivery in flight when the host stops is finished within the grace
//! period, while the server still serves the calls it makes.

use std::time::Duration;

use anyhow::{Context, Result};
use invoicer_e2e::System;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Stage, TestSmtpServer};

use crate::data::{contact, customer, export, invoice};

on_both_databases!(stop_finishes_delivery_in_flight);

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
