//! `iq_contacts`: the contacts of a customer, in the order the ERP sent them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "iq_contacts")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i32,
    pub(crate) customer_id: i32,
    /// 0-based position in the customer's `contacts` array.
    pub(crate) position: i32,
    pub(crate) name: String,
    pub(crate) email: String,
    /// `to`, `cc`, `bcc` or `none`.
    pub(crate) invoice_role: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {
    #[sea_orm(
        belongs_to = "super::customer::Entity",
        from = "Column::CustomerId",
        to = "super::customer::Column::Id"
    )]
    Customer,
}

impl Related<super::customer::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
