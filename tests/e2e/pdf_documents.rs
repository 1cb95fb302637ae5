//! The PDF through the whole chain. A non-ASCII invoice number reaches the mail client as an
//! RFC 2231 file name. An invoice that no bundled font can print fails without being mailed.
//! A new revision of an invoice gets a new PDF. The email states the total as its PDF does,
//! also in a resend of an earlier revision.

use anyhow::{Context, Result};
use invoicer_e2e::{System, parse_message, pdf_text, sha256_hex};
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;
use sea_orm::ConnectionTrait;

use crate::data::{contact, customer, export, invoice};
use crate::triggers::orchestrator_database;

on_both_databases!(
    non_ascii_number_is_rfc_2231_file_name,
    uncovered_script_fails_without_mail,
    new_revision_gets_new_pdf,
    email_total_reads_as_in_pdf,
    earlier_revision_resend_states_its_total
);

async fn system(database: TestDatabase) -> Result<System> {
    let smtp = TestSmtpServer::builder().start().await?;
    System::start(database, smtp).await
}

fn lee() -> Vec<serde_json::Value> {
    vec![contact("Lee", "lee@buyer.example", "to")]
}

async fn non_ascii_number_is_rfc_2231_file_name(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let document = export(
        vec![customer("C-1", lee())],
        vec![invoice("FÄ-2026/Ørsted-7", "C-1", "10.00")],
    );
    system.import_text("a.json", &document).await?;

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1, "{batch:?}");
    let messages = system.wait_for_messages(1).await?;
    let parsed = parse_message(&messages[0])?;

    assert_eq!(parsed.attachment_name, "FÄ-2026_Ørsted-7.pdf");
    let raw = String::from_utf8_lossy(&messages[0].data);
    let disposition = raw
        .split("\r\n")
        .skip_while(|line| !line.starts_with("Content-Disposition: attachment"))
        .take_while(|line| line.starts_with("Content-Disposition") || line.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\r\n");
    assert!(
        disposition.contains("filename*") && disposition.to_ascii_lowercase().contains("utf-8''"),
        "Content-Disposition is not RFC 2231 encoded: {disposition:?}"
    );
    assert!(
        disposition.is_ascii(),
        "raw UTF-8 in the header: {disposition:?}"
    );
    system.stop().await
}

async fn uncovered_script_fails_without_mail(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut thai = customer("C-TH", lee());
    thai["name"] = serde_json::json!("บริษัท ทดสอบ จำกัด");
    let document = export(
        vec![thai, customer("C-1", lee())],
        vec![
            invoice("INV-TH-1", "C-TH", "10.00"),
            invoice("INV-OK-1", "C-1", "10.00"),
        ],
    );
    system.import_text("a.json", &document).await?;

    let batch = system.run_batch("30d").await?;
    let counts = batch.counts.unwrap_or_default();
    assert_eq!((counts.sent, counts.failed), (1, 1), "{batch:?}");
    let failed = batch
        .deliveries
        .iter()
        .find(|delivery| delivery.invoice_number == "INV-TH-1")
        .context("no delivery for INV-TH-1")?;
    assert!(
        failed.reason.contains("U+0E1A") && failed.reason.contains("rendering the PDF"),
        "reason does not name the missing characters: {}",
        failed.reason
    );
    let messages = system.wait_for_messages(1).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        system.smtp.messages().len(),
        1,
        "the failed invoice was mailed"
    );
    assert_eq!(parse_message(&messages[0])?.attachment_name, "INV-OK-1.pdf");

    let again = system.run_batch("30d").await?;
    assert_eq!(
        again.counts.unwrap_or_default().eligible,
        0,
        "a failed render was retried by the next batch"
    );
    system.stop().await
}

async fn new_revision_gets_new_pdf(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut first = invoice("INV-REV-1", "C-1", "10.00");
    system
        .import_text(
            "a.json",
            &export(vec![customer("C-1", lee())], vec![first.clone()]),
        )
        .await?;
    system.run_batch("30d").await?;

    first["notes"] = serde_json::json!("Corrected delivery address.");
    let changed = system.file("b.json");
    std::fs::write(&changed, export(vec![customer("C-1", lee())], vec![first]))?;
    let imported = system
        .cli(&["import", changed.to_str().context("non-UTF-8 path")?])
        .await?;
    assert!(
        imported.stdout.contains(
            "1 invoice changed: each becomes a new revision, which the next batch emails even"
        ),
        "{}",
        imported.stdout
    );
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1, "{batch:?}");

    let messages = system.wait_for_messages(2).await?;
    let old = parse_message(&messages[0])?;
    let new = parse_message(&messages[1])?;
    assert_ne!(
        sha256_hex(&old.attachment),
        sha256_hex(&new.attachment),
        "the new revision was sent with the old PDF"
    );
    let folder = tempfile::tempdir()?;
    let text = pdf_text(&new.attachment, folder.path())?;
    assert!(text.contains("Corrected delivery address."), "{text}");
    // The customer has revision 1, so the email of revision 2 is marked as a correction.
    assert_eq!(old.subject, "Invoice INV-REV-1 from Seller Example GmbH");
    assert_eq!(
        new.subject,
        "Invoice INV-REV-1 from Seller Example GmbH (corrected)"
    );
    assert!(
        new.text_body
            .contains("This corrected version replaces the one sent before."),
        "{}",
        new.text_body
    );
    system.stop().await
}

/// The built-in email gives the total with its currency as the attached PDF prints it, in
/// each customer's language: the euro sign after the amount in German, before it in Dutch.
async fn email_total_reads_as_in_pdf(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut german = customer("C-DE", vec![contact("Lee", "lee@buyer.example", "to")]);
    german["language"] = serde_json::json!("de");
    let mut dutch = customer("C-NL", vec![contact("Sam", "sam@buyer.example", "to")]);
    dutch["language"] = serde_json::json!("nl");
    let invoices = vec![
        invoice("INV-DE-1", "C-DE", "1234.50"),
        invoice("INV-NL-1", "C-NL", "1234.50"),
    ];
    system
        .import_text("a.json", &export(vec![german, dutch], invoices))
        .await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 2, "{batch:?}");

    let folder = tempfile::tempdir()?;
    let mut checked = Vec::new();
    for message in system.wait_for_messages(2).await? {
        let parsed = parse_message(&message)?;
        let amount = match parsed.attachment_name.as_str() {
            "INV-DE-1.pdf" => "1.234,50\u{a0}€",
            "INV-NL-1.pdf" => "€\u{a0}1.234,50",
            other => anyhow::bail!("unexpected attachment {other}"),
        };
        assert!(
            parsed.text_body.contains(amount),
            "{amount:?} not in the email: {}",
            parsed.text_body
        );
        // pdftotext prints the PDF's no-break space as a plain one.
        let text = pdf_text(&parsed.attachment, folder.path())?.replace('\u{a0}', " ");
        assert!(
            text.contains(&amount.replace('\u{a0}', " ")),
            "{amount:?} not in the PDF: {text}"
        );
        checked.push(parsed.attachment_name);
    }
    checked.sort();
    assert_eq!(checked, ["INV-DE-1.pdf", "INV-NL-1.pdf"]);
    system.stop().await
}

/// Checks that a resend of revision 1, after revision 2 changed the total, PO number and due
/// date, attaches revision 1's PDF and states revision 1's values in its email, not the ones
/// invoice-query has now.
async fn earlier_revision_resend_states_its_total(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut german = customer("C-DE", lee());
    german["language"] = serde_json::json!("de");
    let mut first = invoice("INV-REV-2", "C-DE", "1234.50");
    first["po_number"] = serde_json::json!("PO-1");
    first["due_date"] = serde_json::json!("2099-01-15");
    system
        .import_text("a.json", &export(vec![german.clone()], vec![first]))
        .await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1, "{batch:?}");
    let mut changed = invoice("INV-REV-2", "C-DE", "999.00");
    changed["po_number"] = serde_json::json!("PO-2");
    changed["due_date"] = serde_json::json!("2099-02-15");
    system
        .import_text("b.json", &export(vec![german], vec![changed]))
        .await?;

    let running = &system;
    let resend_first = move |reason: &'static str| async move {
        let args = ["resend", "INV-REV-2", "--revision", "1", "--reason", reason];
        running.cli(&args).await
    };
    resend_first("copy of the first total").await?;
    let messages = system.wait_for_messages(2).await?;
    let sent = parse_message(&messages[0])?;
    let resent = parse_message(&messages[1])?;
    assert_eq!(
        sha256_hex(&resent.attachment),
        sha256_hex(&sent.attachment),
        "the resend did not attach revision 1's PDF"
    );
    assert!(
        resent.text_body.contains("1.234,50\u{a0}€"),
        "the resend's email does not state revision 1's total: {}",
        resent.text_body
    );
    assert!(
        !resent.text_body.contains("999,00"),
        "the resend's email states revision 2's total: {}",
        resent.text_body
    );
    assert!(
        resent.text_body.contains("Ihre Bestellung: PO-1."),
        "the resend's email does not state revision 1's PO number: {}",
        resent.text_body
    );
    // The first email was written from revision 1, so its due date sentence is revision 1's.
    let due = |text: &str| {
        text.split(". ")
            .find(|sentence| sentence.contains("fällig am"))
            .map(str::to_owned)
    };
    assert!(due(&sent.text_body).is_some(), "{}", sent.text_body);
    assert_eq!(due(&resent.text_body), due(&sent.text_body));
    // Revision 1 was the first one sent, so its resend is not a correction.
    assert_eq!(resent.subject, sent.subject);

    // A PDF frozen before facts were stored has none: the resend still attaches it, and its
    // email falls back to the latest revision's values.
    let db = orchestrator_database(&system).await?;
    db.execute_unprepared("UPDATE or_documents SET facts_json = NULL")
        .await?;
    resend_first("copy without stored facts").await?;
    let messages = system.wait_for_messages(3).await?;
    let fallback = parse_message(&messages[2])?;
    assert_eq!(
        sha256_hex(&fallback.attachment),
        sha256_hex(&sent.attachment)
    );
    assert!(
        fallback.text_body.contains("999,00\u{a0}€"),
        "{}",
        fallback.text_body
    );
    system.stop().await
}
