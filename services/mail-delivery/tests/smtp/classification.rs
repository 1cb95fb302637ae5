//! Each reply class at each stage of a session, against the fixture: the outcome, the stage
//! and last reply in the report, one attempt on one connection, and the copies the server
//! accepted.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use invoicer_mail_delivery::{Outcome, SmtpStage};
use invoicer_test_smtp::{Action, Stage, TestSmtpServer, TestSmtpServerBuilder};

use crate::support::{command_count, invoice_email, mailer};

/// Longer than the one-second command timeout of [`Url::ShortTimeout`].
const SLOW: Duration = Duration::from_secs(2);

enum Url {
    Plain,
    /// `timeout=1`.
    ShortTimeout,
    /// STARTTLS required, trusting the fixture's CA.
    StartTls,
    /// AUTH with `billing:secret`.
    Auth,
}

struct Expected {
    outcome: Outcome,
    stage: SmtpStage,
    /// The start of the report's last reply; empty when there must be none.
    last_reply: &'static str,
    /// Messages the server read to the final dot and refused or left without a reply.
    bodies_refused: usize,
    /// Messages the server accepted, although the client may not have seen the reply.
    copies_accepted: usize,
}

fn url_for(server: &TestSmtpServer, url: Url, dir: &Path) -> Result<String> {
    let port = server.local_addr().port();
    Ok(match url {
        Url::Plain => server.url(),
        Url::ShortTimeout => format!("{}?timeout=1", server.url()),
        Url::StartTls => {
            let ca_file = server.write_ca_file(dir)?;
            format!(
                "smtp://localhost:{port}?tls=starttls&ca_file={}",
                ca_file.display()
            )
        }
        Url::Auth => format!("smtp://billing:secret@127.0.0.1:{port}"),
    })
}

async fn check(builder: TestSmtpServerBuilder, url: Url, expected: Expected) -> Result<()> {
    let server = builder.start().await?;
    let dir = tempfile::tempdir()?;
    let mailer = mailer(url_for(&server, url, dir.path())?);

    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, expected.outcome, "{report:?}");
    assert_eq!(report.stage, expected.stage, "{report:?}");
    if expected.last_reply.is_empty() {
        assert_eq!(report.last_reply, "", "{report:?}");
    } else {
        assert!(
            report.last_reply.starts_with(expected.last_reply),
            "{report:?}"
        );
    }
    assert!(report.recipients.iter().all(|r| !r.accepted), "{report:?}");
    let port = format!(":{}", server.local_addr().port());
    assert!(report.error.contains(&port), "{}", report.error);
    // mail-delivery makes one attempt; retrying is the caller's decision.
    assert_eq!(server.connection_count(), 1);
    assert!(command_count(&server, "MAIL") <= 1);
    assert_eq!(server.messages().len(), expected.copies_accepted);
    assert_eq!(server.rejected_messages().len(), expected.bodies_refused);
    Ok(())
}

fn expected(outcome: Outcome, stage: SmtpStage, last_reply: &'static str) -> Expected {
    Expected {
        outcome,
        stage,
        last_reply,
        bodies_refused: 0,
        copies_accepted: 0,
    }
}

macro_rules! case {
    ($name:ident, $builder:expr, $url:expr, $expected:expr) => {
        #[tokio::test]
        async fn $name() -> Result<()> {
            check($builder, $url, $expected).await
        }
    };
}

fn fixture() -> TestSmtpServerBuilder {
    TestSmtpServer::builder()
}

use Outcome::{Deferred, Failed, Unknown};

case!(
    greeting_421_defers,
    fixture().greeting(421, "4.3.2 service not available"),
    Url::Plain,
    expected(Deferred, SmtpStage::Greeting, "421 4.3.2")
);
case!(
    greeting_554_fails,
    fixture().greeting(554, "5.3.2 no mail service here"),
    Url::Plain,
    expected(Failed, SmtpStage::Greeting, "554 5.3.2")
);
case!(
    greeting_dropped_defers,
    fixture().on(Stage::Greeting, Action::close()),
    Url::Plain,
    expected(Deferred, SmtpStage::Greeting, "")
);
case!(
    greeting_timeout_defers,
    fixture().delay(Stage::Greeting, SLOW),
    Url::ShortTimeout,
    expected(Deferred, SmtpStage::Greeting, "")
);
case!(
    ehlo_421_defers,
    fixture().on(Stage::Ehlo, Action::reply(421, "4.7.0 too busy")),
    Url::Plain,
    expected(Deferred, SmtpStage::Ehlo, "421 4.7.0")
);
case!(
    ehlo_550_fails,
    fixture().on(Stage::Ehlo, Action::reply(550, "5.7.1 client host blocked")),
    Url::Plain,
    expected(Failed, SmtpStage::Ehlo, "550 5.7.1")
);
case!(
    ehlo_dropped_defers,
    fixture().on(Stage::Ehlo, Action::close()),
    Url::Plain,
    expected(Deferred, SmtpStage::Ehlo, "")
);
case!(
    starttls_454_defers,
    fixture().starttls().on(
        Stage::StartTls,
        Action::reply(454, "4.7.0 TLS not available")
    ),
    Url::StartTls,
    expected(Deferred, SmtpStage::StartTls, "454 4.7.0")
);
case!(
    starttls_554_fails,
    fixture()
        .starttls()
        .on(Stage::StartTls, Action::reply(554, "5.7.3 TLS refused")),
    Url::StartTls,
    expected(Failed, SmtpStage::StartTls, "554 5.7.3")
);
case!(
    auth_454_defers,
    fixture().credentials("billing", "secret").on(
        Stage::Auth,
        Action::reply(454, "4.7.0 temporary auth failure")
    ),
    Url::Auth,
    expected(Deferred, SmtpStage::Auth, "454 4.7.0")
);
case!(
    auth_535_fails,
    fixture().credentials("billing", "other").require_auth(),
    Url::Auth,
    expected(Failed, SmtpStage::Auth, "535 5.7.8")
);
case!(
    mail_451_defers,
    fixture().reply_to_mail_from(451, "4.3.0 try later"),
    Url::Plain,
    expected(Deferred, SmtpStage::MailFrom, "451 4.3.0")
);
case!(
    mail_550_fails,
    fixture().reply_to_mail_from(550, "5.7.1 sender not allowed"),
    Url::Plain,
    expected(Failed, SmtpStage::MailFrom, "550 5.7.1")
);
case!(
    mail_dropped_defers,
    fixture().on(Stage::MailFrom, Action::close()),
    Url::Plain,
    expected(Deferred, SmtpStage::MailFrom, "")
);
case!(
    rcpt_450_to_every_recipient_defers,
    fixture().on(Stage::RcptTo, Action::reply(450, "4.2.0 mailbox busy")),
    Url::Plain,
    expected(Deferred, SmtpStage::RcptTo, "450 4.2.0")
);
case!(
    rcpt_550_to_every_recipient_fails,
    fixture().on(Stage::RcptTo, Action::reply(550, "5.1.1 no such user")),
    Url::Plain,
    expected(Failed, SmtpStage::RcptTo, "550 5.1.1")
);
case!(
    rcpt_dropped_defers,
    fixture().on(Stage::RcptTo, Action::close()),
    Url::Plain,
    expected(Deferred, SmtpStage::RcptTo, "250 2.1.0")
);
case!(
    rcpt_timeout_defers,
    fixture().delay(Stage::RcptTo, SLOW),
    Url::ShortTimeout,
    expected(Deferred, SmtpStage::RcptTo, "250 2.1.0")
);
case!(
    data_451_defers,
    fixture().reply_to_data(451, "4.3.0 queue full"),
    Url::Plain,
    expected(Deferred, SmtpStage::Data, "451 4.3.0")
);
case!(
    data_554_fails,
    fixture().reply_to_data(554, "5.5.0 no DATA today"),
    Url::Plain,
    expected(Failed, SmtpStage::Data, "554 5.5.0")
);
case!(
    data_dropped_defers,
    fixture().on(Stage::Data, Action::close()),
    Url::Plain,
    expected(Deferred, SmtpStage::Data, "250 2.1.5")
);
case!(
    end_of_data_451_defers,
    fixture().reply_at_data_end(451, "4.3.0 try again later"),
    Url::Plain,
    Expected {
        bodies_refused: 1,
        ..expected(Deferred, SmtpStage::DataEnd, "451 4.3.0")
    }
);
case!(
    end_of_data_554_fails,
    fixture().reply_at_data_end(554, "5.7.1 rejected by policy"),
    Url::Plain,
    Expected {
        bodies_refused: 1,
        ..expected(Failed, SmtpStage::DataEnd, "554 5.7.1")
    }
);
case!(
    end_of_data_dropped_is_unknown,
    fixture().close_after_data(),
    Url::Plain,
    Expected {
        bodies_refused: 1,
        ..expected(Unknown, SmtpStage::DataEnd, "354")
    }
);
case!(
    end_of_data_timeout_is_unknown,
    fixture().delay(Stage::DataEnd, SLOW),
    Url::ShortTimeout,
    Expected {
        copies_accepted: 1,
        ..expected(Unknown, SmtpStage::DataEnd, "354")
    }
);

#[tokio::test]
async fn quit_dropped_after_delivery_is_still_sent() -> Result<()> {
    let server = fixture().on(Stage::Quit, Action::close()).start().await?;
    let mut mail = crate::support::mail_config(server.url());
    mail.pool_idle_secs = 0;
    let mailer = crate::support::mailer_with(mail);

    let report = mailer.send(invoice_email()).await?;

    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.stage, SmtpStage::DataEnd);
    assert!(report.last_reply.starts_with("250 2.0.0"), "{report:?}");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(command_count(&server, "QUIT"), 1);
    Ok(())
}
