//! Notifiers: a customer's own rules override the default ones field by field, every change is
//! recorded, and no switch of rules sends an invoice twice.

use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use invoicer_e2e::{CliOutput, System, parse_message};
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Action, TestSmtpServer};
use serde_json::{Value, json};

on_both_databases!(
    notifier_off_skips_then_on_sends_once,
    kinds_exclude_credit_notes,
    extra_cc_and_bcc_added_without_duplicates,
    split_per_to_contact_sends_one_message_each,
    custom_subject_template_used,
    default_notifier_from_config_overridden_per_customer,
    dry_run_shows_notifier_outcomes,
    update_default_notifier_failed_precondition,
    update_unknown_customer_not_found,
    unknown_template_variable_rejected,
    template_syntax_error_rejected,
    invalid_extra_address_rejected,
    history_shows_who_when_old_new,
    history_unknown_customer_not_found,
    show_and_list_print_own_and_effective,
    own_notifier_after_send_sends_nothing,
    notifier_change_applies_to_later_chunks,
    concurrent_split_planning_sends_nothing_twice
);

use crate::data::{contact, customer, export, invoice};
use crate::triggers::{create_trigger, orchestrator_database};

async fn system(database: TestDatabase) -> Result<System> {
    System::start(database, TestSmtpServer::builder().start().await?).await
}

/// Starts a system with customer C-1 (To contact lee@buyer.example) and its invoice INV-1.
async fn system_with_invoice(database: TestDatabase) -> Result<System> {
    let system = system(database).await?;
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

/// Runs `invoicer notifier set ARGS --actor test` and checks that it succeeded.
async fn set_notifier(system: &System, args: &[&str]) -> Result<CliOutput> {
    let mut argv = vec!["notifier", "set"];
    argv.extend_from_slice(args);
    if !args.contains(&"--actor") {
        argv.extend_from_slice(&["--actor", "test"]);
    }
    let output = system.cli(&argv).await?;
    ensure!(
        output.code == ExitCode::SUCCESS,
        "notifier set failed: {}",
        output.stdout
    );
    Ok(output)
}

fn update_request(customer_code: &str, notifier: pb::Notifier) -> pb::UpdateNotifierRequest {
    pb::UpdateNotifierRequest {
        customer_code: customer_code.to_owned(),
        notifier: Some(notifier),
        actor: "test".to_owned(),
        reason: "test".to_owned(),
    }
}

fn subject_template(language: &str, subject: &str) -> pb::Notifier {
    let template = pb::MessageTemplate {
        subject: subject.to_owned(),
        ..Default::default()
    };
    pb::Notifier {
        templates: [(language.to_owned(), template)].into(),
        ..Default::default()
    }
}

fn find<'a>(batch: &'a pb::Batch, number: &str) -> Result<&'a pb::Delivery> {
    batch
        .deliveries
        .iter()
        .find(|d| d.invoice_number == number)
        .with_context(|| format!("{number} not listed in the batch"))
}

async fn notifier_off_skips_then_on_sends_once(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    set_notifier(&system, &["C-1", "--enabled", "false", "--reason", "pause"]).await?;

    let off = system.run_batch("30d").await?;
    let counts = off.counts.unwrap_or_default();
    assert_eq!(counts.eligible, 1);
    assert_eq!(counts.skipped, 1);
    assert_eq!(counts.sent, 0);
    let skipped = find(&off, "INV-1")?;
    assert!(
        skipped.reason.starts_with("notifier off"),
        "{}",
        skipped.reason
    );
    assert!(
        system.smtp.messages().is_empty(),
        "a switched-off notifier sent"
    );
    let logged = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert!(logged.is_empty(), "a skipped invoice was logged");

    set_notifier(&system, &["C-1", "--enabled", "true", "--reason", "resume"]).await?;
    let on = system.run_batch("30d").await?;
    assert_eq!(on.counts.unwrap_or_default().sent, 1);
    assert_eq!(system.wait_for_messages(1).await?.len(), 1);

    let after = system.run_batch("30d").await?;
    assert_eq!(after.counts.unwrap_or_default().eligible, 0);
    assert_eq!(system.smtp.messages().len(), 1);
    system.stop().await
}

async fn kinds_exclude_credit_notes(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut credit_note = invoice("CN-1", "C-1", "5.00");
    credit_note["kind"] = json!("credit_note");
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00"), credit_note],
    );
    system.import_text("a.json", &document).await?;
    set_notifier(
        &system,
        &["C-1", "--kinds", "invoice", "--reason", "no credit notes"],
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    let counts = batch.counts.unwrap_or_default();
    assert_eq!(counts.eligible, 2);
    assert_eq!(counts.sent, 1);
    assert_eq!(counts.skipped, 1);
    let skipped = find(&batch, "CN-1")?;
    assert_eq!(skipped.state, i32::from(pb::DeliveryState::Skipped));
    assert!(skipped.reason.contains("credit_note"), "{}", skipped.reason);
    let messages = system.wait_for_messages(1).await?;
    assert_eq!(parse_message(&messages[0])?.attachment_name, "INV-1.pdf");
    system.stop().await
}

async fn extra_cc_and_bcc_added_without_duplicates(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    set_notifier(
        &system,
        &[
            "C-1",
            "--cc",
            "AP <ap@extra.example>",
            "--cc",
            "LEE@buyer.example",
            "--bcc",
            "archive@extra.example",
            "--reason",
            "copies",
        ],
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);
    let parsed = parse_message(&system.wait_for_messages(1).await?[0])?;
    assert_eq!(parsed.to, ["lee@buyer.example"]);
    assert_eq!(
        parsed.cc,
        ["ap@extra.example"],
        "a To recipient was added again as Cc"
    );
    assert!(!parsed.has_bcc_header);
    let mut envelope = parsed.envelope_to.clone();
    envelope.sort();
    assert_eq!(
        envelope,
        [
            "ap@extra.example",
            "archive@extra.example",
            "lee@buyer.example"
        ]
    );
    system.stop().await
}

async fn split_per_to_contact_sends_one_message_each(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let contacts = vec![
        contact("Anna", "anna@buyer.example", "to"),
        contact("Ben", "ben@buyer.example", "to"),
        contact("AP", "ap@buyer.example", "cc"),
    ];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    set_notifier(
        &system,
        &["C-1", "--split", "per-to-contact", "--reason", "one each"],
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    let counts = batch.counts.unwrap_or_default();
    assert_eq!(counts.eligible, 2);
    assert_eq!(counts.sent, 2);
    let mut messages: Vec<_> = system
        .wait_for_messages(2)
        .await?
        .iter()
        .map(parse_message)
        .collect::<Result<_>>()?;
    messages.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(messages[0].to, ["anna@buyer.example"]);
    assert_eq!(messages[1].to, ["ben@buyer.example"]);
    for message in &messages {
        assert_eq!(message.cc, ["ap@buyer.example"]);
        assert_eq!(message.attachment_name, "INV-1.pdf");
    }
    assert_eq!(
        messages[0].delivery_key,
        "INV-1/r1/to:anna@buyer.example/batch"
    );
    assert_eq!(
        messages[1].delivery_key,
        "INV-1/r1/to:ben@buyer.example/batch"
    );

    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().eligible, 0);
    assert_eq!(
        system.smtp.messages().len(),
        2,
        "the second batch sent again"
    );
    system.stop().await
}

async fn custom_subject_template_used(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    set_notifier(
        &system,
        &[
            "C-1",
            "--subject-template",
            "en=Your bill {{ number }} from {{ company }}",
            "--reason",
            "shorter subject",
        ],
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);
    let parsed = parse_message(&system.wait_for_messages(1).await?[0])?;
    assert_eq!(parsed.subject, "Your bill INV-1 from Seller Example GmbH");
    system.stop().await
}

async fn default_notifier_from_config_overridden_per_customer(
    database: TestDatabase,
) -> Result<()> {
    let smtp = TestSmtpServer::builder().start().await?;
    let system = System::start_with(database, smtp, |config| {
        config.notifier.kinds = vec!["invoice".to_owned()];
        config.notifier.bcc = vec!["archive@seller.example".to_owned()];
    })
    .await?;
    let mut credit_note = invoice("CN-1", "C-1", "5.00");
    credit_note["kind"] = json!("credit_note");
    let document = export(
        vec![
            customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
            customer("C-2", vec![contact("Kim", "kim@buyer.example", "to")]),
        ],
        vec![credit_note, invoice("INV-2", "C-2", "20.00")],
    );
    system.import_text("a.json", &document).await?;
    set_notifier(
        &system,
        &["C-1", "--kinds", "all", "--reason", "credit notes too"],
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 2);
    let messages: Vec<_> = system
        .wait_for_messages(2)
        .await?
        .iter()
        .map(parse_message)
        .collect::<Result<_>>()?;
    for message in &messages {
        assert!(
            message
                .envelope_to
                .contains(&"archive@seller.example".to_owned()),
            "the default Bcc was not inherited: {:?}",
            message.envelope_to
        );
    }
    system.stop().await
}

async fn dry_run_shows_notifier_outcomes(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let split_contacts = vec![
        contact("Anna", "anna@buyer.example", "to"),
        contact("Ben", "ben@buyer.example", "to"),
    ];
    let document = export(
        vec![
            customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
            customer("C-2", split_contacts),
        ],
        vec![
            invoice("INV-1", "C-1", "10.00"),
            invoice("INV-2", "C-2", "20.00"),
        ],
    );
    system.import_text("a.json", &document).await?;
    set_notifier(&system, &["C-1", "--enabled", "false", "--reason", "pause"]).await?;
    set_notifier(
        &system,
        &["C-2", "--split", "per-to-contact", "--reason", "each"],
    )
    .await?;

    let dry = system.cli(&["batch", "run", "--dry-run", "--json"]).await?;
    let lines = dry.json_lines()?;
    assert_eq!(lines.len(), 4, "{}", dry.stdout);
    let off = lines
        .iter()
        .find(|l| l["invoice"] == "INV-1")
        .context("INV-1 missing")?;
    assert_eq!(off["outcome"], "skipped");
    let reason = off["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("notifier off"), "{reason}");
    let mut split_to: Vec<Value> = lines
        .iter()
        .filter(|l| l["invoice"] == "INV-2")
        .map(|l| l["to"].clone())
        .collect();
    split_to.sort_by_key(|to| to.to_string());
    assert_eq!(
        split_to,
        [json!(["anna@buyer.example"]), json!(["ben@buyer.example"])]
    );
    assert_eq!(lines[3]["planned"], 2);
    assert_eq!(lines[3]["skipped"], 1);
    assert!(system.smtp.messages().is_empty());

    let real = system.run_batch("30d").await?;
    let counts = real.counts.unwrap_or_default();
    assert_eq!((counts.sent, counts.skipped), (2, 1));
    assert_eq!(
        find(&real, "INV-1")?.reason,
        reason,
        "dry run and real run differ"
    );
    system.stop().await
}

async fn update_default_notifier_failed_precondition(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let notifier = pb::Notifier {
        enabled: Some(false),
        ..Default::default()
    };
    let error = system
        .orchestrator()?
        .update_notifier(update_request("", notifier))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert!(
        error.message().contains("config file"),
        "{}",
        error.message()
    );
    let changes = system
        .orchestrator()?
        .list_notifier_changes(pb::ListNotifierChangesRequest::default())
        .await?
        .into_inner();
    assert!(changes.changes.is_empty());
    system.stop().await
}

async fn update_unknown_customer_not_found(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let notifier = pb::Notifier {
        enabled: Some(false),
        ..Default::default()
    };
    let error = system
        .orchestrator()?
        .update_notifier(update_request("C-404", notifier))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);
    assert!(error.message().contains("C-404"), "{}", error.message());
    let listed = system
        .orchestrator()?
        .list_notifiers(pb::ListNotifiersRequest {})
        .await?
        .into_inner();
    assert!(listed.notifiers.is_empty());
    system.stop().await
}

async fn unknown_template_variable_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let notifier = subject_template("en", "Invoice {{ invoice_no }}");
    let error = system
        .orchestrator()?
        .update_notifier(update_request("C-1", notifier))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("templates.en.subject"),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("invoice_no"),
        "{}",
        error.message()
    );
    let current = system
        .orchestrator()?
        .get_notifier(pb::GetNotifierRequest {
            customer_code: "C-1".to_owned(),
        })
        .await?
        .into_inner();
    assert!(current.own.is_none(), "a rejected notifier was stored");
    system.stop().await
}

async fn template_syntax_error_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let result = system
        .cli(&[
            "notifier",
            "set",
            "C-1",
            "--subject-template",
            "de=Rechnung {% if number %}",
            "--reason",
            "broken",
        ])
        .await;
    let error = format!(
        "{:#}",
        result.err().context("a broken template was accepted")?
    );
    assert!(error.contains("templates.de.subject"), "{error}");
    assert!(error.contains("InvalidArgument"), "{error}");
    system.stop().await
}

async fn invalid_extra_address_rejected(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let notifier = pb::Notifier {
        bcc: Some(pb::AddressList {
            addresses: vec!["archive@@seller".to_owned()],
        }),
        ..Default::default()
    };
    let error = system
        .orchestrator()?
        .update_notifier(update_request("C-1", notifier))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("archive@@seller"),
        "{}",
        error.message()
    );
    system.stop().await
}

/// Checks that a known customer without changes has an empty history, and that a mistyped
/// code is an error rather than an empty history.
async fn history_unknown_customer_not_found(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let empty = system.cli(&["notifier", "history", "C-1"]).await?.stdout;
    assert_eq!(
        empty.trim(),
        "no notifier changes recorded for customer C-1"
    );

    let error = system
        .cli(&["notifier", "history", "C-404"])
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("customer \"C-404\" not found in invoice-query"),
        "{error:#}"
    );
    system.stop().await
}

async fn history_shows_who_when_old_new(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    set_notifier(
        &system,
        &[
            "C-1",
            "--enabled",
            "false",
            "--actor",
            "alice",
            "--reason",
            "pause",
        ],
    )
    .await?;
    set_notifier(
        &system,
        &[
            "C-1",
            "--cc",
            "ap@buyer.example",
            "--actor",
            "bob",
            "--reason",
            "copy AP",
        ],
    )
    .await?;
    // Settings that are in place already, or none at all, record no change.
    let same = set_notifier(
        &system,
        &["C-1", "--enabled", "false", "--reason", "pause again"],
    )
    .await?;
    assert!(
        same.stdout.contains("no change was recorded"),
        "{}",
        same.stdout
    );
    let error = system
        .cli(&["notifier", "set", "C-1", "--reason", "nothing"])
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("nothing to change for customer C-1"),
        "{error:#}"
    );

    let text = system.cli(&["notifier", "history", "C-1"]).await?.stdout;
    let bob = text.find("C-1  by bob: copy AP").context(text.clone())?;
    let alice = text.find("C-1  by alice: pause").context(text.clone())?;
    assert!(bob < alice, "history is not newest first:\n{text}");
    assert!(text.contains("old: no notifier of its own"), "{text}");
    assert!(text.contains("cc=ap@buyer.example"), "{text}");

    let lines = system
        .cli(&["notifier", "history", "C-1", "--json"])
        .await?
        .json_lines()?;
    assert_eq!(lines.len(), 2);
    let newest = &lines[0];
    assert_eq!(newest["actor"], "bob");
    assert_eq!(newest["reason"], "copy AP");
    assert_eq!(newest["old"]["enabled"], false);
    assert_eq!(newest["old"]["cc"], Value::Null);
    assert_eq!(newest["new"]["enabled"], false);
    assert_eq!(newest["new"]["cc"], json!(["ap@buyer.example"]));
    let at = chrono::DateTime::parse_from_rfc3339(newest["at"].as_str().unwrap_or_default())?;
    assert!(at >= started, "change time {at} is before the test started");
    let oldest = &lines[1];
    assert_eq!(oldest["actor"], "alice");
    assert_eq!(oldest["old"], Value::Null);
    assert_eq!(oldest["new"]["enabled"], false);
    system.stop().await
}

async fn show_and_list_print_own_and_effective(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let before = system
        .cli(&["notifier", "show", "C-1", "--json"])
        .await?
        .json_lines()?;
    assert_eq!(before[0]["own"], Value::Null);
    assert_eq!(before[0]["effective"]["enabled"], true);

    set_notifier(&system, &["C-1", "--enabled", "false", "--reason", "pause"]).await?;
    let after = system
        .cli(&["notifier", "show", "C-1", "--json"])
        .await?
        .json_lines()?;
    let own = &after[0]["own"];
    assert_eq!(own["enabled"], false);
    assert_eq!(
        own["kinds"],
        Value::Null,
        "an unset field was stored as set"
    );
    let effective = &after[0]["effective"];
    assert_eq!(effective["enabled"], false);
    assert_eq!(effective["kinds"], json!([]));
    assert_eq!(effective["split"], "per_invoice");

    let unknown = system.cli(&["notifier", "show", "C-404"]).await;
    let error = format!(
        "{:#}",
        unknown.err().context("an unknown customer was shown")?
    );
    assert!(error.contains("C-404"), "{error}");

    let list = system
        .cli(&["notifier", "list", "--json"])
        .await?
        .json_lines()?;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["customer"], "");
    assert_eq!(list[1]["customer"], "C-1");
    assert_eq!(list[1]["updated_by"], "test");
    system.stop().await
}

async fn own_notifier_after_send_sends_nothing(database: TestDatabase) -> Result<()> {
    let system = system_with_invoice(database).await?;
    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().sent, 1);
    system.wait_for_messages(1).await?;

    set_notifier(
        &system,
        &[
            "C-1",
            "--split",
            "per-to-contact",
            "--cc",
            "ap@buyer.example",
            "--subject-template",
            "en=New {{ number }}",
            "--reason",
            "own rules",
        ],
    )
    .await?;
    let dry = system.cli(&["batch", "run", "--dry-run", "--json"]).await?;
    let lines = dry.json_lines()?;
    assert_eq!(
        lines.len(),
        1,
        "the dry run lists a sent invoice: {}",
        dry.stdout
    );
    assert_eq!(lines[0]["eligible"], 0);

    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().eligible, 0);
    assert_eq!(
        system.smtp.messages().len(),
        1,
        "the new notifier sent the invoice again"
    );
    system.stop().await
}

/// Changes a notifier while a batch runs: each delivery uses the notifier its chunk was
/// planned with, so the change applies to the chunks planned after it.
async fn notifier_change_applies_to_later_chunks(database: TestDatabase) -> Result<()> {
    // The first message waits 3 s for its RCPT reply while the notifier changes.
    let delay = std::time::Duration::from_secs(3);
    let smtp = TestSmtpServer::builder()
        .on_rcpt_first("lee@buyer.example", 1, Action::delay(delay))
        .start()
        .await?;
    // One delivery at a time, chunks of three: chunks 1 to 3 are planned before the first
    // delivery ends, and chunk 4 only after INV-03 has started.
    let system = System::start_with(database, smtp, |config| {
        config.batch.plan_chunk = 3;
        config.batch.concurrency = 1;
    })
    .await?;
    let invoices = (1..=12)
        .map(|n| invoice(&format!("INV-{n:02}"), "C-1", "10.00"))
        .collect();
    let customers = vec![customer(
        "C-1",
        vec![contact("Lee", "lee@buyer.example", "to")],
    )];
    system
        .import_text("a.json", &export(customers, invoices))
        .await?;

    let change = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !system
            .smtp
            .commands()
            .iter()
            .any(|command| command.to_ascii_uppercase().starts_with("RCPT TO"))
        {
            ensure!(
                std::time::Instant::now() < deadline,
                "the first delivery sent no RCPT TO within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        set_notifier(
            &system,
            &["C-1", "--cc", "ap@extra.example", "--reason", "copies"],
        )
        .await?;
        ensure!(
            started.elapsed() < delay,
            "notifier set took {:?}, longer than the first message's RCPT delay, so the test cannot tell which chunks were planned after it",
            started.elapsed()
        );
        Ok(())
    };
    let (batch, changed) = tokio::join!(system.run_batch("30d"), change);
    changed?;
    let batch = batch?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 12);

    let mut copied = Vec::new();
    for message in system.wait_for_messages(12).await? {
        let parsed = parse_message(&message)?;
        let number = parsed.delivery_key.split('/').next().unwrap_or_default();
        copied.push((number.to_owned(), parsed.cc == ["ap@extra.example"]));
    }
    copied.sort();
    for (number, has_copy) in &copied[..3] {
        assert!(
            !has_copy,
            "{number} was planned before the change but got its copy: {copied:?}"
        );
    }
    for (number, has_copy) in &copied[9..] {
        assert!(
            has_copy,
            "{number} was planned after the change but got no copy: {copied:?}"
        );
    }
    let first_copy = copied
        .iter()
        .position(|(_, has_copy)| *has_copy)
        .unwrap_or(copied.len());
    assert_eq!(
        first_copy % 3,
        0,
        "the change applied from within a chunk: {copied:?}"
    );
    assert!(
        copied[first_copy..].iter().all(|(_, has_copy)| *has_copy),
        "the change did not apply to every later chunk: {copied:?}"
    );
    system.stop().await
}

/// Runs a batch in which a per-To-recipient delivery of the invoice appears beside its new
/// per-invoice one, as if another replica planned it at the same time under another split.
/// The batch's delivery reads it before sending, and is skipped.
async fn concurrent_split_planning_sends_nothing_twice(database: TestDatabase) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};

    let system = system_with_invoice(database).await?;
    let db = orchestrator_database(&system).await?;
    // A copy of the batch's new delivery, stored in the same insert under a per-To key and
    // leased to another replica.
    let copy = "INSERT INTO or_deliveries (id, delivery_key, invoice_number, invoice_revision, \
         customer_code, purpose, request_id, state, to_json, cc_json, bcc_json, subject, \
         attachment_name, pdf_sha256, message_id, reason, attempts, next_attempt_at, batch_id, \
         recipients_json, server_reply, destination, actor, resend_reason, trace_id, logged, \
         created_at, updated_at, retry_since, accepted_json, lease_owner, lease_until) \
         VALUES (NEW.id || '-other', 'INV-1/r1/to:lee@buyer.example/batch', NEW.invoice_number, \
         NEW.invoice_revision, NEW.customer_code, NEW.purpose, NEW.request_id, 'pending', \
         NEW.to_json, NEW.cc_json, NEW.bcc_json, NEW.subject, NEW.attachment_name, \
         NEW.pdf_sha256, NEW.message_id, NEW.reason, NEW.attempts, NEW.next_attempt_at, NULL, \
         NEW.recipients_json, NEW.server_reply, NEW.destination, NEW.actor, NEW.resend_reason, \
         NEW.trace_id, NEW.logged, NEW.created_at, NEW.updated_at, NEW.retry_since, \
         NEW.accepted_json, 'other-replica', NEW.lease_until)";
    create_trigger(
        &db,
        "copy_per_to",
        "AFTER INSERT ON or_deliveries",
        "NEW.delivery_key = 'INV-1/r1/default/batch'",
        &format!("{copy}; RETURN NULL"),
        copy,
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    let counts = batch.counts.unwrap_or_default();
    assert_eq!(counts.sent, 0, "{counts:?}");
    assert_eq!(counts.skipped, 1, "{counts:?}");
    let delivery = find(&batch, "INV-1")?;
    assert!(
        delivery.reason.contains("sent per To recipient"),
        "{}",
        delivery.reason
    );
    assert!(system.smtp.messages().is_empty());

    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT delivery_key, state FROM or_deliveries ORDER BY delivery_key",
        ))
        .await?;
    let mut states = Vec::new();
    for row in &rows {
        let key: String = row.try_get("", "delivery_key")?;
        let state: String = row.try_get("", "state")?;
        states.push((key, state));
    }
    assert_eq!(
        states,
        [
            ("INV-1/r1/default/batch".to_owned(), "skipped".to_owned()),
            (
                "INV-1/r1/to:lee@buyer.example/batch".to_owned(),
                "pending".to_owned()
            ),
        ]
    );
    system.stop().await
}
