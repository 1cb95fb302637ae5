//! Contact roles, customers without a usable address, opt-outs, and rejected imports.

use anyhow::{Context, Result};
use invoicer_e2e::{System, parse_message};
use invoicer_proto::audit_log::v1 as audit;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::TestSmtpServer;
use serde_json::json;

on_both_databases!(
    roles_give_to_cc_and_envelope_only_bcc,
    customer_without_contact_skipped_then_sent,
    opted_out_invoice_skipped_with_reason,
    invalid_contact_address_rejected_at_import,
    address_list_with_invalid_element_still_sent,
    quoted_name_with_comma_is_one_mailbox,
    several_invoices_of_one_customer_each_sent,
    import_rejects_bad_total_keeps_others,
    dry_run_writes_and_sends_nothing
);

use crate::data::{contact, customer, export, invoice};

async fn system(database: TestDatabase) -> Result<System> {
    System::start(database, TestSmtpServer::builder().start().await?).await
}

async fn roles_give_to_cc_and_envelope_only_bcc(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let contacts = vec![
        contact("Anna Schmidt", "anna@buyer.example", "to"),
        contact("Kreditoren", "ap@buyer.example", "cc"),
        contact("Archive", "archive@buyer.example", "bcc"),
        contact("Max", "max@buyer.example", "none"),
    ];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("roles.json", &document).await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);

    let parsed = parse_message(&system.wait_for_messages(1).await?[0])?;
    assert_eq!(parsed.to, ["anna@buyer.example"]);
    assert_eq!(parsed.cc, ["ap@buyer.example"]);
    assert!(!parsed.has_bcc_header);
    let mut envelope = parsed.envelope_to.clone();
    envelope.sort();
    assert_eq!(
        envelope,
        [
            "anna@buyer.example",
            "ap@buyer.example",
            "archive@buyer.example"
        ]
    );
    system.stop().await
}

async fn customer_without_contact_skipped_then_sent(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    system
        .import_text(
            "a.json",
            &export(
                vec![customer("C-1", vec![])],
                vec![invoice("INV-1", "C-1", "10.00")],
            ),
        )
        .await?;

    let first = system.run_batch("30d").await?;
    let counts = first.counts.unwrap_or_default();
    assert_eq!(counts.eligible, 1);
    assert_eq!(counts.skipped, 1);
    assert_eq!(counts.sent, 0);
    assert!(
        first.deliveries[0].reason.starts_with("no recipient"),
        "{}",
        first.deliveries[0].reason
    );
    let logged = system
        .log_entries(audit::ListEntriesRequest::default())
        .await?;
    assert!(logged.is_empty(), "a skipped invoice was logged");
    assert!(system.smtp.messages().is_empty());

    let with_contact = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    system.import_text("b.json", &with_contact).await?;
    let second = system.run_batch("30d").await?;
    assert_eq!(second.counts.unwrap_or_default().sent, 1);
    assert_eq!(
        parse_message(&system.wait_for_messages(1).await?[0])?.to,
        ["lee@buyer.example"]
    );
    system.stop().await
}

async fn opted_out_invoice_skipped_with_reason(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut opted_out = invoice("INV-2", "C-1", "5.00");
    opted_out["notify_opt_out"] = json!(true);
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00"), opted_out],
    );
    system.import_text("a.json", &document).await?;
    let batch = system.run_batch("30d").await?;
    let skipped = batch
        .deliveries
        .iter()
        .find(|d| d.invoice_number == "INV-2")
        .context("INV-2 not listed")?;
    assert!(
        skipped.reason.starts_with("opted out"),
        "{}",
        skipped.reason
    );
    let counts = batch.counts.unwrap_or_default();
    assert_eq!((counts.sent, counts.skipped), (1, 1));
    system.stop().await
}

async fn invalid_contact_address_rejected_at_import(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let contacts = vec![contact("AP", "not-an-address", "to")];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    let import = system.import_text("a.json", &document).await?;
    assert_eq!(import.code, std::process::ExitCode::from(1));
    let result = &import.json_lines()?[0];
    assert_eq!(result["customers"]["rejected"], 1, "{result}");
    assert!(
        import.stdout.contains("not-an-address"),
        "{}",
        import.stdout
    );

    let batch = system.run_batch("30d").await?;
    assert_eq!(
        batch.counts.unwrap_or_default().eligible,
        0,
        "an invoice of a rejected customer became eligible"
    );
    assert!(system.smtp.messages().is_empty());
    system.stop().await
}

async fn several_invoices_of_one_customer_each_sent(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![
            invoice("INV-1", "C-1", "10.00"),
            invoice("INV-2", "C-1", "20.00"),
            invoice("INV-3", "C-1", "30.00"),
        ],
    );
    system.import_text("a.json", &document).await?;
    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 3);
    let mut names: Vec<String> = system
        .wait_for_messages(3)
        .await?
        .iter()
        .map(|m| parse_message(m).map(|p| p.attachment_name))
        .collect::<Result<_>>()?;
    names.sort();
    assert_eq!(names, ["INV-1.pdf", "INV-2.pdf", "INV-3.pdf"]);
    system.stop().await
}

async fn import_rejects_bad_total_keeps_others(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let mut broken = invoice("INV-BAD", "C-1", "10.00");
    broken["total"] = json!("11.00");
    let document = export(
        vec![customer(
            "C-1",
            vec![contact("Lee", "lee@buyer.example", "to")],
        )],
        vec![invoice("INV-1", "C-1", "10.00"), broken],
    );
    let import = system.import_text("a.json", &document).await?;
    assert_eq!(import.code, std::process::ExitCode::from(1));
    let result = &import.json_lines()?[0];
    assert_eq!(result["invoices"]["created"], 1);
    assert_eq!(result["invoices"]["rejected"], 1);
    let message = result["rejections"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(result["rejections"][0]["key"] == "INV-BAD", "{result}");
    assert!(
        message.contains("11.00") && message.contains("10.00"),
        "{message}"
    );

    let batch = system.run_batch("30d").await?;
    assert_eq!(
        batch.counts.unwrap_or_default().eligible,
        1,
        "the rejected invoice became eligible"
    );
    system.stop().await
}

async fn dry_run_writes_and_sends_nothing(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let document = export(
        vec![
            customer("C-1", vec![contact("Lee", "lee@buyer.example", "to")]),
            customer("C-2", vec![]),
        ],
        vec![
            invoice("INV-1", "C-1", "10.00"),
            invoice("INV-2", "C-2", "20.00"),
        ],
    );
    system.import_text("a.json", &document).await?;
    let dry = system.cli(&["batch", "run", "--dry-run", "--json"]).await?;
    let lines = dry.json_lines()?;
    assert_eq!(lines.len(), 3, "{}", dry.stdout);
    let planned = lines
        .iter()
        .find(|l| l["invoice"] == "INV-1")
        .context("INV-1 missing")?;
    assert_eq!(planned["outcome"], "planned");
    assert_eq!(planned["to"], json!(["lee@buyer.example"]));
    assert_eq!(planned["attachment"], "INV-1.pdf");
    let skipped = lines
        .iter()
        .find(|l| l["invoice"] == "INV-2")
        .context("INV-2 missing")?;
    assert_eq!(skipped["outcome"], "skipped");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no recipient")
    );
    assert_eq!(lines[2]["planned"], 1);
    assert_eq!(lines[2]["skipped"], 1);

    let list = system.cli(&["batch", "list", "--json"]).await?;
    assert!(
        list.stdout.trim().is_empty(),
        "a dry run stored a batch: {}",
        list.stdout
    );
    assert!(system.smtp.messages().is_empty());
    let real = system.run_batch("30d").await?;
    assert_eq!(
        real.counts.unwrap_or_default().sent,
        1,
        "the dry run left the invoice marked"
    );
    system.stop().await
}

async fn address_list_with_invalid_element_still_sent(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let contacts = vec![contact(
        "AP",
        "ap@buyer.example, not-an-address; ar@buyer.example",
        "to",
    )];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    let import = system.import_text("a.json", &document).await?;
    assert_eq!(
        import.code,
        std::process::ExitCode::SUCCESS,
        "{}",
        import.stdout
    );
    let result = &import.json_lines()?[0];
    assert_eq!(result["customers"]["created"], 1);
    assert_eq!(
        result["warnings"].as_array().map(Vec::len),
        Some(1),
        "{result}"
    );
    let warning = &result["warnings"][0];
    assert_eq!(warning["field"], "customers[0].contacts[0].email");
    assert!(
        warning["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not-an-address"),
        "{warning}"
    );

    let batch = system.run_batch("30d").await?;
    assert_eq!(batch.counts.unwrap_or_default().sent, 1);
    let reason = &batch.deliveries[0].reason;
    assert!(
        reason.contains("not-an-address"),
        "the left-out address is not reported: {reason:?}"
    );
    let parsed = parse_message(&system.wait_for_messages(1).await?[0])?;
    assert_eq!(parsed.to, ["ap@buyer.example", "ar@buyer.example"]);
    system.stop().await
}

async fn quoted_name_with_comma_is_one_mailbox(database: TestDatabase) -> Result<()> {
    let system = system(database).await?;
    let contacts = vec![contact(
        "Jordan",
        "\"Lee, Jordan\" <jordan@buyer.example>",
        "to",
    )];
    let document = export(
        vec![customer("C-1", contacts)],
        vec![invoice("INV-1", "C-1", "10.00")],
    );
    let import = system.import_text("a.json", &document).await?;
    let result = &import.json_lines()?[0];
    assert_eq!(
        result["warnings"].as_array().map(Vec::len),
        Some(0),
        "{result}"
    );

    system.run_batch("30d").await?;
    let message = &system.wait_for_messages(1).await?[0];
    assert_eq!(message.rcpt_to, ["jordan@buyer.example"]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .context("message does not parse")?;
    let to: Vec<_> = parsed
        .to()
        .map(|list| list.iter().collect())
        .unwrap_or_default();
    assert_eq!(to.len(), 1, "the quoted name was split: {to:?}");
    assert_eq!(to[0].name.as_deref(), Some("Lee, Jordan"));
    assert_eq!(to[0].address.as_deref(), Some("jordan@buyer.example"));
    system.stop().await
}
