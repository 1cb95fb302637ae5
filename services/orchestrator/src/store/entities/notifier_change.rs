//! `or_notifier_changes`: every change of a customer's notifier, with who, when, why and the
//! notifier before and after.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_notifier_changes")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_code: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTimeUtc,
    /// The notifier before the change as JSON; NULL when the customer had none.
    pub old_json: Option<String>,
    pub new_json: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
