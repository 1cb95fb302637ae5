//! An `unknown` delivery (maybe delivered) is never sent again automatically, also not after
//! a restart. An explicit resend sends it with the Message-ID of the unknown attempt.

use std::time::Duration;

use anyhow::Result;
use invoicer_e2e::System;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;

use crate::data::{contact, customer, export, invoice};

on_both_databases!(unknown_resent_with_its_message_id);

async fn unknown_resent_with_its_message_id(database: TestDatabase) -> Result<()> {
    let lossy = TestSmtpServer::builder().close_after_data().start().await?;
    let mut system = System::start_with(database, lossy, |config| {
        config.batch.retry_first_delay = "1s".to_owned();
    })
    .await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    let batch = system.run_batch("30d").await?;
    let unknown = &batch.deliveries[0];
    assert_eq!(unknown.state, i32::from(pb::DeliveryState::Unknown));
    assert!(!unknown.message_id.is_empty());

    // A restart with a healthy server, retry rounds and a later batch leave it alone.
    let healthy = TestSmtpServer::builder().start().await?;
    let healthy_url = healthy.url();
    system
        .restart_with(|config| {
            config.batch.retry_first_delay = "1s".to_owned();
            config.mail.smtp_url = Some(healthy_url);
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = system.run_batch("30d").await?;
    assert_eq!(later.counts.unwrap_or_default().eligible, 0);
    assert!(
        healthy.messages().is_empty(),
        "an unknown delivery was resent"
    );

    let request = pb::ResendInvoiceRequest {
        invoice_number: "INV-1".to_owned(),
        revision: 0,
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        reason: "the first send may not have arrived".to_owned(),
        request_id: String::new(),
        actor: "test".to_owned(),
    };
    let resent = system
        .orchestrator()?
        .resend_invoice(request)
        .await?
        .into_inner()
        .delivery
        .unwrap_or_default();
    assert_eq!(resent.state, i32::from(pb::DeliveryState::Sent));
    assert_eq!(resent.message_id, unknown.message_id);
    let received = healthy
        .wait_for_messages(1, Duration::from_secs(10))
        .await?;
    let parsed = invoicer_e2e::parse_message(&received[0])?;
    assert_eq!(parsed.message_id, unknown.message_id);
    system.stop().await
}
