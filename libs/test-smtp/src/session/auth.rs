//! AUTH PLAIN (RFC 4616) and AUTH LOGIN, checked against the script's credentials.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Flow, Session};
use crate::connection::{Connection, Line};
use crate::script::{Reply, Stage};

enum Attempt {
    Credentials { username: String, password: String },
    Cancelled,
    Malformed,
    Closed,
}

/// Formats the AUTH command for the command log: the mechanism, never the credentials.
pub(super) fn redact(argument: &str) -> String {
    let mut words = argument.split_whitespace();
    let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
    match words.next() {
        Some(_) => format!("AUTH {mechanism} <credentials>"),
        None => format!("AUTH {mechanism}"),
    }
}

impl Session<'_> {
    pub(super) async fn auth(
        &mut self,
        connection: &mut Connection,
        argument: &str,
    ) -> std::io::Result<Flow> {
        if let Some(action) = self.scripted(Stage::Auth, None) {
            let normal = Reply::new(235, "2.7.0 authentication succeeded");
            let sent = self
                .respond_with(connection, Stage::Auth, Some(action), normal)
                .await?;
            let Some(reply) = sent else {
                return Ok(Flow::Close);
            };
            if reply.code == 235 {
                let username = self.script().credentials.as_ref().map(|(user, _)| user);
                self.authenticated_as = Some(username.cloned().unwrap_or_default());
            }
            return Ok(Flow::Continue);
        }
        let Some((username, password)) = &self.script().credentials else {
            connection.reply(502, "5.5.1 AUTH not offered").await?;
            return Ok(Flow::Continue);
        };
        if self.authenticated_as.is_some() || self.transaction.is_some() {
            connection.reply(503, "5.5.1 AUTH not allowed now").await?;
            return Ok(Flow::Continue);
        }
        let mut words = argument.split_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial_response = words.next();
        let attempt = match mechanism.as_str() {
            "PLAIN" => plain(connection, initial_response).await?,
            "LOGIN" => login(connection, initial_response).await?,
            _ => {
                connection
                    .reply(504, "5.5.4 unrecognized authentication mechanism")
                    .await?;
                return Ok(Flow::Continue);
            }
        };

        let reply = match attempt {
            Attempt::Closed => return Ok(Flow::Close),
            Attempt::Cancelled => Reply::new(501, "5.7.0 authentication cancelled"),
            Attempt::Malformed => Reply::new(501, "5.5.2 cannot decode the AUTH response"),
            Attempt::Credentials {
                username: given_user,
                password: given_password,
            } if given_user == *username && given_password == *password => {
                self.authenticated_as = Some(given_user);
                Reply::new(235, "2.7.0 authentication succeeded")
            }
            Attempt::Credentials { .. } => {
                Reply::new(535, "5.7.8 authentication credentials invalid")
            }
        };
        connection.send(&reply).await?;
        Ok(Flow::Continue)
    }
}

/// PLAIN: one base64 response `authzid NUL authcid NUL password`.
async fn plain(connection: &mut Connection, initial: Option<&str>) -> std::io::Result<Attempt> {
    let response = match initial {
        Some("=") => String::new(),
        Some(response) => response.to_owned(),
        None => match challenge(connection, "").await? {
            Ok(response) => response,
            Err(attempt) => return Ok(attempt),
        },
    };
    let Some(decoded) = decode(&response) else {
        return Ok(Attempt::Malformed);
    };
    let mut fields = decoded.split('\0');
    let (Some(_authzid), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(Attempt::Malformed);
    };
    Ok(Attempt::Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// LOGIN: the user name and then the password, each base64 after a 334 prompt.
async fn login(connection: &mut Connection, initial: Option<&str>) -> std::io::Result<Attempt> {
    let username = match initial {
        Some(response) => response.to_owned(),
        None => match challenge(connection, &BASE64.encode("Username:")).await? {
            Ok(response) => response,
            Err(attempt) => return Ok(attempt),
        },
    };
    let password = match challenge(connection, &BASE64.encode("Password:")).await? {
        Ok(response) => response,
        Err(attempt) => return Ok(attempt),
    };
    match (decode(&username), decode(&password)) {
        (Some(username), Some(password)) => Ok(Attempt::Credentials { username, password }),
        _ => Ok(Attempt::Malformed),
    }
}

/// Sends `334 prompt` and reads the client's response line.
async fn challenge(
    connection: &mut Connection,
    prompt: &str,
) -> std::io::Result<Result<String, Attempt>> {
    connection.reply(334, prompt).await?;
    let line = match connection.read_line().await? {
        Line::Complete(line) => line,
        Line::TooLong => return Ok(Err(Attempt::Malformed)),
        Line::Closed => return Ok(Err(Attempt::Closed)),
    };
    let text = String::from_utf8_lossy(&line).trim().to_owned();
    if text == "*" {
        return Ok(Err(Attempt::Cancelled));
    }
    Ok(Ok(text))
}

fn decode(text: &str) -> Option<String> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}
