//! Resend requests: bad input gets a clear error and sends nothing, and a resend whose caller
//! stops waiting still ends.

use std::time::Duration;

use anyhow::{Context, Result};
use invoicer_e2e::System;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Action, TestSmtpServer};

on_both_databases!(
    resend_invalid_address_names_it,
    resend_without_reason_rejected,
    resend_reason_with_control_character_rejected,
    resend_repeat_with_other_parameters_rejected,
    resend_unknown_invoice_not_found,
    resend_request_id_reused_for_other_invoice_rejected,
    resend_does_not_mark_batch_delivery,
    resend_ends_after_caller_leaves,
    resend_cli_timeout_names_request_id,
    resend_blank_request_id_rejected,
    resend_deferred_output_names_retry
);

use crate::data::{contact, customer, export, invoice};

async fn system_with_invoice(database: TestDatabase) -> Result<System> {
    system_with_invoice_and_smtp(database, TestSmtpServer::builder().start().await?).await
}

/// Starts the system with `smtp` as its mail server and imports INV-1 for customer C-1.
async fn system_with_invoice_and_smtp(
    database: TestDatabase,
    smtp: TestSmtpServer,
) -> Result<System> {
    let system = System::start(database, smtp).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    Ok(system)
}

fn request(to: &[&str], reason: &str) -> pb::ResendInvoiceRequest {
    pb::ResendInvoiceRequest {
        invoice_number: "INV-1".to_owned(),
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        reason: reason.to_owned(),
        actor: "test".to_owned(),
        ..Default::default()
    }
}

async fn resend_invalid_address_names_it(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let error = system
        .orchestrator()?
        .resend_invoice(request(&["broken@@x"], "copy"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("broken@@x"), "{}", error.message());
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

async fn resend_without_reason_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let error = system
        .orchestrator()?
        .resend_invoice(request(&[], " "))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("reason"), "{}", error.message());
    system.stop().await
}

async fn resend_unknown_invoice_not_found(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let mut unknown = request(&[], "copy");
    unknown.invoice_number = "INV-404".to_owned();
    let error = system
        .orchestrator()?
        .resend_invoice(unknown)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert!(error.message().contains("INV-404"), "{}", error.message());
    system.stop().await
}

async fn resend_request_id_reused_for_other_invoice_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let mut first = request(&[], "copy");
    first.request_id = "shared-id".to_owned();
    system.orchestrator()?.resend_invoice(first).await?;
    let mut other = request(&[], "copy");
    other.invoice_number = "INV-2".to_owned();
    other.request_id = "shared-id".to_owned();
    let error = system
        .orchestrator()?
        .resend_invoice(other)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("shared-id"), "{}", error.message());
    assert_eq!(system.smtp.messages().len(), 1);
    system.stop().await
}

async fn resend_does_not_mark_batch_delivery(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    system
        .orchestrator()?
        .resend_invoice(request(&["copy@elsewhere.example"], "copy"))
        .await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(
        batch.counts.unwrap_or_default().sent,
        1,
        "a resend kept the batch from sending the invoice"
    );
    assert_eq!(system.wait_for_messages(2).await?.len(), 2);
    system.stop().await
}

async fn resend_reason_with_control_character_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let request = request(&[], "copy\n\u{1b}[31mred");
    let error = system
        .orchestrator()?
        .resend_invoice(request)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("control character"),
        "{}",
        error.message()
    );
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

async fn resend_repeat_with_other_parameters_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let mut first = request(&["copy@elsewhere.example"], "copy");
    first.request_id = "ticket-1".to_owned();
    system.orchestrator()?.resend_invoice(first.clone()).await?;

    let mut other_address = first.clone();
    other_address.to = vec!["other@elsewhere.example".to_owned()];

    let mut other_reason = first.clone();
    other_reason.reason = "something else".to_owned();

    // The first request named an address, so one without any goes to the contacts.
    let mut to_contacts = first.clone();
    to_contacts.to.clear();

    // The first request named no revision, so it meant the latest, which was 1. A repeat that
    // names revision 1 is still a different request.
    let mut named_revision = first.clone();
    named_revision.revision = 1;

    // Every differing part is named, the revision included.
    let mut several = first.clone();
    several.revision = 2;
    several.reason = "something else".to_owned();
    several.cc = vec!["cc@elsewhere.example".to_owned()];

    for (repeat, expected) in [
        (other_address, "with a different to; repeat"),
        (other_reason, "with a different reason; repeat"),
        (
            to_contacts,
            "with a different to; this request names no addresses, so it would go to the customer's contacts;",
        ),
        (
            named_revision,
            "with a different revision; revision 0 (or none) means the latest, which differs from naming its number;",
        ),
        (several, "with a different revision, reason and cc;"),
    ] {
        let error = system
            .orchestrator()?
            .resend_invoice(repeat)
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{expected}");
        assert!(
            error.message().contains(expected),
            "{expected:?} not in {}",
            error.message()
        );
    }

    let replay = system
        .orchestrator()?
        .resend_invoice(first)
        .await?
        .into_inner();
    assert!(replay.replayed, "the exact repeat was not replayed");
    assert_eq!(system.smtp.messages().len(), 1);
    system.stop().await
}

/// Checks that a resend whose caller stops waiting while the mail server is slow still goes
/// out once and ends `sent`, which the same request id then returns. Dropped with its caller,
/// it would stop in `submitting` and end `unknown`.
async fn resend_ends_after_caller_leaves(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .on_rcpt(
            "copy@elsewhere.example",
            Action::delay(Duration::from_secs(5)),
        )
        .start()
        .await?;
    let system = system_with_invoice_and_smtp(database, smtp).await?;
    let resend = pb::ResendInvoiceRequest {
        request_id: "caller-leaves".to_owned(),
        ..request(&["copy@elsewhere.example"], "copy")
    };

    let mut first = tonic::Request::new(resend.clone());
    first.set_timeout(Duration::from_secs(2));
    let error = system
        .orchestrator()?
        .resend_invoice(first)
        .await
        .unwrap_err();
    assert!(
        [tonic::Code::Cancelled, tonic::Code::DeadlineExceeded].contains(&error.code()),
        "{error:?}"
    );
    system.wait_for_messages(1).await?;

    let mut state = None;
    for _ in 0..600 {
        let repeated = system
            .orchestrator()?
            .resend_invoice(resend.clone())
            .await?
            .into_inner();
        assert!(repeated.replayed);
        state = repeated.delivery.map(|delivery| delivery.state());
        if state == Some(pb::DeliveryState::Sent) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, Some(pb::DeliveryState::Sent));
    assert_eq!(system.smtp.messages().len(), 1);
    system.stop().await
}

/// Checks that `invoicer resend` without `--request-id`, timed out while the mail server is
/// slow, names the id it sent, and that the same command with that id returns the result
/// without a second message.
async fn resend_cli_timeout_names_request_id(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .on_rcpt(
            "copy@elsewhere.example",
            Action::delay(Duration::from_secs(5)),
        )
        .start()
        .await?;
    let system = system_with_invoice_and_smtp(database, smtp).await?;
    let config = system.file("client.toml");
    std::fs::write(&config, "[client]\ntimeout_secs = 2\n")?;
    let config = config.to_str().context("non-UTF-8 path")?;
    let resend = [
        "--config",
        config,
        "resend",
        "INV-1",
        "--to",
        "copy@elsewhere.example",
        "--reason",
        "copy",
    ];

    let Err(error) = system.cli(&resend).await else {
        anyhow::bail!("the resend did not time out");
    };
    let message = format!("{error:#}");
    assert!(message.contains("within client.timeout_secs"), "{message}");
    let request_id = message
        .split("--request-id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no request id in {message:?}"))?
        .to_owned();
    system.wait_for_messages(1).await?;

    let mut again = resend.to_vec();
    again.extend(["--request-id", &request_id]);
    let mut sent = None;
    for _ in 0..600 {
        let output = system.cli(&again).await?;
        if output.code == std::process::ExitCode::SUCCESS {
            sent = Some(output.stdout);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output =
        sent.with_context(|| format!("the resend with id {request_id} did not end sent"))?;
    assert!(
        output.contains(&format!("with request id {request_id}: copy")),
        "{output}"
    );
    assert_eq!(system.smtp.messages().len(), 1);
    system.stop().await
}

/// Checks that the CLI rejects an empty `--request-id`, because the server would make a new id
/// on every run. The server rejects an id padded with spaces, which a later call might send
/// without them.
async fn resend_blank_request_id_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    for blank in ["", "  "] {
        let args = ["resend", "INV-1", "--reason", "copy", "--request-id", blank];
        let Err(error) = system.cli(&args).await else {
            anyhow::bail!("a resend with request id {blank:?} was accepted");
        };
        let message = format!("{error:#}");
        assert!(message.contains("--request-id is empty"), "{message}");
    }

    let args = [
        "resend",
        "INV-1",
        "--reason",
        "copy",
        "--request-id",
        " t-3 ",
    ];
    let Err(error) = system.cli(&args).await else {
        anyhow::bail!("a resend with a padded request id was accepted");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("\" t-3 \" starts or ends with white space"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

/// Checks that a resend the mail server defers ends with exit 1, and that its output names
/// when the orchestrator tries again and the request id that shows the result later.
async fn resend_deferred_output_names_retry(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .on_rcpt(
            "copy@elsewhere.example",
            Action::reply(451, "4.3.0 try again later"),
        )
        .start()
        .await?;
    let system = system_with_invoice_and_smtp(database, smtp).await?;
    let args = [
        "resend",
        "INV-1",
        "--to",
        "copy@elsewhere.example",
        "--reason",
        "copy",
        "--request-id",
        "ticket-9",
    ];
    let output = system.cli(&args).await?;
    assert_eq!(
        output.code,
        std::process::ExitCode::from(1),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains(" deferred "), "{}", output.stdout);
    assert!(
        output.stdout.contains("the orchestrator tries again at 20"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("    requested by "),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains(" with request id ticket-9: copy"),
        "{}",
        output.stdout
    );
    system.stop().await
}
