//! mail-delivery against the scriptable SMTP fixture and a real SMTP server, over loopback
//! sockets: how each reply at each stage is classified, per-recipient results and retries,
//! the SIZE limit, pooled connections, the relay's limits, and the TLS and credential policy.

mod classification;
mod limits;
mod pool;
mod real_server;
mod recipients;
mod security;
mod size;
mod support;
