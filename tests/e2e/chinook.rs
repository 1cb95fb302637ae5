//! The Chinook export end to end: import, batch over SMTP, log, second batch, resend, preview.

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use invoicer_e2e::{CHINOOK, System, WHOLE_SAMPLE, parse_message, pdf_text, sha256_hex};
use invoicer_proto::audit_log::v1 as audit;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;
use serde_json::Value;

const CHINOOK_INVOICES: usize = 412;

on_both_databases!(chinook_end_to_end);

/// Invoice number to total, read from the export itself.
fn expected_totals() -> Result<HashMap<String, String>> {
    let export: Value = serde_json::from_str(&std::fs::read_to_string(CHINOOK)?)?;
    let invoices = export["invoices"]
        .as_array()
        .context("export has no invoices")?;
    Ok(invoices
        .iter()
        .map(|i| {
            (
                i["number"].as_str().unwrap_or_default().to_owned(),
                i["total"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// Returns the first word of each invoice's built-in subject, in its customer's language: the
/// email reads in the language of its PDF, and languages without PDF labels (Czech, Polish and
/// others in the sample) get English.
fn expected_subject_words() -> Result<HashMap<String, &'static str>> {
    let export: Value = serde_json::from_str(&std::fs::read_to_string(CHINOOK)?)?;
    let languages: HashMap<&str, &str> = export["customers"]
        .as_array()
        .context("export has no customers")?
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap_or_default(),
                c["language"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let invoices = export["invoices"]
        .as_array()
        .context("export has no invoices")?;
    invoices
        .iter()
        .map(|i| {
            let customer = i["customer"].as_str().unwrap_or_default();
            let language = languages
                .get(customer)
                .with_context(|| format!("customer {customer} is not in the export"))?;
            let word = match *language {
                "de" => "Rechnung",
                "fr" => "Facture",
                "es" => "Factura",
                "pt" => "Fatura",
                "nl" => "Factuur",
                _ => "Invoice",
            };
            Ok((i["number"].as_str().unwrap_or_default().to_owned(), word))
        })
        .collect()
}

async fn chinook_end_to_end(database: TestDatabase) -> Result<()> {
    let smtp = TestSmtpServer::builder().smtputf8(true).start().await?;
    let system = System::start(database, smtp).await?;

    let import = system.cli(&["import", CHINOOK, "--json"]).await?;
    let counts = &import.json_lines()?[0];
    assert_eq!(counts["customers"]["created"], 59, "{}", import.stdout);
    assert_eq!(counts["invoices"]["created"], 412, "{}", import.stdout);
    assert_eq!(counts["invoices"]["rejected"], 0, "{}", import.stdout);

    let batch = system
        .cli(&["batch", "run", "--lookback", WHOLE_SAMPLE, "--json"])
        .await?;
    let lines = batch.json_lines()?;
    let (summary, listed) = lines.split_last().context("batch printed nothing")?;
    assert!(
        listed.is_empty(),
        "batch run listed invoices that were sent without a remark: {}",
        batch.stdout
    );
    assert_eq!(summary["eligible"], 412);
    assert_eq!(summary["sent"], 412);

    let batch_id = summary["batch"]
        .as_str()
        .context("summary without batch id")?;
    let status = system.cli(&["batch", "status", batch_id, "--json"]).await?;
    let lines = status.json_lines()?;
    let (summary, invoices) = lines.split_last().context("batch status printed nothing")?;
    assert_eq!(invoices.len(), CHINOOK_INVOICES);
    assert!(
        invoices.iter().all(|i| i["outcome"] == "sent"),
        "not all sent: {}",
        status.stdout
    );
    assert_eq!(summary["eligible"], 412);
    assert_eq!(summary["sent"], 412);
    for key in ["invoice", "outcome", "to", "cc", "bcc", "reason"] {
        assert!(
            invoices[0].get(key).is_some(),
            "batch JSON lacks {key}: {}",
            invoices[0]
        );
    }

    let messages = system.wait_for_messages(CHINOOK_INVOICES).await?;
    let entries = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert_eq!(entries.len(), CHINOOK_INVOICES);
    check_messages_against_log(&system, &messages, &entries)?;

    second_batch_sends_nothing(&system).await?;
    resend_and_preview(&system, &entries).await?;
    system.stop().await
}

fn check_messages_against_log(
    system: &System,
    messages: &[invoicer_test_smtp::ReceivedMessage],
    entries: &[audit::Entry],
) -> Result<()> {
    let totals = expected_totals()?;
    let subject_words = expected_subject_words()?;
    let by_message_id: HashMap<&str, &audit::Entry> =
        entries.iter().map(|e| (e.message_id.as_str(), e)).collect();
    let folder = system.file("pdf");
    std::fs::create_dir_all(&folder)?;
    let mut invoices_seen = std::collections::HashSet::new();
    for message in messages {
        let parsed = parse_message(message)?;
        let entry = by_message_id
            .get(parsed.message_id.as_str())
            .with_context(|| format!("message {} has no log entry", parsed.message_id))?;
        let number = entry.invoice_number.as_str();
        ensure!(
            invoices_seen.insert(number.to_owned()),
            "invoice {number} was sent twice"
        );
        assert!(!parsed.has_bcc_header, "{number}: Bcc header present");
        assert_eq!(parsed.attachment_name, format!("{number}.pdf"));
        assert_eq!(
            sha256_hex(&parsed.attachment),
            entry.attachment_sha256,
            "{number}: PDF differs from the logged hash"
        );
        assert_eq!(parsed.attachment.len() as u64, entry.attachment_size);
        let logged_to: Vec<String> = entry.to.iter().map(|m| m.address.clone()).collect();
        assert_eq!(
            parsed.to, logged_to,
            "{number}: To header differs from the log"
        );
        assert_eq!(
            parsed.envelope_to.len(),
            entry.to.len() + entry.cc.len() + entry.bcc.len()
        );
        assert_eq!(
            parsed.subject.split(' ').take(2).collect::<Vec<_>>(),
            [subject_words[number], number],
            "{number}: subject {:?}",
            parsed.subject
        );
        assert!(
            entry.server_reply.starts_with("250"),
            "{number}: server reply {:?}",
            entry.server_reply
        );

        let text = pdf_text(&parsed.attachment, &folder)?;
        assert!(text.contains(number), "{number}: PDF text lacks the number");
        let total = &totals[number];
        let german_total = total.replace('.', ",");
        assert!(
            text.contains(total.as_str()) || text.contains(&german_total),
            "{number}: PDF text lacks the total {total}"
        );
    }
    assert_eq!(invoices_seen.len(), CHINOOK_INVOICES);
    Ok(())
}

async fn second_batch_sends_nothing(system: &System) -> Result<()> {
    let again = system
        .cli(&["batch", "run", "--lookback", WHOLE_SAMPLE, "--json"])
        .await?;
    let lines = again.json_lines()?;
    assert_eq!(
        lines.len(),
        1,
        "second batch listed invoices: {}",
        again.stdout
    );
    assert_eq!(lines[0]["eligible"], 0);
    assert_eq!(lines[0]["sent"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(system.smtp.messages().len(), CHINOOK_INVOICES);
    Ok(())
}

async fn resend_and_preview(system: &System, entries: &[audit::Entry]) -> Result<()> {
    let first = entries
        .iter()
        .find(|e| e.invoice_number == "CH-2021-0001")
        .context("CH-2021-0001 not logged")?;
    let args = [
        "resend",
        "CH-2021-0001",
        "--to",
        "override@elsewhere.example",
        "--reason",
        "customer asked for a copy",
        "--request-id",
        "req-1",
        "--json",
    ];
    let resent = system.cli(&args).await?;
    let delivery = &resent.json_lines()?[0];
    assert_eq!(delivery["outcome"], "sent", "{}", resent.stdout);
    assert_eq!(delivery["replayed"], false);
    assert_eq!(delivery["request_id"], "req-1");
    assert_eq!(delivery["resend_reason"], "customer asked for a copy");
    assert!(
        delivery["actor"]
            .as_str()
            .is_some_and(|actor| !actor.is_empty()),
        "{}",
        resent.stdout
    );

    let messages = system.wait_for_messages(CHINOOK_INVOICES + 1).await?;
    let parsed = parse_message(messages.last().context("no resent message")?)?;
    assert_eq!(parsed.envelope_to, ["override@elsewhere.example"]);
    assert_eq!(parsed.to, ["override@elsewhere.example"]);
    assert!(parsed.cc.is_empty());
    assert_eq!(
        sha256_hex(&parsed.attachment),
        first.attachment_sha256,
        "resend did not reuse the frozen PDF"
    );

    let replay = system.cli(&args).await?;
    assert_eq!(
        replay.json_lines()?[0]["replayed"],
        true,
        "{}",
        replay.stdout
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        system.smtp.messages().len(),
        CHINOOK_INVOICES + 1,
        "a repeated request id sent again"
    );

    let log = system
        .cli(&["log", "--invoice", "CH-2021-0001", "--json"])
        .await?;
    let lines = log.json_lines()?;
    assert_eq!(lines.len(), 2, "{}", log.stdout);
    assert_eq!(lines[0]["trigger"], "resend");
    assert_eq!(
        lines[0]["to"],
        serde_json::json!(["override@elsewhere.example"])
    );
    assert_eq!(lines[1]["trigger"], "batch");
    for key in [
        "invoice",
        "trigger",
        "outcome",
        "at",
        "to",
        "cc",
        "bcc",
        "message_id",
        "pdf_sha256",
    ] {
        assert!(lines[0].get(key).is_some(), "log JSON lacks {key}");
    }

    // The recipient filter takes an address with a display name, as the log prints it.
    let by_recipient = system
        .cli(&[
            "log",
            "--recipient",
            "Override Desk <Override@elsewhere.example>",
            "--json",
        ])
        .await?;
    let lines = by_recipient.json_lines()?;
    assert_eq!(lines.len(), 1, "{}", by_recipient.stdout);
    assert_eq!(lines[0]["invoice"], "CH-2021-0001");

    let output = system.file("preview.pdf");
    let preview = system
        .cli(&[
            "preview",
            "CH-2021-0001",
            "-o",
            output.to_str().context("path")?,
        ])
        .await?;
    assert!(preview.stdout.contains("wrote"), "{}", preview.stdout);
    let pdf = std::fs::read(&output)?;
    assert!(pdf.starts_with(b"%PDF"), "preview is not a PDF");
    assert_eq!(
        sha256_hex(&pdf),
        first.attachment_sha256,
        "preview differs from the frozen PDF"
    );

    // A revision after the latest does not exist, and the error names it, as resend's does.
    let missing = system
        .orchestrator()?
        .preview_invoice(invoicer_proto::orchestrator::v1::PreviewInvoiceRequest {
            invoice_number: "CH-2021-0001".to_owned(),
            revision: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(
        missing
            .message()
            .contains("invoice CH-2021-0001 has no revision 5; the latest is 1"),
        "{}",
        missing.message()
    );
    Ok(())
}
