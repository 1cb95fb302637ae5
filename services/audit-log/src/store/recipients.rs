//! The `al_entry_recipients` table: every To, Cc and Bcc address of an entry, lowercased,
//! so the recipient filter is an index look-up.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "al_entry_recipients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub entry_sequence: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub address_lowercase: String,
    /// `to`, `cc` or `bcc`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
