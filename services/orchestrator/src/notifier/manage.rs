//! Reading and changing notifiers: the operations behind GetNotifier, UpdateNotifier,
//! ListNotifiers and ListNotifierChanges.

use chrono::Utc;

use super::{EffectiveNotifier, Notifier, NotifierChange, NotifierUpdate, NotifierWrite};
use crate::engine::Engine;
use crate::error::OrchestratorError;

pub(crate) struct NotifierUpdateRequest {
    pub customer_code: String,
    pub notifier: NotifierUpdate,
    pub actor: String,
    pub reason: String,
}

pub(crate) struct UpdatedNotifier {
    pub own: Notifier,
    pub effective: EffectiveNotifier,
    /// `None` when the stored notifier had these settings already and nothing was recorded.
    pub change: Option<NotifierChange>,
}

/// Returns the trimmed customer code of a notifier that may be changed over gRPC: any
/// customer's, but not the default notifier (empty code), which comes from the config file.
pub(crate) fn writable_notifier_code(customer_code: &str) -> Result<&str, OrchestratorError> {
    let code = customer_code.trim();
    if code.is_empty() {
        return Err(OrchestratorError::FailedPrecondition(
            "the default notifier comes from the config file and cannot be changed over gRPC; edit the [notifier] section of the config file and restart the orchestrator, or name a customer".to_owned(),
        ));
    }
    Ok(code)
}

impl Engine {
    /// Returns the customer's own notifier, if it has one, and the notifier that applies to
    /// it. An empty customer code returns the default notifier as the one that applies.
    pub(crate) async fn get_notifier(
        &self,
        customer_code: &str,
    ) -> Result<(Option<Notifier>, EffectiveNotifier), OrchestratorError> {
        let code = customer_code.trim();
        if code.is_empty() {
            return Ok((None, self.default_notifier.clone()));
        }
        let own = self.store.notifier(code).await?;
        // A stored notifier shows that the customer existed when it was set.
        if own.is_none() {
            self.check_customer(code).await?;
        }
        let effective = EffectiveNotifier::merged(&self.default_notifier, code, own.as_ref());
        Ok((own, effective))
    }

    /// Replaces the customer's own notifier and records the change, both in one transaction.
    /// Settings equal to the stored ones record nothing, so the history lists real changes only.
    pub(crate) async fn update_notifier(
        &self,
        request: NotifierUpdateRequest,
    ) -> Result<UpdatedNotifier, OrchestratorError> {
        let code = writable_notifier_code(&request.customer_code)?;
        let actor = request.actor.trim();
        if actor.is_empty() {
            return Err(OrchestratorError::invalid(
                "actor",
                "the actor is missing; say who makes the change, it is kept in the change history",
            ));
        }
        if request.reason.trim().is_empty() {
            return Err(OrchestratorError::invalid(
                "reason",
                "a reason is required; it is kept in the change history",
            ));
        }
        let notifier = request.notifier.into_notifier(code, actor, Utc::now())?;
        self.check_customer(code).await?;

        let write = self
            .store
            .update_notifier(&notifier, request.reason.trim())
            .await?;
        let (own, change) = match write {
            NotifierWrite::Changed(change) => {
                tracing::info!(customer = %code, actor = %actor, change_id = change.id, "notifier changed");
                (notifier, Some(*change))
            }
            NotifierWrite::Unchanged(stored) => {
                tracing::info!(customer = %code, actor = %actor, "notifier update has the stored settings; nothing recorded");
                (stored, None)
            }
        };
        let effective = EffectiveNotifier::merged(&self.default_notifier, code, Some(&own));
        Ok(UpdatedNotifier {
            own,
            effective,
            change,
        })
    }

    /// Lists every customer's own notifier, by customer code.
    pub(crate) async fn list_notifiers(&self) -> Result<Vec<Notifier>, OrchestratorError> {
        Ok(self.store.notifiers().await?)
    }

    /// Recorded changes newest first, of one customer or, with an empty code, of all. A
    /// customer without changes must exist in invoice-query, so that a mistyped code returns
    /// NotFound instead of an empty history.
    pub(crate) async fn notifier_changes(
        &self,
        customer_code: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<NotifierChange>, OrchestratorError> {
        let code = Some(customer_code.trim()).filter(|code| !code.is_empty());
        let changes = self.store.notifier_changes(code, offset, limit).await?;
        if let Some(code) = code
            && changes.is_empty()
            && offset == 0
        {
            self.check_customer(code).await?;
        }
        Ok(changes)
    }

    async fn check_customer(&self, code: &str) -> Result<(), OrchestratorError> {
        if self.upstream.customer_exists(code).await? {
            return Ok(());
        }
        Err(OrchestratorError::NotFound(format!(
            "customer {code:?} not found in invoice-query; import the customer first or check the code"
        )))
    }
}
