//! The size and age of the deferred queue, for the metrics.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::delivery;
use super::{Store, StoreError};
use crate::model::DeliveryState;

impl Store {
    /// Counts the deferred deliveries and returns the creation time of the oldest one.
    pub(crate) async fn deferred_summary(
        &self,
    ) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let deferred = || {
            delivery::Entity::find()
                .filter(delivery::Column::State.eq(DeliveryState::Deferred.as_str()))
        };
        let count = deferred().count(&self.db).await?;
        let oldest: Option<DateTime<Utc>> = deferred()
            .select_only()
            .column(delivery::Column::CreatedAt)
            .order_by_asc(delivery::Column::CreatedAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok((count, oldest))
    }
}
