//! Leases: a replica works on a delivery only while it holds the row's lease (owner and
//! expiry), renews its leases while it works, and takes over deliveries whose lease expired
//! because their replica died.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    TransactionTrait,
};

use super::entities::{batch, delivery};
use super::{Store, StoreError, delivery_from_row};
use crate::model::{BatchStatus, Delivery, DeliveryState};

/// States a replica is working on; a row in one of them has a lease.
const IN_FLIGHT: [DeliveryState; 3] = [
    DeliveryState::Pending,
    DeliveryState::Rendered,
    DeliveryState::Submitting,
];

impl Store {
    /// Claims up to `limit` deferred deliveries due at `now`: each becomes `pending` and leased
    /// to this replica. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several replicas claim at
    /// once without waiting for each other or claiming one row twice. On SQLite the store's
    /// single connection makes the claims one at a time.
    pub(crate) async fn claim_due_deferred(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let transaction = self.db.begin().await?;
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::State.eq(DeliveryState::Deferred.as_str()))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(delivery::Column::NextAttemptAt)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_tuple()
            .all(&transaction)
            .await?;
        if ids.is_empty() {
            transaction.commit().await?;
            return Ok(Vec::new());
        }
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                Expr::value(DeliveryState::Pending.as_str()),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(Utc::now()))
            .col_expr(
                delivery::Column::LeaseOwner,
                Expr::value(self.owner.clone()),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Utc::now() + self.lease),
            )
            .filter(delivery::Column::Id.is_in(ids.clone()))
            .filter(delivery::Column::State.eq(DeliveryState::Deferred.as_str()))
            .exec(&transaction)
            .await?;
        let rows = delivery::Entity::find()
            .filter(delivery::Column::Id.is_in(ids))
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .filter(delivery::Column::State.eq(DeliveryState::Pending.as_str()))
            .order_by_asc(delivery::Column::NextAttemptAt)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    /// Extends every lease this replica holds, on deliveries and on running batches; returns
    /// how many deliveries it holds.
    ///
    /// On PostgreSQL a delivery row that a transaction has locked, such as a group of
    /// delivery writes (`commit.rs`), keeps its lease until the next renewal. Waiting for it
    /// could deadlock: the group locks its rows one by one while this statement locks all of
    /// them in the order of the table.
    pub(crate) async fn renew_leases(&self) -> Result<u64, StoreError> {
        let until = Utc::now() + self.lease;
        let states: Vec<&str> = IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        let unlocked = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .filter(delivery::Column::State.is_in(states))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_query();
        let deliveries = delivery::Entity::update_many()
            .col_expr(delivery::Column::LeaseUntil, Expr::value(until))
            .filter(delivery::Column::Id.in_subquery(unlocked))
            .exec(&self.db)
            .await?;
        batch::Entity::update_many()
            .col_expr(batch::Column::LeaseUntil, Expr::value(until))
            .filter(batch::Column::LeaseOwner.eq(&self.owner))
            .filter(batch::Column::Status.eq(BatchStatus::Running.as_str()))
            .exec(&self.db)
            .await?;
        Ok(deliveries.rows_affected)
    }

    /// Takes over in-flight deliveries that no live replica works on, so the caller can settle
    /// them: with `all`, every one (a process starting on SQLite is the only one), otherwise
    /// those whose lease expired or that never had one.
    pub(crate) async fn take_over_abandoned(&self, all: bool) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let states: Vec<&str> = IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        let abandoned = || {
            if all {
                Condition::all()
            } else {
                Condition::any()
                    .add(delivery::Column::LeaseOwner.is_null())
                    .add(delivery::Column::LeaseUntil.is_null())
                    .add(delivery::Column::LeaseUntil.lt(now))
            }
        };
        let candidates: Vec<(String, String, Option<String>)> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .column(delivery::Column::State)
            .column(delivery::Column::LeaseOwner)
            .filter(delivery::Column::State.is_in(states.clone()))
            .filter(abandoned())
            .order_by_asc(delivery::Column::CreatedAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut taken = Vec::new();
        for (id, state, previous_owner) in candidates {
            // Conditional on the state and owner read above, so of two replicas taking over at
            // once only one wins each row. A row whose old owner moved it on in the meantime
            // (to `submitting`, say) is left to the next round, which settles it by its new
            // state.
            let owner_unchanged = match &previous_owner {
                Some(owner) => delivery::Column::LeaseOwner.eq(owner.clone()),
                None => delivery::Column::LeaseOwner.is_null(),
            };
            let result = delivery::Entity::update_many()
                .col_expr(
                    delivery::Column::LeaseOwner,
                    Expr::value(self.owner.clone()),
                )
                .col_expr(
                    delivery::Column::LeaseUntil,
                    Expr::value(Utc::now() + self.lease),
                )
                .filter(delivery::Column::Id.eq(&id))
                .filter(delivery::Column::State.eq(state))
                .filter(owner_unchanged)
                .filter(abandoned())
                .exec(&self.db)
                .await?;
            if result.rows_affected == 1
                && let Some(row) = delivery::Entity::find_by_id(id).one(&self.db).await?
            {
                taken.push(delivery_from_row(row)?);
            }
        }
        Ok(taken)
    }

    /// Returns the in-flight deliveries leased to this replica, oldest first: those its tasks
    /// work on, and those it claimed but no task finished, whose leases `renew_leases` keeps
    /// renewing all the same.
    pub(crate) async fn leased_in_flight(&self) -> Result<Vec<Delivery>, StoreError> {
        let states: Vec<&str> = IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        let rows = delivery::Entity::find()
            .filter(delivery::Column::State.is_in(states))
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .order_by_asc(delivery::Column::CreatedAt)
            .order_by_asc(delivery::Column::Id)
            .all(&self.db)
            .await?;
        rows.into_iter().map(delivery_from_row).collect()
    }

    /// Returns delivery `id` if it is in flight and leased to this replica, read now.
    pub(crate) async fn leased_in_flight_delivery(
        &self,
        id: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let states: Vec<&str> = IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        let row = delivery::Entity::find_by_id(id.to_owned())
            .filter(delivery::Column::State.is_in(states))
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .one(&self.db)
            .await?;
        row.map(delivery_from_row).transpose()
    }

    /// Ends this replica's leases on the deliveries `ids` that have not reached `submitting`,
    /// so other replicas take them over at once. Returns how many it released. A row locked
    /// by a transaction is left out, as in `renew_leases`. Its lease runs out instead.
    pub(crate) async fn release_leases(&self, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let states = [
            DeliveryState::Pending.as_str(),
            DeliveryState::Rendered.as_str(),
        ];
        let unlocked = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::Id.is_in(ids.to_vec()))
            .filter(delivery::Column::LeaseOwner.eq(&self.owner))
            .filter(delivery::Column::State.is_in(states))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_query();
        let result = delivery::Entity::update_many()
            .col_expr(delivery::Column::LeaseUntil, Expr::value(Utc::now()))
            .filter(delivery::Column::Id.in_subquery(unlocked))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}
