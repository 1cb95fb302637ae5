//! `or_batch_items`: which deliveries a batch handled and how each one ended in that batch.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_batch_items")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: String,
    pub delivery_id: String,
    pub invoice_number: String,
    pub state: String,
    pub reason: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
