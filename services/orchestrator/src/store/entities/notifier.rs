//! `or_notifiers`: each customer's own notifier. A NULL column inherits the default notifier.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_notifiers")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_code: String,
    pub enabled: Option<bool>,
    /// JSON array of invoice kind names; an empty array sends every kind.
    pub kinds_json: Option<String>,
    /// JSON arrays of `{name, address}`.
    pub to_json: Option<String>,
    pub cc_json: Option<String>,
    pub bcc_json: Option<String>,
    pub split: Option<String>,
    /// JSON object from language tag to `{subject, text, html}`.
    pub templates_json: String,
    pub updated_at: DateTimeUtc,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
