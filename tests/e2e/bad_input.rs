//! Bad input at the gRPC boundary of the running system: every bad field named in a
//! `google.rpc.BadRequest`, and requests over the size limit rejected before decoding.

use anyhow::Result;
use invoicer_e2e::System;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;
use tonic::Code;

on_both_databases!(
    resend_names_every_bad_field,
    oversized_request_rejected,
    malformed_export_names_file
);

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    invoicer_kit::validate::bad_request_fields(status)
}

async fn resend_names_every_bad_field(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let request = pb::ResendInvoiceRequest {
        invoice_number: "INV-1".to_owned(),
        to: vec!["ap@buyer.example>\r\nRCPT TO:<victim@elsewhere.example".to_owned()],
        bcc: (0..100).map(|i| format!("r{i}@buyer.example")).collect(),
        reason: "copy\0".to_owned(),
        request_id: "r".repeat(200),
        ..Default::default()
    };
    let error = system
        .orchestrator()?
        .resend_invoice(request)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&error), ["to", "to[0]", "reason", "request_id"]);
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

async fn oversized_request_rejected(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let request = pb::ResendInvoiceRequest {
        invoice_number: "INV-1".to_owned(),
        reason: "x".repeat(9 << 20),
        ..Default::default()
    };
    let error = system
        .orchestrator()?
        .resend_invoice(request)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::OutOfRange, "{error:?}");
    assert!(error.message().contains("too large"), "{}", error.message());
    system.stop().await
}

/// An export that is not JSON is rejected whole, and the CLI's error names the file.
async fn malformed_export_names_file(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let error = system
        .import_text("broken-export.json", "{\"customers\": [")
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.starts_with("cannot import "), "{message}");
    assert!(message.contains("broken-export.json"), "{message}");
    assert!(message.contains("malformed export document"), "{message}");
    assert!(!message.contains("chunk"), "{message}");
    system.stop().await
}
