//! `or_documents`: the frozen PDF of each rendered invoice revision.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_documents")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub invoice_number: String,
    pub invoice_revision: i32,
    pub sha256: String,
    pub file_name: String,
    pub page_count: i32,
    #[sea_orm(column_type = "Blob")]
    pub content: Vec<u8>,
    pub created_at: DateTimeUtc,
    /// `DocumentFacts` as JSON; null for a document frozen before the column existed.
    pub facts_json: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
