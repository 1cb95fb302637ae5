//! The DATA command: reads the message to the final dot, undoes dot-stuffing, stores the
//! message and replies as the script sets up.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::{Flow, Session};
use crate::connection::{Connection, Line};
use crate::script::{Action, Reply, Response, Stage};
use crate::server::ReceivedMessage;

/// Message bytes kept per message; past this the server reads on but replies 552.
const MAX_STORED_BYTES: usize = 64 << 20;

static QUEUE_ID: AtomicU32 = AtomicU32::new(0x4F2A);

struct Body {
    data: Vec<u8>,
    truncated: bool,
}

impl Session<'_> {
    pub(super) async fn data(&mut self, connection: &mut Connection) -> std::io::Result<Flow> {
        let Some(transaction) = self.transaction.take() else {
            connection.reply(503, "5.5.1 send MAIL first").await?;
            return Ok(Flow::Continue);
        };
        if transaction.rcpt_to.is_empty() {
            self.transaction = Some(transaction);
            connection.reply(554, "5.5.1 no valid recipients").await?;
            return Ok(Flow::Continue);
        }
        let start = Reply::new(354, "end data with <CR><LF>.<CR><LF>");
        let sent = self.respond(connection, Stage::Data, None, start).await?;
        match sent {
            None => return Ok(Flow::Close),
            Some(reply) if reply.code != 354 => {
                self.transaction = Some(transaction);
                return Ok(Flow::Continue);
            }
            Some(_) => {}
        }

        let Some(body) = read_body(connection).await? else {
            return Ok(Flow::Close);
        };
        let mut message = ReceivedMessage {
            mail_from: transaction.mail_from,
            mail_parameters: transaction.parameters,
            rcpt_to: transaction.rcpt_to,
            data: body.data,
            ehlo_name: self.ehlo_name.clone(),
            authenticated_as: self.authenticated_as.clone(),
            tls: connection.tls,
            final_reply: None,
            connection_number: self.connection_number,
            received_at: Instant::now(),
        };

        let normal = self.data_end_reply(
            body.truncated,
            message.data.len(),
            transaction.declared_size,
        );
        // A message over the size limit gets 552, whatever the script sets.
        let action = match normal.code {
            552 => None,
            _ => self.scripted(Stage::DataEnd, None),
        };
        if action
            .as_ref()
            .is_some_and(|action| action.response == Response::Close)
        {
            if let Some(delay) = self.script().delay(Stage::DataEnd) {
                tokio::time::sleep(delay).await;
            }
            self.context.store.record_message(message);
            tokio::time::sleep(action.map(|action| action.delay).unwrap_or_default()).await;
            return Ok(Flow::Close);
        }
        message.final_reply = Some(match &action {
            Some(Action {
                response: Response::Reply(reply),
                ..
            }) => reply.clone(),
            _ => normal.clone(),
        });
        self.context.store.record_message(message);
        self.respond_with(connection, Stage::DataEnd, action, normal)
            .await?;
        Ok(Flow::Continue)
    }

    fn data_end_reply(&self, truncated: bool, size: usize, declared_size: Option<usize>) -> Reply {
        let script = self.script();
        let too_big = truncated || script.max_size.is_some_and(|max_size| size > max_size);
        if too_big {
            return Reply::new(552, "5.3.4 message size exceeds fixed maximum message size");
        }
        let queue_id = QUEUE_ID.fetch_add(1, Ordering::Relaxed);
        let note = match declared_size {
            Some(declared) if declared < size => {
                format!(" (declared SIZE={declared} is too small)")
            }
            _ => String::new(),
        };
        Reply::new(250, format!("2.0.0 Ok: queued as {queue_id:X}{note}"))
    }
}

/// Reads lines up to the lone `.`; returns `None` when the client closed the connection first.
async fn read_body(connection: &mut Connection) -> std::io::Result<Option<Body>> {
    let mut body = Body {
        data: Vec::new(),
        truncated: false,
    };
    loop {
        let line = match connection.read_line().await? {
            Line::Complete(line) => line,
            Line::TooLong => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "message line longer than the server's line limit",
                ));
            }
            Line::Closed => return Ok(None),
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(body));
        }
        // RFC 5321 section 4.5.2: a line that starts with a dot had one more dot added.
        let unstuffed = line.strip_prefix(b".".as_slice()).unwrap_or(&line);
        if body.data.len() + unstuffed.len() > MAX_STORED_BYTES {
            body.truncated = true;
        } else {
            body.data.extend_from_slice(unstuffed);
        }
    }
}
