//! Access control of the whole system: roles per RPC with real tokens, the caller recorded as
//! the actor, overrides outside the customer's domains, `invoicer token new`, and load
//! shedding under a flood.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use invoicer_e2e::System;
use invoicer_kit::Role;
use invoicer_kit::auth::{TokenEntry, parse_token_list, token_sha256_hex};
use invoicer_kit::client::OutgoingInterceptor;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::audit_log::v1::audit_log_service_client::AuditLogServiceClient;
use invoicer_proto::mail_delivery::v1 as mail;
use invoicer_proto::mail_delivery::v1::mail_delivery_service_client::MailDeliveryServiceClient;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Stage, TestSmtpServer};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::data::{contact, customer, export, invoice};

on_both_databases!(
    roles_are_enforced_per_rpc,
    resend_records_authenticated_actor,
    resend_outside_customer_domains,
    cli_sends_token_from_file,
    flood_is_shed_with_resource_exhausted
);

const VIEWER: &str = "viewer-token";
const OPERATOR: &str = "operator-token";
const ADMIN: &str = "admin-token";

type Authorized = InterceptedService<Channel, OutgoingInterceptor>;

fn entry(role: Role, token: &str, name: Option<&str>) -> TokenEntry {
    TokenEntry {
        role,
        sha256: token_sha256_hex(token),
        name: name.map(str::to_owned),
    }
}

/// Starts the system with a viewer, an operator (`ops`) and an admin (`boss`) token and
/// imports one customer with a contact at buyer.example and one invoice.
async fn system_with_tokens(database: TestDatabase) -> Result<System> {
    let system = System::start_with(database, TestSmtpServer::builder().start().await?, |c| {
        c.server.tokens = vec![
            entry(Role::Viewer, VIEWER, None),
            entry(Role::Operator, OPERATOR, Some("ops")),
            entry(Role::Admin, ADMIN, Some("boss")),
        ];
    })
    .await?;
    let token_file = system.file("admin.token");
    std::fs::write(&token_file, format!("{ADMIN}\n"))?;
    let config_file = system.file("client.toml");
    std::fs::write(
        &config_file,
        format!(
            "[client]\ntoken_file = {:?}\n",
            token_file.display().to_string()
        ),
    )?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    let path = system.file("a.json");
    std::fs::write(&path, document)?;
    let imported = system
        .cli(&[
            "--config",
            &config_file.display().to_string(),
            "import",
            &path.display().to_string(),
        ])
        .await?;
    assert_eq!(imported.code, std::process::ExitCode::SUCCESS);
    Ok(system)
}

fn channel(system: &System, token: Option<&str>) -> Result<Authorized> {
    let channel = Channel::from_shared(system.endpoint.clone())?.connect_lazy();
    let interceptor = OutgoingInterceptor::new(token).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(InterceptedService::new(channel, interceptor))
}

fn orchestrator(
    system: &System,
    token: Option<&str>,
) -> Result<OrchestratorServiceClient<Authorized>> {
    Ok(OrchestratorServiceClient::new(channel(system, token)?))
}

fn resend(to: &[&str]) -> pb::ResendInvoiceRequest {
    pb::ResendInvoiceRequest {
        invoice_number: "INV-1".to_owned(),
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        reason: "customer asked for a copy".to_owned(),
        actor: "test".to_owned(),
        ..Default::default()
    }
}

fn notifier_update() -> pb::UpdateNotifierRequest {
    pb::UpdateNotifierRequest {
        customer_code: "C-1".to_owned(),
        notifier: Some(pb::Notifier {
            enabled: Some(false),
            ..Default::default()
        }),
        actor: "test".to_owned(),
        reason: "paused".to_owned(),
    }
}

async fn roles_are_enforced_per_rpc(database: TestDatabase) -> Result<()> {
    let system = system_with_tokens(database).await?;

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&system, None)?);
    let request = tonic_health::pb::HealthCheckRequest::default();
    assert!(health.check(request).await.is_ok(), "health needs no token");

    let missing = orchestrator(&system, None)?
        .list_batches(pb::ListBatchesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let unknown = orchestrator(&system, Some("guessed"))?
        .list_batches(pb::ListBatchesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);

    let mut viewer = orchestrator(&system, Some(VIEWER))?;
    assert!(
        viewer
            .list_batches(pb::ListBatchesRequest::default())
            .await
            .is_ok()
    );
    let run = viewer
        .run_batch(pb::RunBatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(run.code(), Code::PermissionDenied);
    assert!(
        run.message().contains("needs role operator or admin"),
        "{}",
        run.message()
    );
    let resent = viewer.resend_invoice(resend(&[])).await.unwrap_err();
    assert_eq!(resent.code(), Code::PermissionDenied);

    let mut operator = orchestrator(&system, Some(OPERATOR))?;
    let update = operator
        .update_notifier(notifier_update())
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::PermissionDenied);
    let mut admin = orchestrator(&system, Some(ADMIN))?;
    assert!(admin.update_notifier(notifier_update()).await.is_ok());

    // Only the services send mail and append to the email log, never a person.
    let mut mail = MailDeliveryServiceClient::new(channel(&system, Some(ADMIN))?);
    let send = mail
        .send_email(mail::SendEmailRequest::default())
        .await
        .unwrap_err();
    assert_eq!(send.code(), Code::PermissionDenied);
    let mut log = AuditLogServiceClient::new(channel(&system, Some(ADMIN))?);
    let append = log
        .append_entry(audit::AppendEntryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(append.code(), Code::PermissionDenied);
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

async fn resend_records_authenticated_actor(database: TestDatabase) -> Result<()> {
    let system = system_with_tokens(database).await?;
    // The operator's resend goes through every service with the host's own service token.
    let response = orchestrator(&system, Some(OPERATOR))?
        .resend_invoice(resend(&[]))
        .await?
        .into_inner();
    let delivery = response.delivery.context("no delivery")?;
    assert_eq!(
        delivery.state,
        i32::from(pb::DeliveryState::Sent),
        "{delivery:?}"
    );
    assert_eq!(system.wait_for_messages(1).await?.len(), 1);

    let entries = AuditLogServiceClient::new(channel(&system, Some(VIEWER))?)
        .list_entries(audit::ListEntriesRequest::default())
        .await?
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);
    let trigger = entries[0].trigger.clone().context("no trigger")?;
    assert_eq!(trigger.actor, "ops (claimed: test)");
    system.stop().await
}

async fn resend_outside_customer_domains(database: TestDatabase) -> Result<()> {
    let system = system_with_tokens(database).await?;
    let mut operator = orchestrator(&system, Some(OPERATOR))?;
    let inside = operator.resend_invoice(resend(&["ap@buyer.example"])).await;
    assert!(inside.is_ok(), "{inside:?}");
    let outside = operator
        .resend_invoice(resend(&["someone@elsewhere.example"]))
        .await;
    assert!(outside.is_ok(), "{outside:?}");
    let mut without_reason = resend(&["someone@elsewhere.example"]);
    without_reason.reason = String::new();
    let error = operator.resend_invoice(without_reason).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("reason"), "{}", error.message());
    let viewer = orchestrator(&system, Some(VIEWER))?
        .resend_invoice(resend(&["someone@elsewhere.example"]))
        .await
        .unwrap_err();
    assert_eq!(viewer.code(), Code::PermissionDenied);
    assert_eq!(system.wait_for_messages(2).await?.len(), 2);
    system.stop().await
}

async fn cli_sends_token_from_file(database: TestDatabase) -> Result<()> {
    let printed = {
        let mut out = Vec::new();
        let args = ["invoicer", "token", "new", "--role", "operator"].map(str::to_owned);
        invoicer::run(args.to_vec(), &mut out).await?;
        String::from_utf8(out)?
    };
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    let token = lines[0];
    assert_eq!(token.len(), 64, "{token}");
    assert_eq!(lines[1], format!("operator:{}", token_sha256_hex(token)));

    let entries = parse_token_list(lines[1]).map_err(|(_, m)| anyhow::anyhow!(m))?;
    let system = System::start_with(database, TestSmtpServer::builder().start().await?, |c| {
        c.server.tokens = entries;
    })
    .await?;
    let token_file = system.file("operator.token");
    std::fs::write(&token_file, token)?;
    let config_file = system.file("client.toml");
    std::fs::write(
        &config_file,
        format!(
            "[client]\ntoken_file = {:?}\n",
            token_file.display().to_string()
        ),
    )?;
    let listed = system
        .cli(&[
            "--config",
            &config_file.display().to_string(),
            "batch",
            "list",
            "--json",
        ])
        .await?;
    assert_eq!(listed.code, std::process::ExitCode::SUCCESS);
    let without = system
        .cli(&["batch", "list"])
        .await
        .err()
        .context("batch list without a token succeeded")?;
    assert!(
        format!("{without:#}").contains("INVOICER_TOKEN"),
        "{without:#}"
    );
    system.stop().await
}

async fn flood_is_shed_with_resource_exhausted(database: TestDatabase) -> Result<()> {
    // One request at a time; a slow SMTP reply keeps the first resend holding the permit.
    let smtp = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_millis(1500))
        .start()
        .await?;
    let system =
        System::start_with(database, smtp, |c| c.server.max_concurrent_requests = 1).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;

    let mut slow = system.orchestrator()?;
    let resend_task = tokio::spawn(async move { slow.resend_invoice(resend(&[])).await });
    let started = Instant::now();
    while system.smtp.connection_count() == 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the resend never reached SMTP"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let flood_started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..20 {
        let mut client = system.orchestrator()?;
        calls.push(tokio::spawn(async move {
            client.list_batches(pb::ListBatchesRequest::default()).await
        }));
    }
    let mut shed = 0;
    for call in calls {
        let error = call.await?.unwrap_err();
        assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
        shed += 1;
    }
    assert_eq!(shed, 20);
    assert!(
        flood_started.elapsed() < Duration::from_millis(1000),
        "shedding waited for the running request: {:?}",
        flood_started.elapsed()
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(system.endpoint.clone())?.connect_lazy(),
    );
    let request = tonic_health::pb::HealthCheckRequest::default();
    assert!(
        health.check(request).await.is_ok(),
        "health checks are not shed"
    );

    let resent = resend_task.await?;
    assert!(resent.is_ok(), "{resent:?}");
    let after = system
        .orchestrator()?
        .list_batches(pb::ListBatchesRequest::default())
        .await;
    assert!(after.is_ok(), "{after:?}");
    system.stop().await
}
