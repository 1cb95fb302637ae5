//! One module per subcommand.

pub(crate) mod batch;
pub(crate) mod demo;
pub(crate) mod import;
pub(crate) mod log;
pub(crate) mod notifier;
pub(crate) mod preview;
pub(crate) mod resend;
pub(crate) mod schedule;
pub(crate) mod serve;
pub(crate) mod token;
