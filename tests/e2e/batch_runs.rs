//! Batch triggers: concurrent runs, a repeated scheduled trigger, and the catch-up of a missed
//! batch after downtime.

use std::time::Duration;

use anyhow::{Context, Result};
use invoicer_e2e::{System, parse_message};
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Action, Stage, TestSmtpServer};

use crate::data::{contact, customer, export, invoice};
use crate::triggers::{create_trigger, orchestrator_database, reject_writes};

on_both_databases!(
    concurrent_triggers_send_once,
    repeated_scheduled_trigger_sends_nothing,
    replayed_batch_exits_zero,
    missed_batch_caught_up_at_start,
    watch_batch_streams_progress,
    future_business_date_rejected,
    abandoned_run_still_completes,
    batch_deliveries_paged,
    chunked_batch_sends_each_once,
    failed_batch_finishes_deliveries_in_flight,
    failed_planning_defers_its_deliveries,
    stranded_delivery_sent_without_restart,
    unattempted_claim_sent_without_restart,
    outcome_write_tried_again
);

fn three_invoices() -> String {
    export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![
            invoice("INV-1", "C-1", "10.00"),
            invoice("INV-2", "C-1", "20.00"),
            invoice("INV-3", "C-1", "30.00"),
        ],
    )
}

/// Yesterday's date: its scheduled batch (02:00 UTC by default) is always in the past.
fn yesterday() -> String {
    (chrono::Utc::now() - chrono::Duration::days(1))
        .date_naive()
        .to_string()
}

/// Three invoices issued three days ago, so yesterday's scheduled batch includes them.
fn three_older_invoices() -> String {
    let mut document: serde_json::Value =
        serde_json::from_str(&three_invoices()).unwrap_or_default();
    let issued = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    for invoice in document["invoices"].as_array_mut().into_iter().flatten() {
        invoice["issued_at"] = serde_json::json!(issued);
    }
    document.to_string()
}

/// Starts the system with three invoices imported and an SMTP server that waits `delay`
/// before each end-of-data reply, so that a batch keeps running for a while.
async fn slow_system(database: TestDatabase, delay: Duration) -> Result<System> {
    let smtp = TestSmtpServer::builder()
        .delay(Stage::DataEnd, delay)
        .start()
        .await?;
    let system = System::start(database, smtp).await?;
    system.import_text("a.json", &three_invoices()).await?;
    Ok(system)
}

async fn concurrent_triggers_send_once(database: TestDatabase) -> Result<()> {
    // Slow replies keep the first batch running while the second trigger arrives.
    let system = slow_system(database, Duration::from_millis(300)).await?;

    let (first, second) = tokio::join!(system.run_batch("30d"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        system.run_batch("30d").await
    });
    let first = first?;
    let error = second
        .unwrap_err()
        .downcast::<tonic::Status>()
        .context("second trigger failed otherwise")?;
    assert_eq!(error.code(), tonic::Code::Aborted);
    assert!(error.message().contains(&first.id), "{}", error.message());
    assert_eq!(first.counts.unwrap_or_default().sent, 3);

    let again = system.run_batch("30d").await?;
    assert_eq!(again.counts.unwrap_or_default().eligible, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.smtp.messages().len(), 3, "an invoice went out twice");
    system.stop().await
}

async fn repeated_scheduled_trigger_sends_nothing(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    system
        .import_text("a.json", &three_older_invoices())
        .await?;
    let date = yesterday();

    let first = system
        .cli(&["batch", "run", "--business-date", &date, "--json"])
        .await?;
    let first_summary = first.json_lines()?.pop().context("no output")?;
    assert_eq!(first_summary["sent"], 3, "{}", first.stdout);
    assert_eq!(first.code, std::process::ExitCode::SUCCESS);
    assert_eq!(first_summary["business_date"], date.as_str());

    let second = system
        .cli(&["batch", "run", "--business-date", &date, "--json"])
        .await?;
    let second_summary = second.json_lines()?.pop().context("no output")?;
    assert_eq!(
        second_summary["batch"], first_summary["batch"],
        "a second batch was opened for {date}"
    );
    assert_eq!(first_summary["replayed"], false);
    assert_eq!(second_summary["replayed"], true);

    // A dry run of that date shows the batch that ran, not a plan that a real run would skip.
    let dry = system
        .cli(&["batch", "run", "--business-date", &date, "--dry-run"])
        .await?;
    assert!(
        dry.stdout.contains(&format!(
            "the scheduled batch of {date} ran already; nothing was sent now"
        )),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("sent 3"), "{}", dry.stdout);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.smtp.messages().len(), 3);

    let listed = system.cli(&["batch", "list", "--json"]).await?;
    assert_eq!(listed.json_lines()?.len(), 1, "{}", listed.stdout);
    system.stop().await
}

/// The first run of a scheduled batch whose invoices failed exits 1 with the resend hint. A
/// replay of it exits 0 without the hint, because a resend may have sent them since.
async fn replayed_batch_exits_zero(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reply_at_data_end(554, "5.7.1 rejected by policy")
        .start()
        .await?;
    let system = System::start(database, smtp).await?;
    system
        .import_text("a.json", &three_older_invoices())
        .await?;
    let date = yesterday();
    let hint = "3 invoices failed and will not be tried again";

    let first = system
        .cli(&["batch", "run", "--business-date", &date])
        .await?;
    assert_eq!(
        first.code,
        std::process::ExitCode::from(1),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains(hint), "{}", first.stdout);

    let replay = system
        .cli(&["batch", "run", "--business-date", &date])
        .await?;
    assert!(replay.stdout.contains("failed 3"), "{}", replay.stdout);
    assert_eq!(
        replay.code,
        std::process::ExitCode::SUCCESS,
        "{}",
        replay.stdout
    );
    assert!(!replay.stdout.contains(hint), "{}", replay.stdout);
    system.stop().await
}

async fn missed_batch_caught_up_at_start(database: TestDatabase) -> Result<()> {
    let mut system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    system.import_text("a.json", &three_invoices()).await?;

    // A scheduled batch ran three days ago, before these invoices were issued.
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3))
        .date_naive()
        .to_string();
    let old = system
        .cli(&["batch", "run", "--business-date", &three_days_ago, "--json"])
        .await?;
    assert_eq!(old.json_lines()?.pop().context("no output")?["eligible"], 0);

    // The process was down since; it starts with the schedule on and catch-up enabled.
    system
        .restart_with(|config| {
            config.batch.schedule.enabled = true;
            config.batch.schedule.catch_up = true;
            config.batch.schedule.cron = "0 2 * * *".to_owned();
        })
        .await?;
    let messages = system.wait_for_messages(3).await?;
    assert_eq!(messages.len(), 3);

    let batches = finished_batches(&system).await?;
    assert_eq!(batches.len(), 2, "catch-up ran more than once: {batches:?}");
    let caught_up = &batches[0];
    assert_eq!(caught_up.trigger, i32::from(pb::BatchTrigger::Schedule));
    assert_eq!(caught_up.counts.unwrap_or_default().sent, 3);
    assert!(
        caught_up.business_date > three_days_ago,
        "{}",
        caught_up.business_date
    );
    system.stop().await
}

/// Waits until no batch is running and returns the batches, newest first.
async fn finished_batches(system: &System) -> Result<Vec<pb::Batch>> {
    let running = i32::from(pb::BatchStatus::Running);
    for _ in 0..100 {
        let request = pb::ListBatchesRequest::default();
        let batches = system
            .orchestrator()?
            .list_batches(request)
            .await?
            .into_inner()
            .batches;
        if batches.iter().all(|b| b.status != running) {
            return Ok(batches);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("a batch was still running after 10 s")
}

async fn watch_batch_streams_progress(database: TestDatabase) -> Result<()> {
    let system = slow_system(database, Duration::from_millis(200)).await?;

    let run = system.run_batch("30d");
    let watch = async {
        // The batch opens within a moment; find it and follow it to its end.
        let batch_id = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let request = pb::ListBatchesRequest::default();
            let batches = system
                .orchestrator()?
                .list_batches(request)
                .await?
                .into_inner()
                .batches;
            if let Some(batch) = batches.into_iter().next() {
                break batch.id;
            }
        };
        let request = pb::WatchBatchRequest { batch_id };
        let mut stream = system
            .orchestrator()?
            .watch_batch(request)
            .await?
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.message().await? {
            events.push(event);
        }
        Ok::<_, anyhow::Error>(events)
    };
    let (batch, events) = tokio::join!(run, watch);
    let (batch, events) = (batch?, events?);

    let last = events.last().context("WatchBatch sent nothing")?;
    assert_eq!(last.batch_id, batch.id);
    assert_eq!(last.status, i32::from(pb::BatchStatus::Completed));
    assert_eq!(last.total, 3);
    assert_eq!(last.done, 3);
    assert_eq!(last.counts.unwrap_or_default().sent, 3);
    let with_delivery = events.iter().filter(|e| e.delivery.is_some()).count();
    assert!(
        with_delivery >= 1,
        "no per-delivery event among {} events",
        events.len()
    );
    system.stop().await
}

async fn future_business_date_rejected(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let next_week = (chrono::Utc::now() + chrono::Duration::days(7))
        .date_naive()
        .to_string();
    let request = pb::RunBatchRequest {
        business_date: next_week.clone(),
        ..Default::default()
    };
    let error = system.orchestrator()?.run_batch(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains(&next_week), "{}", error.message());
    let cutoff = pb::RunBatchRequest {
        cutoff: "2099-01-01T00:00:00Z".to_owned(),
        ..Default::default()
    };
    let error = system.orchestrator()?.run_batch(cutoff).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("future"), "{}", error.message());
    let batches = system
        .orchestrator()?
        .list_batches(pb::ListBatchesRequest::default())
        .await?
        .into_inner()
        .batches;
    assert!(batches.is_empty(), "a rejected trigger stored a batch");
    system.stop().await
}

/// Checks that a client that stops waiting for RunBatch (its timeout, Ctrl-C) does not stop
/// the batch.
async fn abandoned_run_still_completes(database: TestDatabase) -> Result<()> {
    let system = slow_system(database, Duration::from_millis(300)).await?;

    let abandoned = tokio::time::timeout(Duration::from_millis(250), system.run_batch("30d")).await;
    assert!(
        abandoned.is_err(),
        "the batch ended before the client gave up"
    );

    let batches = finished_batches(&system).await?;
    let batch = batches.first().context("no batch was opened")?;
    assert_eq!(batch.status, i32::from(pb::BatchStatus::Completed));
    assert_eq!(batch.counts.unwrap_or_default().sent, 3);
    assert_eq!(system.smtp.messages().len(), 3);

    // Nothing is left marked running, so the next manual batch is accepted.
    let again = system.run_batch("30d").await?;
    assert_eq!(again.counts.unwrap_or_default().eligible, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.smtp.messages().len(), 3, "an invoice went out twice");
    system.stop().await
}

/// RunBatch lists only the delivery that needs attention; GetBatch pages through all of them,
/// or through those that need attention, and rejects a page token it did not issue.
async fn batch_deliveries_paged(database: TestDatabase) -> Result<()> {
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let document = export(
        vec![
            customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
            customer("C-2", vec![]),
        ],
        vec![
            invoice("INV-1", "C-1", "10.00"),
            invoice("INV-2", "C-1", "20.00"),
            invoice("INV-3", "C-1", "30.00"),
            invoice("INV-4", "C-2", "40.00"),
        ],
    );
    system.import_text("a.json", &document).await?;

    let mut client = system.orchestrator()?;
    let request = pb::RunBatchRequest {
        lookback: "30d".to_owned(),
        ..Default::default()
    };
    let response = client.run_batch(request).await?.into_inner();
    assert!(response.next_page_token.is_empty());
    let batch = response.batch.context("RunBatch returned no batch")?;
    let counts = batch.counts.unwrap_or_default();
    assert_eq!((counts.eligible, counts.sent, counts.skipped), (4, 3, 1));
    let listed: Vec<&str> = batch
        .deliveries
        .iter()
        .map(|d| d.invoice_number.as_str())
        .collect();
    assert_eq!(listed, ["INV-4"]);

    for (attention_only, expected) in [
        (false, vec!["INV-1", "INV-2", "INV-3", "INV-4"]),
        (true, vec!["INV-4"]),
    ] {
        let mut request = pb::GetBatchRequest {
            id: batch.id.clone(),
            page_size: 1,
            page_token: String::new(),
            attention_only,
        };
        let mut numbers = Vec::new();
        loop {
            let page = client.get_batch(request.clone()).await?.into_inner();
            let page_batch = page.batch.context("GetBatch returned no batch")?;
            assert_eq!(
                page_batch.counts, batch.counts,
                "counts differ between pages"
            );
            assert!(
                page_batch.deliveries.len() <= 1,
                "{:?}",
                page_batch.deliveries
            );
            numbers.extend(page_batch.deliveries.into_iter().map(|d| d.invoice_number));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }
        numbers.sort();
        assert_eq!(numbers, expected, "attention_only {attention_only}");
    }

    let request = pb::GetBatchRequest {
        id: batch.id.clone(),
        page_token: "page-two".to_owned(),
        ..Default::default()
    };
    let error = client.get_batch(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(error.message().contains("page-two"), "{}", error.message());

    let status = system
        .cli(&["batch", "status", &batch.id, "--attention-only", "--json"])
        .await?;
    let lines = status.json_lines()?;
    let (summary, invoices) = lines.split_last().context("batch status printed nothing")?;
    assert_eq!(invoices.len(), 1, "{}", status.stdout);
    assert_eq!(invoices[0]["invoice"], "INV-4");
    assert_eq!(summary["eligible"], 4);
    system.stop().await
}

/// Returns the invoice numbers of the messages the SMTP server accepted, sorted.
fn sent_numbers(system: &System) -> Result<Vec<String>> {
    let mut numbers = Vec::new();
    for message in system.smtp.messages() {
        let key = parse_message(&message)?.delivery_key;
        numbers.push(key.split('/').next().unwrap_or_default().to_owned());
    }
    numbers.sort();
    Ok(numbers)
}

/// Runs batches of several planning chunks: the next chunk is planned while one is delivered, and
/// every invoice is still counted once, sent at most once and listed when not sent.
async fn chunked_batch_sends_each_once(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reject_rcpt("kim@buyer.example", 452, "4.2.2 mailbox full")
        .start()
        .await?;
    let system = System::start_with(database, smtp, |config| {
        config.batch.plan_chunk = 3;
        config.batch.concurrency = 2;
    })
    .await?;
    let customers = || {
        vec![
            customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
            customer("C-2", vec![contact("Kim", "kim@buyer.example", "to")]),
            customer("C-3", vec![]),
        ]
    };
    let numbered = |range: std::ops::RangeInclusive<u32>| {
        range
            .map(|n| invoice(&format!("INV-{n:02}"), "C-1", "10.00"))
            .collect::<Vec<_>>()
    };
    let mut first_invoices = numbered(1..=10);
    first_invoices.insert(4, invoice("INV-90", "C-2", "90.00"));
    first_invoices.insert(8, invoice("INV-91", "C-3", "91.00"));
    system
        .import_text("a.json", &export(customers(), first_invoices))
        .await?;

    let first = system.run_batch("30d").await?;
    let counts = first.counts.unwrap_or_default();
    assert_eq!(
        (
            counts.eligible,
            counts.sent,
            counts.deferred,
            counts.skipped
        ),
        (12, 10, 1, 1),
        "{counts:?}"
    );
    let mut listed: Vec<&str> = first
        .deliveries
        .iter()
        .map(|d| d.invoice_number.as_str())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["INV-90", "INV-91"]);
    let expected: Vec<String> = (1..=10).map(|n| format!("INV-{n:02}")).collect();
    assert_eq!(sent_numbers(&system)?, expected);

    // The deferred invoice waits for its retry an hour ahead, the one without contacts is
    // skipped again, and the new ones go out.
    system
        .import_text("b.json", &export(customers(), numbered(11..=17)))
        .await?;
    let second = system.run_batch("30d").await?;
    let counts = second.counts.unwrap_or_default();
    assert_eq!(
        (
            counts.eligible,
            counts.sent,
            counts.deferred,
            counts.skipped
        ),
        (9, 7, 1, 1),
        "{counts:?}"
    );
    let expected: Vec<String> = (1..=17).map(|n| format!("INV-{n:02}")).collect();
    assert_eq!(
        sent_numbers(&system)?,
        expected,
        "an invoice went out twice"
    );
    system.stop().await
}

/// Fails the orchestrator's storage for one invoice in the middle of a batch of several
/// planning chunks. The batch fails, the deliveries in flight still end with their outcome
/// instead of staying `submitting`, the ones planned but not started are deferred with a
/// reason, and no invoice goes out twice. Then fails it for one of the deferred ones: the
/// retry round still sends all the others.
async fn failed_batch_finishes_deliveries_in_flight(database: TestDatabase) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};

    // INV-04 waits in its send while INV-05, started after INV-03, fails the batch.
    let smtp = TestSmtpServer::builder()
        .on_rcpt(
            "slow@buyer.example",
            Action::delay(Duration::from_millis(1500)),
        )
        .start()
        .await?;
    let system = System::start_with(database, smtp, |config| {
        config.batch.plan_chunk = 3;
        config.batch.concurrency = 2;
    })
    .await?;
    let invoices = (1..=12)
        .map(|n| {
            let code = if n == 4 { "C-2" } else { "C-1" };
            invoice(&format!("INV-{n:02}"), code, "10.00")
        })
        .collect();
    let customers = vec![
        customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
        customer("C-2", vec![contact("Sam", "slow@buyer.example", "to")]),
    ];
    system
        .import_text("a.json", &export(customers, invoices))
        .await?;

    let db = orchestrator_database(&system).await?;
    reject_updates(&db, "INV-05", "TRUE").await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.status, i32::from(pb::BatchStatus::Failed));
    assert!(
        batch.error.contains("rejected by the test"),
        "{}",
        batch.error
    );
    let counts = batch.counts.unwrap_or_default();
    assert_eq!(counts.eligible, 12, "{counts:?}");
    assert_eq!(
        counts.sent + counts.deferred + counts.unknown,
        12,
        "{counts:?}"
    );
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT invoice_number, state, reason FROM or_deliveries ORDER BY invoice_number",
        ))
        .await?;
    let sent = sent_numbers(&system)?;
    let mut given_back = 0;
    for row in &rows {
        let number: String = row.try_get("", "invoice_number")?;
        let state: String = row.try_get("", "state")?;
        let reason: String = row.try_get("", "reason")?;
        assert_ne!(state, "submitting", "{number} was left in its send");
        assert_eq!(
            sent.contains(&number),
            state == "sent",
            "{number}: {state}, messages {sent:?}"
        );
        if number == "INV-05" {
            continue;
        }
        if reason.starts_with("not attempted: the batch failed") {
            given_back += 1;
        }
        assert!(
            ["sent", "deferred", "pending"].contains(&state.as_str()),
            "{number}: {state} ({reason})"
        );
    }
    assert!(
        given_back > 0,
        "no planned delivery was given back: {rows:?}"
    );

    let mut distinct = sent.clone();
    distinct.dedup();
    assert_eq!(sent, distinct, "an invoice went out twice");
    assert!(!sent.contains(&"INV-05".to_owned()), "{sent:?}");
    assert!(
        sent.contains(&"INV-04".to_owned()),
        "the delivery in its send when the batch failed was not finished: {sent:?}"
    );

    // The retry round claims the deferred deliveries, due at once, and INV-07's first write
    // after its claim fails.
    reject_updates(&db, "INV-07", "NEW.state <> 'pending'").await?;
    let deferred: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let number: String = row.try_get("", "invoice_number").ok()?;
            let state: String = row.try_get("", "state").ok()?;
            (state == "deferred" && number != "INV-07").then_some(number)
        })
        .collect();
    assert!(!deferred.is_empty(), "{rows:?}");
    let inv_07_deferred = rows.iter().any(|row| {
        row.try_get::<String>("", "invoice_number").ok().as_deref() == Some("INV-07")
            && row.try_get::<String>("", "state").ok().as_deref() == Some("deferred")
    });
    assert!(inv_07_deferred, "INV-07 was not given back: {rows:?}");
    let expected = sent.len() + deferred.len();
    system.wait_for_messages(expected).await?;
    let mut retried = sent_numbers(&system)?;
    retried.retain(|number| !sent.contains(number));
    assert_eq!(retried, deferred, "the retry round left some out");
    db.close().await?;
    system.stop().await
}

/// Adds a trigger to the orchestrator's database that rejects every update of invoice
/// `number`'s deliveries for which `condition`, an SQL expression on `NEW`, is true.
async fn reject_updates(
    db: &sea_orm::DatabaseConnection,
    number: &str,
    condition: &str,
) -> Result<()> {
    let name = format!("reject_{}", number.to_lowercase().replace('-', "_"));
    let when = format!("NEW.invoice_number = '{number}' AND ({condition})");
    reject_writes(db, &name, "BEFORE UPDATE ON or_deliveries", &when).await
}

/// Fails a batch while it plans a chunk, after the chunk's new deliveries were inserted: they
/// are deferred, due at once and with the reason that the batch failed.
async fn failed_planning_defers_its_deliveries(database: TestDatabase) -> Result<()> {
    use sea_orm::{ConnectionTrait, Statement};

    let smtp = TestSmtpServer::builder()
        .reject_rcpt("full@buyer.example", 452, "4.2.2 mailbox full")
        .start()
        .await?;
    let system = System::start(database, smtp).await?;
    let customers = vec![
        customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
        customer("C-2", vec![contact("Kim", "full@buyer.example", "to")]),
    ];
    let waiting = vec![invoice("INV-W", "C-2", "10.00")];
    system
        .import_text("a.json", &export(customers.clone(), waiting))
        .await?;
    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().deferred, 1);

    // The next batch finds INV-W waiting for its retry, and storing its batch item fails.
    let db = orchestrator_database(&system).await?;
    reject_writes(
        &db,
        "reject_item",
        "BEFORE INSERT ON or_batch_items",
        "NEW.invoice_number = 'INV-W'",
    )
    .await?;
    let new = vec![
        invoice("INV-1", "C-1", "10.00"),
        invoice("INV-2", "C-1", "20.00"),
    ];
    system
        .import_text("b.json", &export(customers, new))
        .await?;

    let second = system.run_batch("30d").await?;
    assert_eq!(second.status, i32::from(pb::BatchStatus::Failed));
    assert!(
        second.error.contains("rejected by the test"),
        "{}",
        second.error
    );
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT invoice_number, state, reason FROM or_deliveries \
             WHERE invoice_number IN ('INV-1', 'INV-2') ORDER BY invoice_number",
        ))
        .await?;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let number: String = row.try_get("", "invoice_number")?;
        let state: String = row.try_get("", "state")?;
        let reason: String = row.try_get("", "reason")?;
        assert_eq!(state, "deferred", "{number}: {reason}");
        assert!(
            reason.starts_with("not attempted: the batch failed"),
            "{number}: {reason}"
        );
    }
    assert!(sent_numbers(&system)?.is_empty());
    system.stop().await
}

/// Fails the batch's `submitting` write of INV-2, so its delivery stays `pending` and leased
/// to the running process with no task working on it. The retry loop defers it, counting the
/// failed attempt, and sends it with the next one, without a restart and once. The trigger
/// rejects only the first attempt, whose delivery has no retry time yet.
async fn stranded_delivery_sent_without_restart(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder().start().await?;
    let system = System::start_with(database, smtp, |config| {
        config.batch.retry_first_delay = "1s".to_owned();
    })
    .await?;
    system.import_text("a.json", &three_invoices()).await?;
    let db = orchestrator_database(&system).await?;
    reject_updates(
        &db,
        "INV-2",
        "NEW.state = 'submitting' AND NEW.next_attempt_at IS NULL",
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.status, i32::from(pb::BatchStatus::Failed));
    assert!(
        batch.error.contains("rejected by the test"),
        "{}",
        batch.error
    );
    system.wait_for_messages(3).await?;
    assert_eq!(sent_numbers(&system)?, ["INV-1", "INV-2", "INV-3"]);

    // The message arrives before the orchestrator stores its outcome.
    let stored = wait_for_sent(&db, "INV-2").await?;
    assert_eq!(stored, ("sent".to_owned(), 2));
    assert_eq!(sent_numbers(&system)?, ["INV-1", "INV-2", "INV-3"]);
    db.close().await?;
    system.stop().await
}

/// Fails a batch while it plans, and fails giving INV-1 back too, so INV-1 stays claimed by
/// the running process with no attempt made. The retry loop sends it without a restart, and
/// counts only that one attempt.
async fn unattempted_claim_sent_without_restart(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder()
        .reject_rcpt("full@buyer.example", 452, "4.2.2 mailbox full")
        .start()
        .await?;
    let system = System::start(database, smtp).await?;
    let customers = vec![
        customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
        customer("C-2", vec![contact("Kim", "full@buyer.example", "to")]),
    ];
    let waiting = vec![invoice("INV-W", "C-2", "10.00")];
    system
        .import_text("a.json", &export(customers.clone(), waiting))
        .await?;
    let first = system.run_batch("30d").await?;
    assert_eq!(first.counts.unwrap_or_default().deferred, 1);

    // Storing INV-W's batch item fails the planning of the next batch, and giving INV-1 back
    // fails as well.
    let db = orchestrator_database(&system).await?;
    reject_writes(
        &db,
        "reject_item",
        "BEFORE INSERT ON or_batch_items",
        "NEW.invoice_number = 'INV-W'",
    )
    .await?;
    reject_updates(&db, "INV-1", "NEW.reason LIKE 'not attempted%'").await?;
    let new = vec![
        invoice("INV-1", "C-1", "10.00"),
        invoice("INV-2", "C-1", "20.00"),
    ];
    system
        .import_text("b.json", &export(customers, new))
        .await?;
    let second = system.run_batch("30d").await?;
    assert_eq!(second.status, i32::from(pb::BatchStatus::Failed));

    system.wait_for_messages(2).await?;
    assert_eq!(sent_numbers(&system)?, ["INV-1", "INV-2"]);
    // The message arrives before the orchestrator stores its outcome.
    let stored = wait_for_sent(&db, "INV-1").await?;
    assert_eq!(stored, ("sent".to_owned(), 1));
    db.close().await?;
    system.stop().await
}

/// Rejects the first two writes of INV-1's `sent` outcome, after its message went out. The
/// attempt writes it again, and the batch completes with INV-1 `sent` instead of failing with
/// it `submitting`. Runs on PostgreSQL only: there a sequence counts the rejected writes,
/// because a rejected write does not roll its `nextval` back, and SQLite has no such counter.
async fn outcome_write_tried_again(database: TestDatabase) -> Result<()> {
    use sea_orm::ConnectionTrait;

    if !database.is_postgres() {
        eprintln!(
            "outcome_write_tried_again skipped on SQLite: no counter there survives a rejected write"
        );
        return Ok(());
    }
    let system = System::start(database, TestSmtpServer::builder().start().await?).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;
    let db = orchestrator_database(&system).await?;
    db.execute_unprepared("CREATE SEQUENCE rejected_outcomes")
        .await?;
    create_trigger(
        &db,
        "reject_outcome_twice",
        "BEFORE UPDATE ON or_deliveries",
        "NEW.state = 'sent'",
        "IF nextval('rejected_outcomes') <= 2 THEN \
         RAISE EXCEPTION 'rejected by the test'; END IF; RETURN NEW",
        "SELECT 1",
    )
    .await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(
        batch.status,
        i32::from(pb::BatchStatus::Completed),
        "{}",
        batch.error
    );
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);
    assert_eq!(sent_numbers(&system)?, ["INV-1"]);
    db.close().await?;
    system.stop().await
}

/// Waits up to 30 s for invoice `number`'s only delivery to be stored as `sent`, and returns
/// its last stored state and attempt count.
async fn wait_for_sent(db: &sea_orm::DatabaseConnection, number: &str) -> Result<(String, i32)> {
    use sea_orm::{ConnectionTrait, Statement};

    let query =
        format!("SELECT state, attempts FROM or_deliveries WHERE invoice_number = '{number}'");
    let mut stored = (String::new(), 0);
    for _ in 0..600 {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), &query))
            .await?;
        assert_eq!(rows.len(), 1, "deliveries of {number}");
        stored = (
            rows[0].try_get("", "state")?,
            rows[0].try_get("", "attempts")?,
        );
        if stored.0 == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(stored)
}
