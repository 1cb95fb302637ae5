//! sea-orm entities of the orchestrator's tables.

pub(crate) mod batch;
pub(crate) mod batch_item;
pub(crate) mod delivery;
pub(crate) mod document;
pub(crate) mod notifier;
pub(crate) mod notifier_change;
