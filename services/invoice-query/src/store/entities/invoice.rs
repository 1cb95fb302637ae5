//! `iq_invoices`: the latest revision of each invoice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "iq_invoices")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i32,
    #[sea_orm(unique)]
    pub(crate) number: String,
    pub(crate) customer_code: String,
    /// `invoice` or `credit_note`.
    pub(crate) kind: String,
    /// `draft`, `posted` or `void`.
    pub(crate) status: String,
    pub(crate) revision: i32,
    pub(crate) order_number: Option<String>,
    pub(crate) po_number: Option<String>,
    /// RFC 3339 as the ERP sent it.
    pub(crate) issued_at: String,
    pub(crate) issued_at_utc: DateTimeUtc,
    pub(crate) due_date: Option<String>,
    pub(crate) currency: String,
    pub(crate) terms: Option<String>,
    /// JSON array of the lines, amounts as the ERP's strings.
    pub(crate) lines_json: String,
    pub(crate) subtotal: String,
    /// JSON array of the taxes.
    pub(crate) taxes_json: String,
    pub(crate) total: String,
    pub(crate) notes: Option<String>,
    pub(crate) notify_opt_out: bool,
    pub(crate) content_sha256: String,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {
    /// The invoice's customer, by code.
    #[sea_orm(
        belongs_to = "super::customer::Entity",
        from = "Column::CustomerCode",
        to = "super::customer::Column::Code"
    )]
    Customer,
}

impl Related<super::customer::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
