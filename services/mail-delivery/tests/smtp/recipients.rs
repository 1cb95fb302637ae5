//! Per-recipient results: a 5xx to one RCPT fails that recipient alone, a 4xx defers the
//! message or (with `defer_per_recipient`) that recipient alone, and a retry with
//! `skip_recipients` sends no second copy to those already settled.

use anyhow::Result;
use invoicer_mail_delivery::{DeliveryReport, Outcome, RecipientReport, SmtpStage};
use invoicer_test_smtp::{Action, ReceivedMessage, TestSmtpServer};
use mail_parser::MessageParser;

use crate::support::{MESSAGE_ID, WAIT, command_count, invoice_email, mailer};

fn recipient<'r>(report: &'r DeliveryReport, address: &str) -> &'r RecipientReport {
    report
        .recipients
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("{address} missing in {:?}", report.recipients))
}

/// Returns the addresses a retry leaves out: those sent or failed for good.
fn settled(report: &DeliveryReport) -> Vec<String> {
    report
        .recipients
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Sent | Outcome::Failed))
        .map(|r| r.address.clone())
        .collect()
}

/// Returns the To and Cc headers of a received message, as addresses.
fn header_addresses(message: &ReceivedMessage) -> (Vec<String>, Vec<String>) {
    let parsed = MessageParser::default().parse(&message.data).unwrap();
    let list = |addresses: Option<&mail_parser::Address>| -> Vec<String> {
        addresses
            .map(|list| {
                list.iter()
                    .filter_map(|a| a.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    (list(parsed.to()), list(parsed.cc()))
}

#[tokio::test]
async fn rcpt_550_fails_that_recipient_only() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("ap@customer.example", 550, "5.1.1 no such user")
        .start()
        .await?;

    let report = mailer(server.url()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::PartiallySent, "{report:?}");
    assert_eq!(report.stage, SmtpStage::DataEnd);
    let rejected = recipient(&report, "ap@customer.example");
    assert_eq!(rejected.outcome, Outcome::Failed);
    assert_eq!(rejected.reply_code, 550);
    assert!(!rejected.accepted);
    assert_eq!(
        recipient(&report, "zoe@customer.example").outcome,
        Outcome::Sent
    );
    let messages = server.wait_for_messages(1, WAIT).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].rcpt_to,
        ["zoe@customer.example", "archive@company.example"]
    );
    assert_eq!(settled(&report).len(), 3, "nothing is left to retry");
    Ok(())
}

#[tokio::test]
async fn rcpt_450_defers_whole_message_by_default() -> Result<()> {
    let server = TestSmtpServer::builder()
        .on_rcpt_first("ap@customer.example", 1, Action::reply(450, "4.2.0 busy"))
        .start()
        .await?;
    let mailer = mailer(server.url());

    let first = mailer.send(invoice_email()).await?;

    assert_eq!(first.outcome, Outcome::Deferred, "{first:?}");
    assert_eq!(first.stage, SmtpStage::RcptTo);
    assert_eq!(
        recipient(&first, "ap@customer.example").outcome,
        Outcome::Deferred
    );
    assert_eq!(
        recipient(&first, "zoe@customer.example").outcome,
        Outcome::Deferred
    );
    assert!(settled(&first).is_empty(), "{first:?}");
    assert_eq!(command_count(&server, "DATA"), 0);

    let mut retry = invoice_email();
    retry.skip_recipients = settled(&first);
    let second = mailer.send(retry).await?;

    assert_eq!(second.outcome, Outcome::Sent, "{second:?}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "one copy after two attempts");
    assert_eq!(messages[0].rcpt_to.len(), 3);
    Ok(())
}

#[tokio::test]
async fn rcpt_450_defers_one_recipient_when_asked() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("archive@company.example", 550, "5.1.1 no such user")
        .on_rcpt_first("ap@customer.example", 1, Action::reply(450, "4.2.0 busy"))
        .start()
        .await?;
    let mailer = mailer(server.url());
    let email = || {
        let mut email = invoice_email();
        email.defer_per_recipient = true;
        email
    };

    let first = mailer.send(email()).await?;

    assert_eq!(first.outcome, Outcome::PartiallyDeferred, "{first:?}");
    assert_eq!(first.stage, SmtpStage::DataEnd);
    assert_eq!(
        recipient(&first, "zoe@customer.example").outcome,
        Outcome::Sent
    );
    assert_eq!(
        recipient(&first, "ap@customer.example").outcome,
        Outcome::Deferred
    );
    assert_eq!(
        recipient(&first, "archive@company.example").outcome,
        Outcome::Failed
    );
    assert_eq!(
        settled(&first),
        ["zoe@customer.example", "archive@company.example"]
    );

    let mut retry = email();
    retry.skip_recipients = settled(&first);
    let second = mailer.send(retry).await?;

    assert_eq!(second.outcome, Outcome::Sent, "{second:?}");
    assert_eq!(second.recipients.len(), 1);
    let messages = server.messages();
    assert_eq!(messages.len(), 2, "two attempts, one copy per recipient");
    assert_eq!(messages[0].rcpt_to, ["zoe@customer.example"]);
    assert_eq!(messages[1].rcpt_to, ["ap@customer.example"]);
    for message in &messages {
        let (to, cc) = header_addresses(message);
        assert_eq!(
            to,
            ["zoe@customer.example"],
            "the retry keeps the To header"
        );
        assert_eq!(cc, ["ap@customer.example"], "the retry keeps the Cc header");
        let parsed = MessageParser::default().parse(&message.data).unwrap();
        assert_eq!(parsed.message_id(), Some(MESSAGE_ID));
    }
    Ok(())
}

#[tokio::test]
async fn rcpt_450_to_all_defers_per_recipient() -> Result<()> {
    let server = TestSmtpServer::builder()
        .on(
            invoicer_test_smtp::Stage::RcptTo,
            Action::reply(450, "4.2.0 busy"),
        )
        .start()
        .await?;
    let mut email = invoice_email();
    email.defer_per_recipient = true;

    let report = mailer(server.url()).send(email).await?;

    assert_eq!(report.outcome, Outcome::Deferred, "{report:?}");
    assert!(settled(&report).is_empty());
    assert_eq!(command_count(&server, "DATA"), 0);
    assert!(server.messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn unknown_end_of_data_marks_recipients_unknown() -> Result<()> {
    let server = TestSmtpServer::builder()
        .reject_rcpt("ap@customer.example", 550, "5.1.1 no such user")
        .close_after_data()
        .start()
        .await?;

    let report = mailer(server.url()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert_eq!(
        recipient(&report, "zoe@customer.example").outcome,
        Outcome::Unknown
    );
    assert_eq!(
        recipient(&report, "ap@customer.example").outcome,
        Outcome::Failed
    );
    Ok(())
}
