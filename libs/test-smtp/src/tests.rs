//! Tests of the fixture itself, with a raw line-based SMTP client over a real socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::connection::Io;
use crate::{Action, Stage, TestSmtpError, TestSmtpServer};

const WAIT: Duration = Duration::from_secs(5);

/// A minimal SMTP client: one command line out, one (possibly multi-line) reply in.
struct Client {
    stream: BufReader<Box<dyn Io>>,
}

impl Client {
    async fn connect(server: &TestSmtpServer) -> Client {
        let socket = TcpStream::connect(server.local_addr()).await.unwrap();
        Client {
            stream: BufReader::new(Box::new(socket)),
        }
    }

    async fn connect_implicit_tls(server: &TestSmtpServer) -> Client {
        let socket = TcpStream::connect(server.local_addr()).await.unwrap();
        let tls = tls_connect(server, Box::new(socket)).await;
        Client {
            stream: BufReader::new(tls),
        }
    }

    async fn upgrade(self, server: &TestSmtpServer) -> Client {
        let tls = tls_connect(server, self.stream.into_inner()).await;
        Client {
            stream: BufReader::new(tls),
        }
    }

    async fn reply(&mut self) -> (u16, String) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self.stream.read_line(&mut line).await.unwrap();
            assert!(read > 0, "server closed the connection before replying");
            let code = line[..3].parse::<u16>().unwrap();
            lines.push(line[4..].trim_end().to_owned());
            if line.as_bytes()[3] == b' ' {
                return (code, lines.join("\n"));
            }
        }
    }

    async fn send(&mut self, line: &str) {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        stream.flush().await.unwrap();
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        self.send(line).await;
        self.reply().await
    }

    /// True when the server closed the connection with nothing more to read.
    async fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, self.stream.read_to_end(&mut rest)).await;
        matches!(read, Ok(Ok(0)))
    }

    async fn greeted(server: &TestSmtpServer) -> Client {
        let mut client = Client::connect(server).await;
        assert_eq!(client.reply().await.0, 220);
        assert_eq!(client.command("EHLO client.example").await.0, 250);
        client
    }
}

async fn tls_connect(server: &TestSmtpServer, stream: Box<dyn Io>) -> Box<dyn Io> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    Box::new(connector.connect(name, stream).await.unwrap())
}

#[tokio::test]
async fn plain_transaction_stores_unstuffed_message() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let mut client = Client::greeted(&server).await;

    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example> SIZE=40 BODY=8BITMIME")
            .await
            .0,
        250
    );
    assert_eq!(
        client.command("RCPT TO:<anna@customer.example>").await.0,
        250
    );
    assert_eq!(
        client.command("RCPT TO:<ben@customer.example>").await.0,
        250
    );
    assert_eq!(client.command("DATA").await.0, 354);
    client
        .send("Subject: hi\r\n\r\n..leading dot\r\nlast")
        .await;
    let (code, text) = client.command(".").await;
    assert_eq!(code, 250);
    assert!(text.contains("queued as"), "{text}");

    let messages = server.wait_for_messages(1, WAIT).await.unwrap();
    let message = &messages[0];
    assert_eq!(message.mail_from, "billing@company.example");
    assert_eq!(message.mail_parameters, ["SIZE=40", "BODY=8BITMIME"]);
    assert_eq!(
        message.rcpt_to,
        ["anna@customer.example", "ben@customer.example"]
    );
    assert_eq!(
        message.data_text(),
        "Subject: hi\r\n\r\n.leading dot\r\nlast\r\n"
    );
    assert_eq!(message.ehlo_name.as_deref(), Some("client.example"));
    assert_eq!(message.authenticated_as, None);
    assert!(!message.tls);
    assert_eq!(client.command("QUIT").await.0, 221);
}

#[tokio::test]
async fn ehlo_lists_configured_extensions() {
    let server = TestSmtpServer::builder()
        .starttls()
        .credentials("user", "secret")
        .max_size(1000)
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&server).await;
    client.reply().await;
    let (code, text) = client.command("EHLO client.example").await;
    assert_eq!(code, 250);
    for keyword in [
        "SMTPUTF8",
        "8BITMIME",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
        "SIZE 1000",
    ] {
        assert!(
            text.lines().any(|line| line == keyword),
            "{keyword} missing in {text:?}"
        );
    }
}

#[tokio::test]
async fn ehlo_omits_smtputf8_when_disabled() {
    let server = TestSmtpServer::builder()
        .smtputf8(false)
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&server).await;
    client.reply().await;
    let (_, text) = client.command("EHLO client.example").await;
    assert!(!text.contains("SMTPUTF8"), "{text}");
    assert!(!text.contains("STARTTLS"), "{text}");
    assert!(!text.contains("AUTH"), "{text}");
}

#[tokio::test]
async fn scripted_rcpt_reply_leaves_recipient_out() {
    let server = TestSmtpServer::builder()
        .reject_rcpt("Gone@Customer.example", 550, "5.1.1 no such user")
        .reject_rcpt("busy@customer.example", 450, "4.2.0 try later")
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;

    assert_eq!(
        client.command("RCPT TO:<gone@customer.example>").await,
        (550, "5.1.1 no such user".to_owned())
    );
    assert_eq!(
        client.command("RCPT TO:<busy@customer.example>").await,
        (450, "4.2.0 try later".to_owned())
    );
    assert_eq!(
        client.command("RCPT TO:<anna@customer.example>").await.0,
        250
    );
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;
    assert_eq!(client.command(".").await.0, 250);

    let messages = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages[0].rcpt_to, ["anna@customer.example"]);
}

#[tokio::test]
async fn scripted_mail_from_reply_opens_no_transaction() {
    let server = TestSmtpServer::builder()
        .reply_to_mail_from(451, "4.3.0 sender check unavailable")
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        451
    );
    assert_eq!(
        client.command("RCPT TO:<anna@customer.example>").await.0,
        503
    );
}

#[tokio::test]
async fn data_end_reply_rejects_message() {
    let server = TestSmtpServer::builder()
        .reply_at_data_end(554, "5.6.0 message rejected")
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;

    assert_eq!(
        client.command(".").await,
        (554, "5.6.0 message rejected".to_owned())
    );
    assert!(server.messages().is_empty());
    let rejected = server.rejected_messages();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].final_reply.as_ref().map(|reply| reply.code),
        Some(554)
    );
}

#[tokio::test]
async fn close_after_data_sends_no_reply() {
    let server = TestSmtpServer::builder()
        .close_after_data()
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;
    client.send(".").await;

    assert!(client.is_closed().await);
    assert!(server.messages().is_empty());
    let rejected = server.rejected_messages();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].final_reply, None);
    assert_eq!(rejected[0].data_text(), "Subject: x\r\n\r\nbody\r\n");
}

#[tokio::test]
async fn refusing_greeting_closes_connection() {
    let server = TestSmtpServer::builder()
        .greeting(421, "4.3.2 service not available")
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&server).await;
    assert_eq!(
        client.reply().await,
        (421, "4.3.2 service not available".to_owned())
    );
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn delay_holds_back_reply() {
    let delay = Duration::from_millis(300);
    let server = TestSmtpServer::builder()
        .delay(Stage::RcptTo, delay)
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;

    let started = Instant::now();
    assert_eq!(
        client.command("RCPT TO:<anna@customer.example>").await.0,
        250
    );
    assert!(
        started.elapsed() >= delay,
        "reply came after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn auth_plain_accepts_right_credentials() {
    let server = TestSmtpServer::builder()
        .credentials("user", "secret")
        .require_auth()
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        530
    );

    // base64 of "\0user\0secret".
    assert_eq!(client.command("AUTH PLAIN AHVzZXIAc2VjcmV0").await.0, 235);
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        250
    );
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;
    client.command(".").await;

    let messages = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(messages[0].authenticated_as.as_deref(), Some("user"));
    let commands = server.commands();
    assert!(
        commands.contains(&"AUTH PLAIN <credentials>".to_owned()),
        "{commands:?}"
    );
    assert!(
        !commands
            .iter()
            .any(|line| line.contains("AHVzZXIAc2VjcmV0")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn auth_plain_rejects_wrong_password() {
    let server = TestSmtpServer::builder()
        .credentials("user", "secret")
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    // base64 of "\0user\0wrong".
    assert_eq!(client.command("AUTH PLAIN AHVzZXIAd3Jvbmc=").await.0, 535);
}

#[tokio::test]
async fn auth_login_prompts_for_user_and_password() {
    let server = TestSmtpServer::builder()
        .credentials("user", "secret")
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client.command("AUTH LOGIN").await,
        (334, "VXNlcm5hbWU6".to_owned())
    );
    assert_eq!(
        client.command("dXNlcg==").await,
        (334, "UGFzc3dvcmQ6".to_owned())
    );
    assert_eq!(client.command("c2VjcmV0").await.0, 235);
}

#[tokio::test]
async fn starttls_upgrades_and_restarts_session() {
    let server = TestSmtpServer::builder()
        .require_starttls()
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        530
    );
    assert_eq!(client.command("STARTTLS").await.0, 220);

    let mut client = client.upgrade(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        503
    );
    let (_, ehlo) = client.command("EHLO client.example").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        250
    );
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;
    assert_eq!(client.command(".").await.0, 250);

    let messages = server.wait_for_messages(1, WAIT).await.unwrap();
    assert!(messages[0].tls);
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_first_byte() {
    let server = TestSmtpServer::builder()
        .implicit_tls()
        .start()
        .await
        .unwrap();
    assert!(
        server.url().starts_with("smtps://127.0.0.1:"),
        "{}",
        server.url()
    );

    let mut client = Client::connect_implicit_tls(&server).await;
    assert_eq!(client.reply().await.0, 220);
    let (_, ehlo) = client.command("EHLO client.example").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    client.command("MAIL FROM:<billing@company.example>").await;
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody").await;
    assert_eq!(client.command(".").await.0, 250);

    let messages = server.wait_for_messages(1, WAIT).await.unwrap();
    assert!(messages[0].tls);
}

#[tokio::test]
async fn smtputf8_parameter_rejected_when_not_advertised() {
    let server = TestSmtpServer::builder()
        .smtputf8(false)
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example> SMTPUTF8")
            .await
            .0,
        555
    );
}

#[tokio::test]
async fn non_ascii_recipient_needs_smtputf8_parameter() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;
    assert_eq!(
        client
            .command("RCPT TO:<stanisław.wójcik@wp.example>")
            .await
            .0,
        553
    );
    client.command("RSET").await;

    client
        .command("MAIL FROM:<billing@company.example> SMTPUTF8")
        .await;
    assert_eq!(
        client
            .command("RCPT TO:<stanisław.wójcik@wp.example>")
            .await
            .0,
        250
    );
}

#[tokio::test]
async fn size_parameter_above_maximum_is_rejected() {
    let server = TestSmtpServer::builder()
        .max_size(100)
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example> SIZE=101")
            .await
            .0,
        552
    );
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example> SIZE=100")
            .await
            .0,
        250
    );
}

#[tokio::test]
async fn rset_clears_transaction() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;
    client.command("RCPT TO:<anna@customer.example>").await;
    assert_eq!(client.command("RSET").await.0, 250);
    assert_eq!(client.command("DATA").await.0, 503);
    assert_eq!(client.command("NOOP").await.0, 250);
}

#[tokio::test]
async fn wait_for_messages_times_out_with_counts() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let error = server
        .wait_for_messages(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TestSmtpError::WaitTimedOut {
                expected: 1,
                received: 0,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(server.connection_count(), 0);
}

#[tokio::test]
async fn scripted_stage_closes_connection_without_reply() {
    for stage in [
        Stage::Ehlo,
        Stage::MailFrom,
        Stage::RcptTo,
        Stage::Data,
        Stage::Quit,
    ] {
        let server = TestSmtpServer::builder()
            .on(stage, Action::close())
            .start()
            .await
            .unwrap();
        let mut client = Client::connect(&server).await;
        assert_eq!(client.reply().await.0, 220, "{stage:?}");
        let transaction = [
            (Stage::Ehlo, "EHLO client.example"),
            (Stage::MailFrom, "MAIL FROM:<billing@company.example>"),
            (Stage::RcptTo, "RCPT TO:<anna@customer.example>"),
            (Stage::Data, "DATA"),
        ];
        let steps: Vec<(Stage, &str)> = match stage {
            Stage::Quit => vec![transaction[0], (Stage::Quit, "QUIT")],
            _ => transaction.to_vec(),
        };
        for (step, line) in steps {
            if step == stage {
                client.send(line).await;
                break;
            }
            client.command(line).await;
        }
        assert!(client.is_closed().await, "{stage:?}");
    }
}

#[tokio::test]
async fn scripted_greeting_close_sends_nothing() {
    let server = TestSmtpServer::builder()
        .on(Stage::Greeting, Action::close())
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&server).await;
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn scripted_ehlo_reply_replaces_capabilities() {
    let server = TestSmtpServer::builder()
        .on(Stage::Ehlo, Action::reply(554, "5.7.1 go away"))
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&server).await;
    client.reply().await;
    assert_eq!(
        client.command("EHLO client.example").await,
        (554, "5.7.1 go away".to_owned())
    );
    // EHLO failed, so MAIL is refused as if none was sent.
    assert_eq!(
        client
            .command("MAIL FROM:<billing@company.example>")
            .await
            .0,
        503
    );
}

#[tokio::test]
async fn on_first_applies_then_falls_back() {
    let server = TestSmtpServer::builder()
        .on_first(Stage::MailFrom, 1, Action::reply(451, "4.3.0 try later"))
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    let mail = "MAIL FROM:<billing@company.example>";
    assert_eq!(client.command(mail).await.0, 451);
    assert_eq!(client.command(mail).await.0, 250);
}

#[tokio::test]
async fn rcpt_rule_per_address_counts_across_connections() {
    let server = TestSmtpServer::builder()
        .on_rcpt_first(
            "lee@customer.example",
            1,
            Action::reply(450, "4.2.0 mailbox busy"),
        )
        .on(Stage::RcptTo, Action::reply(251, "2.1.5 will forward"))
        .start()
        .await
        .unwrap();
    for expected_lee in [450, 251] {
        let mut client = Client::greeted(&server).await;
        client.command("MAIL FROM:<billing@company.example>").await;
        assert_eq!(
            client.command("RCPT TO:<LEE@customer.example>").await.0,
            expected_lee
        );
        assert_eq!(
            client.command("RCPT TO:<anna@customer.example>").await.0,
            251
        );
    }
}

#[tokio::test]
async fn scripted_reply_after_delay() {
    let delay = Duration::from_millis(300);
    let server = TestSmtpServer::builder()
        .on(
            Stage::Rset,
            Action::reply(421, "4.4.2 closing").after(delay),
        )
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    let started = Instant::now();
    assert_eq!(client.command("RSET").await.0, 421);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
}

#[tokio::test]
async fn scripted_starttls_refusal_keeps_plain_session() {
    let server = TestSmtpServer::builder()
        .starttls()
        .on(
            Stage::StartTls,
            Action::reply(454, "4.7.0 TLS not available"),
        )
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(client.command("STARTTLS").await.0, 454);
    assert_eq!(client.command("NOOP").await.0, 250);
}

#[tokio::test]
async fn scripted_auth_reply_skips_exchange() {
    let server = TestSmtpServer::builder()
        .credentials("billing", "secret")
        .on(Stage::Auth, Action::reply(454, "4.7.0 try again later"))
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(
        client.command("AUTH PLAIN AGJpbGxpbmcAc2VjcmV0").await.0,
        454
    );
}

#[tokio::test]
async fn scripted_data_end_close_stores_message() {
    let server = TestSmtpServer::builder()
        .on(
            Stage::DataEnd,
            Action::close().after(Duration::from_millis(50)),
        )
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    client.command("MAIL FROM:<billing@company.example>").await;
    client.command("RCPT TO:<anna@customer.example>").await;
    client.command("DATA").await;
    client.send("Subject: x\r\n\r\nbody\r\n.").await;
    assert!(client.is_closed().await);
    let rejected = server.rejected_messages();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].final_reply, None);
}

#[tokio::test]
async fn messages_record_connection_and_time() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let before = Instant::now();
    for _ in 0..2 {
        let mut client = Client::greeted(&server).await;
        client.command("MAIL FROM:<billing@company.example>").await;
        client.command("RCPT TO:<anna@customer.example>").await;
        client.command("DATA").await;
        assert_eq!(client.command("Subject: x\r\n\r\nbody\r\n.").await.0, 250);
    }
    let messages = server.wait_for_messages(2, WAIT).await.unwrap();
    assert_eq!(messages[0].connection_number, 1);
    assert_eq!(messages[1].connection_number, 2);
    assert!(messages[0].received_at >= before);
    assert!(messages[1].received_at >= messages[0].received_at);
}

#[tokio::test]
async fn open_connections_are_counted() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let first = Client::greeted(&server).await;
    let mut second = Client::greeted(&server).await;
    assert_eq!(server.open_connections(), 2);
    drop(first);
    second.command("QUIT").await;
    server.wait_for_open_connections(0, WAIT).await.unwrap();
    assert_eq!(server.max_open_connections(), 2);
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn close_idle_connections_drops_waiting_sessions() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let mut client = Client::greeted(&server).await;
    server.close_idle_connections();
    assert!(client.is_closed().await);
    server.wait_for_open_connections(0, WAIT).await.unwrap();
}

#[tokio::test]
async fn idle_timeout_closes_with_421() {
    let server = TestSmtpServer::builder()
        .idle_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut client = Client::greeted(&server).await;
    assert_eq!(client.reply().await.0, 421);
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn wait_for_open_connections_times_out_with_count() {
    let server = TestSmtpServer::builder().start().await.unwrap();
    let _client = Client::greeted(&server).await;
    let error = server
        .wait_for_open_connections(0, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TestSmtpError::OpenConnectionsTimedOut { open: 1, .. }
        ),
        "{error}"
    );
}
