//! `or_batches`: one row per batch run (dry runs are never stored).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_batches")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub business_date: String,
    pub trigger: String,
    pub status: String,
    /// The business date for scheduled batches, NULL for manual ones: a unique index keeps one
    /// scheduled batch per business date.
    #[sea_orm(unique)]
    pub schedule_key: Option<String>,
    pub cutoff: DateTimeUtc,
    pub window_start: DateTimeUtc,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub error: Option<String>,
    /// The replica running the batch, NULL once it ended.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
