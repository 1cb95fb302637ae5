//! Access control: who a caller is (bearer token or client certificate), its role, and the
//! roles each RPC admits.
//!
//! Tokens are configured as SHA-256 hashes, so the config file and the environment of a
//! server never hold a usable token. A presented token is hashed and looked up; comparing
//! hashes leaks nothing useful about the token itself.

mod access;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use access::{HEALTH_PATH_PREFIX, RPC_ACCESS, allowed_roles};

/// What a caller may do. `viewer` < `operator` < `admin` for people and the ERP; `service`
/// is the identity the services use when they call each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: the email log, previews, batch status and lists, notifiers, invoices.
    Viewer,
    /// Viewer, plus running a batch and resending an invoice.
    Operator,
    /// Operator, plus changing notifiers and importing invoices.
    Admin,
    /// Calls between services: rendering, sending mail, appending to the email log.
    Service,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Whether this role has every right of `other` among viewer, operator and admin. The
    /// service role is only ever at least itself.
    pub fn is_at_least(self, other: Role) -> bool {
        match (self, other) {
            (Role::Service, _) | (_, Role::Service) => self == other,
            _ => self >= other,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: expected viewer, operator, admin or service")
            })
    }
}

/// A secret read from the environment or a file. `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One accepted bearer token: its role and the hex SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub role: Role,
    /// 64 hex digits: the SHA-256 of the token as the client sends it.
    pub sha256: String,
    /// Shown in logs and recorded as the actor; unset uses the role and the hash's first
    /// eight hex digits, such as `operator-1a2b3c4d`.
    #[serde(default)]
    pub name: Option<String>,
}

impl TokenEntry {
    /// The name a caller with this token has in logs and in the email log.
    pub fn caller_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("{}-{}", self.role, &self.sha256[..8.min(self.sha256.len())]),
        }
    }
}

/// Parses `INVOICER_AUTH_TOKENS`: comma-separated `ROLE:SHA256_HEX` entries. An error names
/// the entry by its 1-based position and never repeats the value.
pub fn parse_token_list(list: &str) -> Result<Vec<TokenEntry>, (usize, String)> {
    let mut entries = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        let position = index + 1;
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((role, hash)) = entry.split_once(':') else {
            return Err((
                position,
                "expected ROLE:SHA256_HEX, such as operator:<64 hex digits>; `invoicer token new --role ROLE` prints one".to_owned(),
            ));
        };
        let role = role.trim().parse::<Role>().map_err(|e| (position, e))?;
        let sha256 = hash.trim().to_ascii_lowercase();
        check_sha256_hex(&sha256)
            .map_err(|message| (position, format!("role {role}: {message}")))?;
        entries.push(TokenEntry {
            role,
            sha256,
            name: None,
        });
    }
    Ok(entries)
}

fn check_sha256_hex(value: &str) -> Result<(), String> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected the token's SHA-256 as 64 hex digits, found {} characters",
            value.len()
        ));
    }
    Ok(())
}

/// Returns the hex SHA-256 of `token`, as a `TokenEntry` stores it.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Generates a token of 32 random bytes from the operating system, as 64 hex digits.
pub fn generate_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "server.auth_token is no longer supported because it kept the token in plain text: run `invoicer token new --role admin`, add the ROLE:SHA256_HEX line it prints to INVOICER_AUTH_TOKENS (or as a [[server.tokens]] entry), remove server.auth_token and give clients the token in INVOICER_TOKEN"
    )]
    PlainTokenConfigured,
    #[error("invalid server.tokens entry {position} (role {role}): {message}")]
    InvalidTokenEntry {
        position: usize,
        role: Role,
        message: String,
    },
    #[error("cannot read {key} file {path}: {cause}")]
    ReadTokenFile {
        key: &'static str,
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("{key} file {path} is empty; write the token on its first line")]
    EmptyTokenFile {
        key: &'static str,
        path: std::path::PathBuf,
    },
    #[error("cannot generate a random token: {0}")]
    Random(String),
}

/// Reads a token from the first line of `path`; `key` names the config key in errors.
pub fn read_token_file(key: &'static str, path: &std::path::Path) -> Result<Secret, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|cause| AuthError::ReadTokenFile {
        key,
        path: path.to_owned(),
        cause,
    })?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(AuthError::EmptyTokenFile {
            key,
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(token))
}

/// The authenticated caller of a request, as the server's access layer found it. Handlers
/// read it with [`Caller::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// Token name, `ROLE-FINGERPRINT`, `cert:NAME` or `anonymous`; never the token.
    pub name: String,
    /// False for [`Caller::anonymous`].
    pub authenticated: bool,
}

impl Caller {
    /// The caller on a server without any token or certificate role configured: such a server
    /// listens on loopback only and admits every request.
    pub fn anonymous() -> Caller {
        Caller {
            role: Role::Admin,
            name: "anonymous".to_owned(),
            authenticated: false,
        }
    }

    /// Returns the actor to record for a change this caller makes, given the name the client
    /// claimed (such as `--actor jane`). The authenticated name comes first and a differing
    /// claim is kept beside it; only an anonymous caller is recorded by its claim alone.
    pub fn actor(&self, claimed: &str) -> String {
        let claimed = claimed.trim();
        match (self.authenticated, claimed.is_empty()) {
            (false, false) => claimed.to_owned(),
            (true, false) if claimed != self.name => format!("{} (claimed: {claimed})", self.name),
            _ => self.name.clone(),
        }
    }

    /// Returns the caller the access layer stored in `request`, or [`Caller::anonymous`] when
    /// the request did not pass through it (a server built without the kit).
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::anonymous)
    }
}

/// The reason a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credential, or one the server does not know.
    Unauthenticated(String),
    /// A known caller whose role the RPC does not admit.
    PermissionDenied { caller: Caller, message: String },
}

impl Denial {
    pub fn into_status(self) -> tonic::Status {
        match self {
            Denial::Unauthenticated(message) => tonic::Status::unauthenticated(message),
            Denial::PermissionDenied { message, .. } => tonic::Status::permission_denied(message),
        }
    }
}

/// The configured credentials: token hashes and client-certificate names, each with a role.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    tokens: HashMap<[u8; 32], Caller>,
    certificate_roles: BTreeMap<String, Role>,
}

impl AccessPolicy {
    /// Builds the policy from `tokens`, `certificate_roles` and the service token that this
    /// process sends and accepts with role `service`.
    pub fn new(
        tokens: &[TokenEntry],
        certificate_roles: &BTreeMap<String, Role>,
        service_token: &Secret,
    ) -> Result<AccessPolicy, AuthError> {
        let mut hashes = HashMap::new();
        for (index, entry) in tokens.iter().enumerate() {
            let invalid = |message: String| AuthError::InvalidTokenEntry {
                position: index + 1,
                role: entry.role,
                message,
            };
            let hex_digest = entry.sha256.to_ascii_lowercase();
            check_sha256_hex(&hex_digest).map_err(invalid)?;
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&hex_digest, &mut digest)
                .map_err(|e| invalid(format!("invalid hex: {e}")))?;
            let caller = Caller {
                role: entry.role,
                name: entry.caller_name(),
                authenticated: true,
            };
            hashes.insert(digest, caller);
        }
        let service_digest: [u8; 32] = Sha256::digest(service_token.expose().as_bytes()).into();
        hashes.entry(service_digest).or_insert(Caller {
            role: Role::Service,
            name: "service".to_owned(),
            authenticated: true,
        });
        Ok(AccessPolicy {
            tokens: hashes,
            certificate_roles: certificate_roles.clone(),
        })
    }

    /// Identifies the caller by its bearer token or, without one, by its client certificate's
    /// names (common name first, then DNS names).
    pub fn identify(
        &self,
        authorization: Option<&[u8]>,
        certificate_names: &[String],
    ) -> Result<Caller, Denial> {
        if let Some(value) = authorization {
            return self.identify_token(value);
        }
        if certificate_names.is_empty() {
            return Err(Denial::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>` (the CLI reads INVOICER_TOKEN) or a client certificate".to_owned(),
            ));
        }
        for name in certificate_names {
            if let Some(role) = self.certificate_roles.get(name) {
                return Ok(Caller {
                    role: *role,
                    name: format!("cert:{name}"),
                    authenticated: true,
                });
            }
        }
        Err(Denial::Unauthenticated(format!(
            "client certificate {} maps to no role; add one of its names to server.tls.client_roles or send a bearer token",
            certificate_names.join(", ")
        )))
    }

    fn identify_token(&self, value: &[u8]) -> Result<Caller, Denial> {
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Denial::Unauthenticated(
                    "malformed authorization header: expected `Bearer <token>`".to_owned(),
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.get(&digest).cloned().ok_or_else(|| {
            Denial::Unauthenticated(
                "unknown bearer token: the server has no entry with its SHA-256; check INVOICER_TOKEN"
                    .to_owned(),
            )
        })
    }

    /// Checks that `caller` may call the RPC at `path`. An RPC missing from the access table
    /// is denied to everyone.
    pub fn authorize(path: &str, caller: &Caller) -> Result<(), Denial> {
        let Some(roles) = allowed_roles(path) else {
            return Err(Denial::PermissionDenied {
                caller: caller.clone(),
                message: format!(
                    "{path} is not in the server's access table, so no role may call it"
                ),
            });
        };
        if roles.contains(&caller.role) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(Denial::PermissionDenied {
            caller: caller.clone(),
            message: format!(
                "{path} needs role {}; caller {} has role {}",
                names.join(" or "),
                caller.name,
                caller.role
            ),
        })
    }
}

#[cfg(test)]
mod tests;
