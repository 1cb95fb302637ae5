//! Calls `RenderInvoice` over gRPC on a real server started with the host's bootstrap on
//! 127.0.0.1:0.

use std::sync::Arc;

use invoicer_kit::server::{self, RunningServer};
use invoicer_kit::{Config, ServicePlugin};
use invoicer_pdf_render::PdfRenderPlugin;
use invoicer_proto::pdf_render::v1::pdf_render_service_client::PdfRenderServiceClient;
use invoicer_proto::pdf_render::v1::{RenderInvoiceRequest, Seller};
use invoicer_proto::types::v1::{Customer, Invoice, InvoiceKind, InvoiceLine, Tax};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::transport::Channel;

async fn start_server() -> anyhow::Result<(RunningServer, PdfRenderServiceClient<Channel>)> {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse()?;
    let plugins: Vec<Arc<dyn ServicePlugin>> = vec![Arc::new(PdfRenderPlugin)];
    let running = server::start(Arc::new(config), plugins)
        .await
        .map_err(|error| anyhow::anyhow!("server start failed: {error}"))?;
    let client =
        PdfRenderServiceClient::connect(format!("http://{}", running.local_addr())).await?;
    Ok((running, client))
}

fn request() -> RenderInvoiceRequest {
    RenderInvoiceRequest {
        invoice: Some(Invoice {
            number: "INV/2026:0042".into(),
            customer_code: "C-7".into(),
            kind: InvoiceKind::Invoice as i32,
            revision: 3,
            issued_at: "2026-12-03T16:20:00+01:00".into(),
            due_date: "2027-01-02".into(),
            currency: "EUR".into(),
            terms: "Net 30".into(),
            lines: vec![InvoiceLine {
                sku: "SVC-1".into(),
                description: "Consulting, Łódź office".into(),
                quantity: "10".into(),
                unit: "h".into(),
                unit_price: "120.00".into(),
                amount: "1200.00".into(),
                tax_rate: "19".into(),
            }],
            subtotal: "1200.00".into(),
            taxes: vec![Tax {
                name: "MwSt. 19 %".into(),
                rate: "19".into(),
                amount: "228.00".into(),
            }],
            total: "1428.00".into(),
            notes: "Vielen Dank.".into(),
            content_sha256: "ab".repeat(32),
            ..Default::default()
        }),
        customer: Some(Customer {
            code: "C-7".into(),
            name: "Jürgen Ångström".into(),
            language: "de".into(),
            address: vec!["Königsallee 1".into(), "40212 Düsseldorf".into()],
            ..Default::default()
        }),
        seller: Some(Seller {
            name: "Nordlys Software AS".into(),
            ..Default::default()
        }),
        template: String::new(),
    }
}

#[tokio::test]
async fn grpc_render_returns_pdf_and_metadata() -> anyhow::Result<()> {
    let (running, mut client) = start_server().await?;

    let response = client.render_invoice(request()).await?.into_inner();

    assert!(response.pdf.starts_with(b"%PDF-"), "response is not a PDF");
    assert_eq!(response.sha256, hex::encode(Sha256::digest(&response.pdf)));
    assert_eq!(response.page_count, 1);
    assert_eq!(response.file_name, "INV_2026_0042.pdf");

    let again = client.render_invoice(request()).await?.into_inner();
    assert_eq!(
        again.sha256, response.sha256,
        "same request gave different bytes"
    );

    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

/// More requests at once than the server has render threads: each waits for a thread, and
/// every invoice gets the bytes that the same request gets alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_concurrent_renders_match_single_ones() -> anyhow::Result<()> {
    let (running, client) = start_server().await?;
    let numbered = |index: usize| {
        let mut request = request();
        if let Some(invoice) = request.invoice.as_mut() {
            invoice.number = format!("INV-{index:03}");
            invoice.lines = (0..=index * 10)
                .map(|line| InvoiceLine {
                    description: format!("Line {line}"),
                    ..invoice.lines[0].clone()
                })
                .collect();
        }
        request
    };
    let count = 4 * std::thread::available_parallelism().map_or(1, |cores| cores.get());

    let mut tasks = Vec::new();
    for index in 0..count {
        let mut client = client.clone();
        let request = numbered(index % 6);
        tasks.push(tokio::spawn(
            async move { client.render_invoice(request).await },
        ));
    }
    let mut concurrent = Vec::new();
    for task in tasks {
        concurrent.push(task.await??.into_inner());
    }

    let mut client = client.clone();
    for (index, response) in concurrent.iter().enumerate() {
        let alone = client
            .render_invoice(numbered(index % 6))
            .await?
            .into_inner();
        assert_eq!(
            response.sha256, alone.sha256,
            "request {index} gave other bytes when rendered beside others"
        );
        assert_eq!(response.page_count, alone.page_count, "request {index}");
    }
    assert!(
        concurrent.iter().any(|response| response.page_count > 1),
        "no request spanned several pages, so the parallel layout of pages went untested"
    );

    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

#[tokio::test]
async fn grpc_rejects_missing_invoice() -> anyhow::Result<()> {
    let (running, mut client) = start_server().await?;

    let request = RenderInvoiceRequest {
        invoice: None,
        ..request()
    };
    let status = client
        .render_invoice(request)
        .await
        .expect_err("request should fail");

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("invoice:"),
        "{}",
        status.message()
    );
    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

#[tokio::test]
async fn grpc_rejects_unknown_template() -> anyhow::Result<()> {
    let (running, mut client) = start_server().await?;

    let request = RenderInvoiceRequest {
        template: "fancy".into(),
        ..request()
    };
    let status = client
        .render_invoice(request)
        .await
        .expect_err("request should fail");

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("\"fancy\""),
        "{}",
        status.message()
    );
    assert!(status.message().contains("default"), "{}", status.message());
    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

#[tokio::test]
async fn grpc_rejects_invalid_issued_at() -> anyhow::Result<()> {
    let (running, mut client) = start_server().await?;

    let mut request = request();
    request.invoice.as_mut().unwrap().issued_at = "yesterday".into();
    let status = client
        .render_invoice(request)
        .await
        .expect_err("request should fail");

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("invoice.issued_at"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("\"yesterday\""),
        "{}",
        status.message()
    );
    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

#[tokio::test]
async fn grpc_reports_missing_glyphs_as_failed_precondition() -> anyhow::Result<()> {
    let (running, mut client) = start_server().await?;

    let mut request = request();
    request.customer.as_mut().unwrap().name = "บริษัท".into();
    let status = client
        .render_invoice(request)
        .await
        .expect_err("request should fail");

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("U+0E1A"), "{}", status.message());
    running
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}
