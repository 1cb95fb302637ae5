//! The only module that touches generated proto types: the gRPC server and the calls to the
//! other services.

mod convert;
mod notifiers;
mod server;
mod upstream;
mod validate;

pub(crate) use server::add_service;
pub(crate) use upstream::{RawInvoice, Upstream};
