//! Tests of the invoice-query gRPC server: the real host bootstrap on 127.0.0.1:0 with only
//! this plugin, called over gRPC on SQLite and, when `INVOICER_TEST_DATABASE_URL` is set, on
//! a fresh PostgreSQL database.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, ensure};
use invoicer_invoice_query::{InvoiceQueryPlugin, MAX_DOCUMENT_BYTES};
use invoicer_kit::server::RunningServer;
use invoicer_kit::{Config, ServicePlugin};
use invoicer_proto::invoice_query::v1 as pb;
use invoicer_proto::types::v1 as types;
use invoicer_test_db::TestDatabase;
use pb::invoice_query_service_client::InvoiceQueryServiceClient;
use tonic::Code;
use tonic::transport::Channel;

const CHINOOK: &[u8] = include_bytes!("../../invoicer/sample/chinook-export.json");
const CHUNK_BYTES: usize = 256 * 1024;

type Client = InvoiceQueryServiceClient<Channel>;

async fn start_server(
    data_dir: &Path,
    database_url: Option<String>,
) -> anyhow::Result<RunningServer> {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        database_url,
        ..Config::default()
    };
    config.server.listen = "127.0.0.1:0".parse()?;
    config.server.shutdown_grace_secs = 5;
    let plugins: Vec<Arc<dyn ServicePlugin>> = vec![Arc::new(InvoiceQueryPlugin::new())];
    invoicer_kit::server::start(Arc::new(config), plugins)
        .await
        .map_err(|error| anyhow::anyhow!("server did not start: {error}"))
}

async fn upsert(
    client: &mut Client,
    document: &[u8],
    chunk_bytes: usize,
) -> Result<pb::UpsertInvoicesResponse, tonic::Status> {
    let requests: Vec<pb::UpsertInvoicesRequest> = document
        .chunks(chunk_bytes)
        .map(|chunk| pb::UpsertInvoicesRequest {
            chunk: chunk.to_vec(),
        })
        .collect();
    client
        .upsert_invoices(tokio_stream::iter(requests))
        .await
        .map(tonic::Response::into_inner)
}

fn counts(response: &pb::UpsertInvoicesResponse) -> (pb::ImportCounts, pb::ImportCounts) {
    (
        response.customers.unwrap_or_default(),
        response.invoices.unwrap_or_default(),
    )
}

fn created(count: u32) -> pb::ImportCounts {
    pb::ImportCounts {
        created: count,
        ..Default::default()
    }
}

fn unchanged(count: u32) -> pb::ImportCounts {
    pb::ImportCounts {
        unchanged: count,
        ..Default::default()
    }
}

/// Calls all four RPCs against a server with an empty database.
async fn exercise_all_rpcs(server: &RunningServer) -> anyhow::Result<()> {
    let mut client =
        InvoiceQueryServiceClient::connect(format!("http://{}", server.local_addr())).await?;
    check_upserts(&mut client).await.context("UpsertInvoices")?;
    check_get_invoice(&mut client).await.context("GetInvoice")?;
    check_list(&mut client)
        .await
        .context("ListInvoicesToNotify")?;
    check_get_customer(&mut client)
        .await
        .context("GetCustomer")?;
    Ok(())
}

async fn check_upserts(client: &mut Client) -> anyhow::Result<()> {
    let first = upsert(client, CHINOOK, CHUNK_BYTES).await?;
    ensure!(
        first.rejections.is_empty(),
        "rejections: {:?}",
        first.rejections
    );
    ensure!(
        counts(&first) == (created(59), created(412)),
        "first import: {:?}",
        counts(&first)
    );

    let again = upsert(client, CHINOOK, CHUNK_BYTES).await?;
    ensure!(
        counts(&again) == (unchanged(59), unchanged(412)),
        "re-import: {:?}",
        counts(&again)
    );

    let bad = br#"{"format": "invoicer.erp-export.v1", "invoices": [
        {"number": "BAD-1", "customer": "CH-001", "kind": "invoice", "status": "posted",
         "issued_at": "2026-12-03T15:00:00Z", "currency": "USD",
         "lines": [{"amount": "1.00"}], "subtotal": "1.00", "total": "2.00"}]}"#;
    let response = upsert(client, bad, 16).await?;
    ensure!(
        response.invoices.unwrap_or_default().rejected == 1,
        "{response:?}"
    );
    let rejection = &response.rejections[0];
    ensure!(
        rejection.record_type == pb::RecordType::Invoice as i32,
        "{rejection:?}"
    );
    ensure!(
        rejection.key == "BAD-1" && rejection.field == "invoices[0].total",
        "{rejection:?}"
    );

    check_address_list_warning(client).await?;

    let status = upsert(client, b"{\"format\": \"acme\"}", CHUNK_BYTES)
        .await
        .unwrap_err();
    ensure!(status.code() == Code::InvalidArgument, "{status:?}");
    ensure!(
        status.message().contains("unsupported format \"acme\""),
        "{status:?}"
    );

    let oversized = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    let status = upsert(client, &oversized, 2 * 1024 * 1024)
        .await
        .unwrap_err();
    ensure!(status.code() == Code::ResourceExhausted, "{status:?}");
    ensure!(
        status
            .message()
            .contains("exceeds the maximum of 67108864 bytes"),
        "{status:?}"
    );
    Ok(())
}

/// Imports a customer whose address list has one invalid element and checks the warning.
async fn check_address_list_warning(client: &mut Client) -> anyhow::Result<()> {
    let document = br#"{"format": "invoicer.erp-export.v1", "customers": [
        {"code": "CH-900", "name": "Warned",
         "contacts": [{"name": "AP", "email": "ap@warned.example, broken"}]}]}"#;
    let response = upsert(client, document, CHUNK_BYTES).await?;
    ensure!(
        counts(&response).0 == created(1),
        "customers: {:?}",
        counts(&response).0
    );
    ensure!(response.rejections.is_empty(), "{response:?}");
    ensure!(response.warnings.len() == 1, "{response:?}");
    let warning = &response.warnings[0];
    ensure!(
        warning.record_type == pb::RecordType::Customer as i32,
        "{warning:?}"
    );
    ensure!(
        warning.key == "CH-900" && warning.field == "customers[0].contacts[0].email",
        "{warning:?}"
    );
    ensure!(warning.message.contains("\"broken\""), "{warning:?}");
    Ok(())
}

async fn check_get_invoice(client: &mut Client) -> anyhow::Result<()> {
    let request = pb::GetInvoiceRequest {
        number: "CH-2021-0001".to_owned(),
    };
    let response = client.get_invoice(request).await?.into_inner();
    let invoice = response.invoice.context("no invoice")?;
    ensure!(
        invoice.revision == 1 && invoice.customer_code == "CH-002",
        "{invoice:?}"
    );
    ensure!(
        invoice.kind == types::InvoiceKind::Invoice as i32,
        "{invoice:?}"
    );
    ensure!(
        invoice.status == types::InvoiceStatus::Posted as i32,
        "{invoice:?}"
    );
    ensure!(
        invoice.issued_at == "2021-12-13T15:00:00Z" && invoice.due_date == "2022-01-12",
        "{invoice:?}"
    );
    ensure!(
        invoice.lines.len() == 2 && invoice.lines[0].unit_price == "0.99",
        "{invoice:?}"
    );
    ensure!(
        invoice.subtotal == "1.98" && invoice.total == "1.98",
        "{invoice:?}"
    );
    ensure!(invoice.content_sha256.len() == 64, "{invoice:?}");
    ensure!(response.customer.context("no customer")?.code == "CH-002");

    let missing = pb::GetInvoiceRequest {
        number: "CH-1999-0001".to_owned(),
    };
    let status = client.get_invoice(missing).await.unwrap_err();
    ensure!(status.code() == Code::NotFound, "{status:?}");
    ensure!(status.message().contains("\"CH-1999-0001\""), "{status:?}");
    Ok(())
}

async fn check_list(client: &mut Client) -> anyhow::Result<()> {
    let mut request = pb::ListInvoicesToNotifyRequest {
        issued_since: "2021-01-01T00:00:00Z".to_owned(),
        issued_before: "2026-12-03T15:00:00Z".to_owned(),
        kinds: vec![types::InvoiceKind::Invoice as i32],
        page_size: 100,
        page_token: String::new(),
    };
    let mut listed: Vec<pb::InvoiceSummary> = Vec::new();
    loop {
        let page = client
            .list_invoices_to_notify(request.clone())
            .await?
            .into_inner();
        ensure!(
            page.invoices.len() <= 100,
            "page of {}",
            page.invoices.len()
        );
        listed.extend(page.invoices);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    // The last Chinook invoice is issued exactly at 2026-12-03T15:00:00Z, the exclusive end.
    ensure!(listed.len() == 411, "listed {}", listed.len());
    let keys: Vec<(&str, &str)> = listed
        .iter()
        .map(|s| (s.issued_at.as_str(), s.number.as_str()))
        .collect();
    ensure!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "not oldest first"
    );

    let invalid = pb::ListInvoicesToNotifyRequest {
        issued_before: "yesterday".to_owned(),
        ..Default::default()
    };
    let status = client.list_invoices_to_notify(invalid).await.unwrap_err();
    ensure!(status.code() == Code::InvalidArgument, "{status:?}");
    ensure!(
        status
            .message()
            .starts_with("issued_before: invalid timestamp \"yesterday\""),
        "{status:?}"
    );

    let unspecified = pb::ListInvoicesToNotifyRequest {
        kinds: vec![0],
        ..Default::default()
    };
    let status = client
        .list_invoices_to_notify(unspecified)
        .await
        .unwrap_err();
    ensure!(
        status.code() == Code::InvalidArgument && status.message().starts_with("kinds:"),
        "{status:?}"
    );
    Ok(())
}

async fn check_get_customer(client: &mut Client) -> anyhow::Result<()> {
    let response = client
        .get_customer(pb::GetCustomerRequest {
            code: "CH-001".to_owned(),
        })
        .await?
        .into_inner();
    let customer = response.customer.context("no customer")?;
    ensure!(customer.name.starts_with("Embraer"), "{customer:?}");
    ensure!(
        customer.language == "pt" && customer.address.len() == 3,
        "{customer:?}"
    );
    ensure!(
        customer.contacts[0].email == "luisg@embraer.example",
        "{customer:?}"
    );
    ensure!(
        customer.contacts[0].invoice_role == types::RecipientRole::To as i32,
        "{customer:?}"
    );

    let status = client
        .get_customer(pb::GetCustomerRequest {
            code: "CH-999".to_owned(),
        })
        .await
        .unwrap_err();
    ensure!(
        status.code() == Code::NotFound && status.message().contains("\"CH-999\""),
        "{status:?}"
    );
    Ok(())
}

/// Starts a server on `database`, calls every RPC, then stops the server.
async fn run_on(database: &TestDatabase) -> anyhow::Result<()> {
    let server = start_server(&database.data_dir(), database.database_url()).await?;
    let result = exercise_all_rpcs(&server).await;
    server
        .shutdown("test finished")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    result
}

#[tokio::test]
async fn grpc_rpcs_on_sqlite() -> anyhow::Result<()> {
    let database = TestDatabase::sqlite()?;
    run_on(&database).await?;
    ensure!(
        database.data_dir().join("invoice_query.db").exists(),
        "no SQLite file in the data folder"
    );
    database.remove().await?;
    Ok(())
}

#[tokio::test]
async fn grpc_rpcs_on_postgres() -> anyhow::Result<()> {
    let Some(database) = TestDatabase::postgres("grpc_rpcs_on_postgres").await? else {
        return Ok(());
    };
    let result = run_on(&database).await;
    database.remove().await?;
    result
}
