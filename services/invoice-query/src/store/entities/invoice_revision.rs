//! `iq_invoice_revisions`: the full content of every revision of every invoice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "iq_invoice_revisions")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i32,
    pub(crate) invoice_id: i32,
    pub(crate) revision: i32,
    /// The revision's canonical JSON, the text that `content_sha256` hashes.
    pub(crate) content_json: String,
    pub(crate) content_sha256: String,
    pub(crate) imported_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
