//! `iq_customers`: one row per customer code, with its latest content.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "iq_customers")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i32,
    #[sea_orm(unique)]
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) language: Option<String>,
    /// JSON array of the address lines.
    pub(crate) address_json: String,
    pub(crate) tax_id: Option<String>,
    /// SHA-256 of the customer's canonical JSON, contacts included.
    pub(crate) content_sha256: String,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {
    #[sea_orm(has_many = "super::contact::Entity")]
    Contacts,
}

impl Related<super::contact::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Contacts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
