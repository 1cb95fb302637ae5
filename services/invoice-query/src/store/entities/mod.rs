//! sea-orm entities of the invoice-query tables.

pub(crate) mod contact;
pub(crate) mod customer;
pub(crate) mod invoice;
pub(crate) mod invoice_revision;
