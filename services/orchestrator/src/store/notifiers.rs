//! Customers' own notifiers and the history of their changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use invoicer_domain::email::Mailbox;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::entities::{notifier, notifier_change};
use super::{Store, StoreError, StoredMailbox, corrupt};
use crate::notifier::{MessageTemplate, Notifier, NotifierChange, NotifierWrite, Split};
use crate::upstream::InvoiceKind;

/// A notifier as the change history stores it, before and after each change.
#[derive(Serialize, Deserialize)]
struct StoredNotifier {
    customer_code: String,
    enabled: Option<bool>,
    kinds: Option<Vec<String>>,
    to: Option<Vec<StoredMailbox>>,
    cc: Option<Vec<StoredMailbox>>,
    bcc: Option<Vec<StoredMailbox>>,
    split: Option<String>,
    templates: BTreeMap<String, StoredTemplate>,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

#[derive(Serialize, Deserialize)]
struct StoredTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    html: Option<String>,
}

impl Store {
    pub(crate) async fn notifier(
        &self,
        customer_code: &str,
    ) -> Result<Option<Notifier>, StoreError> {
        let row = notifier::Entity::find_by_id(customer_code.to_owned())
            .one(&self.db)
            .await?;
        row.map(notifier_from_row).transpose()
    }

    /// Returns the own notifiers of the customers in `customer_codes` that have one, with one
    /// query.
    pub(crate) async fn notifiers_of(
        &self,
        customer_codes: &[&str],
    ) -> Result<Vec<Notifier>, StoreError> {
        if customer_codes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = notifier::Entity::find()
            .filter(notifier::Column::CustomerCode.is_in(customer_codes.iter().copied()))
            .all(&self.db)
            .await?;
        rows.into_iter().map(notifier_from_row).collect()
    }

    /// Lists every customer's own notifier, by customer code.
    pub(crate) async fn notifiers(&self) -> Result<Vec<Notifier>, StoreError> {
        let rows = notifier::Entity::find()
            .order_by_asc(notifier::Column::CustomerCode)
            .all(&self.db)
            .await?;
        rows.into_iter().map(notifier_from_row).collect()
    }

    /// Replaces the customer's notifier and records the change with the notifier before it,
    /// in one transaction. The change's actor and time are the notifier's `updated_by` and
    /// `updated_at`. A notifier whose settings equal the stored one's writes nothing.
    pub(crate) async fn update_notifier(
        &self,
        notifier: &Notifier,
        reason: &str,
    ) -> Result<NotifierWrite, StoreError> {
        let transaction = self.db.begin().await?;
        // On PostgreSQL this locks the row until the commit, so a concurrent update waits and
        // then records this change as its old value; SQLite has a single connection here.
        let old = notifier::Entity::find_by_id(notifier.customer_code.clone())
            .lock_exclusive()
            .one(&transaction)
            .await?
            .map(notifier_from_row)
            .transpose()?;
        if let Some(stored) = old.as_ref().filter(|old| old.same_settings(notifier)) {
            let stored = stored.clone();
            transaction.rollback().await?;
            return Ok(NotifierWrite::Unchanged(stored));
        }
        let row = notifier_to_row(notifier)?;
        if old.is_some() {
            notifier::Entity::update(row).exec(&transaction).await?;
        } else {
            notifier::Entity::insert(row)
                .exec_without_returning(&transaction)
                .await?;
        }
        let change = notifier_change::ActiveModel {
            customer_code: Set(notifier.customer_code.clone()),
            actor: Set(notifier.updated_by.clone()),
            reason: Set(reason.to_owned()),
            at: Set(notifier.updated_at),
            old_json: Set(old.as_ref().map(notifier_json).transpose()?),
            new_json: Set(notifier_json(notifier)?),
            ..Default::default()
        };
        let inserted = notifier_change::Entity::insert(change)
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(NotifierWrite::Changed(Box::new(NotifierChange {
            id: inserted.last_insert_id as u64,
            customer_code: notifier.customer_code.clone(),
            actor: notifier.updated_by.clone(),
            reason: reason.to_owned(),
            at: notifier.updated_at,
            old,
            new: notifier.clone(),
        })))
    }

    /// Recorded changes newest first, of one customer or of all, starting after `offset`.
    pub(crate) async fn notifier_changes(
        &self,
        customer_code: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<NotifierChange>, StoreError> {
        let mut query = notifier_change::Entity::find();
        if let Some(code) = customer_code {
            query = query.filter(notifier_change::Column::CustomerCode.eq(code));
        }
        let rows = query
            .order_by_desc(notifier_change::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(change_from_row).collect()
    }
}

fn stored_mailboxes(list: &[Mailbox]) -> Vec<StoredMailbox> {
    list.iter()
        .map(|m| StoredMailbox {
            name: m.name.clone(),
            address: m.address.clone(),
        })
        .collect()
}

fn mailboxes(list: Vec<StoredMailbox>) -> Vec<Mailbox> {
    list.into_iter()
        .map(|m| Mailbox {
            name: m.name,
            address: m.address,
        })
        .collect()
}

fn stored(notifier: &Notifier) -> StoredNotifier {
    let templates = notifier
        .templates
        .iter()
        .map(|(language, t)| {
            let template = StoredTemplate {
                subject: t.subject.clone(),
                text: t.text.clone(),
                html: t.html.clone(),
            };
            (language.clone(), template)
        })
        .collect();
    StoredNotifier {
        customer_code: notifier.customer_code.clone(),
        enabled: notifier.enabled,
        kinds: notifier
            .kinds
            .as_ref()
            .map(|kinds| kinds.iter().map(|k| k.as_str().to_owned()).collect()),
        to: notifier.to.as_deref().map(stored_mailboxes),
        cc: notifier.cc.as_deref().map(stored_mailboxes),
        bcc: notifier.bcc.as_deref().map(stored_mailboxes),
        split: notifier.split.map(|split| split.as_str().to_owned()),
        templates,
        updated_at: notifier.updated_at,
        updated_by: notifier.updated_by.clone(),
    }
}

fn from_stored(
    table: &'static str,
    id: &str,
    stored: StoredNotifier,
) -> Result<Notifier, StoreError> {
    let bad = |message: String| corrupt(table, id.to_owned(), message);
    let kinds = match stored.kinds {
        Some(names) => Some(
            names
                .iter()
                .map(|name| {
                    InvoiceKind::parse(name).ok_or_else(|| bad(format!("unknown kind {name:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let split = match stored.split {
        Some(name) => {
            Some(Split::parse(&name).ok_or_else(|| bad(format!("unknown split {name:?}")))?)
        }
        None => None,
    };
    let templates = stored
        .templates
        .into_iter()
        .map(|(language, t)| {
            let template = MessageTemplate {
                subject: t.subject,
                text: t.text,
                html: t.html,
            };
            (language, template)
        })
        .collect();
    Ok(Notifier {
        customer_code: stored.customer_code,
        enabled: stored.enabled,
        kinds,
        to: stored.to.map(mailboxes),
        cc: stored.cc.map(mailboxes),
        bcc: stored.bcc.map(mailboxes),
        split,
        templates,
        updated_at: stored.updated_at,
        updated_by: stored.updated_by,
    })
}

fn to_json<T: Serialize>(table: &'static str, id: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(table, id.to_owned(), e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(
    table: &'static str,
    id: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(table, id.to_owned(), e.to_string()))
}

fn notifier_json(notifier: &Notifier) -> Result<String, StoreError> {
    to_json(
        "or_notifier_changes",
        &notifier.customer_code,
        &stored(notifier),
    )
}

fn notifier_to_row(notifier: &Notifier) -> Result<notifier::ActiveModel, StoreError> {
    let code = notifier.customer_code.as_str();
    let stored = stored(notifier);
    let optional_json = |value: &Option<_>| {
        value
            .as_ref()
            .map(|v: &Vec<StoredMailbox>| to_json("or_notifiers", code, v))
            .transpose()
    };
    Ok(notifier::ActiveModel {
        customer_code: Set(stored.customer_code.clone()),
        enabled: Set(stored.enabled),
        kinds_json: Set(stored
            .kinds
            .as_ref()
            .map(|kinds| to_json("or_notifiers", code, kinds))
            .transpose()?),
        to_json: Set(optional_json(&stored.to)?),
        cc_json: Set(optional_json(&stored.cc)?),
        bcc_json: Set(optional_json(&stored.bcc)?),
        split: Set(stored.split.clone()),
        templates_json: Set(to_json("or_notifiers", code, &stored.templates)?),
        updated_at: Set(stored.updated_at),
        updated_by: Set(stored.updated_by),
    })
}

fn notifier_from_row(row: notifier::Model) -> Result<Notifier, StoreError> {
    const TABLE: &str = "or_notifiers";
    let code = row.customer_code.as_str();
    let optional = |json: &Option<String>| {
        json.as_deref()
            .map(|json| from_json::<Vec<StoredMailbox>>(TABLE, code, json))
            .transpose()
    };
    let stored = StoredNotifier {
        customer_code: row.customer_code.clone(),
        enabled: row.enabled,
        kinds: row
            .kinds_json
            .as_deref()
            .map(|json| from_json(TABLE, code, json))
            .transpose()?,
        to: optional(&row.to_json)?,
        cc: optional(&row.cc_json)?,
        bcc: optional(&row.bcc_json)?,
        split: row.split.clone(),
        templates: from_json(TABLE, code, &row.templates_json)?,
        updated_at: row.updated_at,
        updated_by: row.updated_by.clone(),
    };
    from_stored(TABLE, code, stored)
}

fn change_from_row(row: notifier_change::Model) -> Result<NotifierChange, StoreError> {
    const TABLE: &str = "or_notifier_changes";
    let id = row.id.to_string();
    let parse = |json: &str| from_stored(TABLE, &id, from_json(TABLE, &id, json)?);
    Ok(NotifierChange {
        id: row.id as u64,
        old: row.old_json.as_deref().map(parse).transpose()?,
        new: parse(&row.new_json)?,
        customer_code: row.customer_code,
        actor: row.actor,
        reason: row.reason,
        at: row.at,
    })
}
