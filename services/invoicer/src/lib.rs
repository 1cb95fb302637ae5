//! The `invoicer` host and command-line client: one binary that serves any set of the five
//! services and talks to them over gRPC.

pub mod cli;
mod client;
mod commands;
pub mod host;
mod output;

pub use cli::run;
