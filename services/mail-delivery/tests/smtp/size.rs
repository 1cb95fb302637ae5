//! The server's SIZE limit: a larger message fails before MAIL FROM, with both sizes in the
//! error, and the next message of the batch still goes out.

use anyhow::Result;
use invoicer_mail_delivery::{Attachment, Outcome, SmtpStage};
use invoicer_test_smtp::TestSmtpServer;

use crate::support::{command_count, invoice_email, mailer};

const LIMIT: usize = 20_000;

#[tokio::test]
async fn oversized_message_fails_batch_continues() -> Result<()> {
    let server = TestSmtpServer::builder().max_size(LIMIT).start().await?;
    let mailer = mailer(server.url());
    let mut large = invoice_email();
    large.message_id = Some("inv-large@company.example".to_owned());
    large.attachments = vec![Attachment {
        file_name: "large.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
        content: vec![b'x'; LIMIT],
    }];

    let too_large = mailer.send(large).await?;
    let small = mailer.send(invoice_email()).await?;

    assert_eq!(too_large.outcome, Outcome::Failed, "{too_large:?}");
    assert_eq!(too_large.stage, SmtpStage::MailFrom);
    assert!(
        too_large.error.contains(&format!("limit of {LIMIT} bytes")),
        "{}",
        too_large.error
    );
    let size_text = too_large
        .error
        .split("the message is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|size| size.parse::<usize>().ok());
    assert!(
        size_text.is_some_and(|size| size > LIMIT),
        "{}",
        too_large.error
    );
    assert!(
        too_large
            .recipients
            .iter()
            .all(|r| r.outcome == Outcome::Failed)
    );

    assert_eq!(small.outcome, Outcome::Sent, "{small:?}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(server.rejected_messages().is_empty());
    // Only the small message got MAIL and DATA, with its size declared.
    assert_eq!(command_count(&server, "MAIL"), 1);
    assert_eq!(command_count(&server, "DATA"), 1);
    assert_eq!(
        messages[0].mail_parameters,
        [format!("SIZE={}", small.message_size)]
    );
    Ok(())
}

#[tokio::test]
async fn server_without_size_gets_no_size_parameter() -> Result<()> {
    let server = TestSmtpServer::builder().start().await?;

    let report = mailer(server.url()).send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(server.messages()[0].mail_parameters.is_empty());
    Ok(())
}
