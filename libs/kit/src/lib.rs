//! The host side of every invoicer service: the plugin trait each service implements, the
//! gRPC server bootstrap (health, reflection, auth, trace propagation, graceful shutdown), the
//! client channels services use to call each other, and configuration loading.

pub mod auth;
pub mod client;
pub mod config;
pub mod plugin;
pub mod server;
pub mod status;
pub mod tls;
pub mod validate;

pub use auth::{Caller, Role};
pub use client::{Channels, GrpcChannel};
pub use config::Config;
pub use plugin::{BoxError, ServiceContext, ServiceName, ServicePlugin, Shutdown, WorkGuard};
