//! Reading and upserting customers with their contacts.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::entities::{contact, customer};
use super::{Store, StoreError, Upserted, decode_json, encode_json};
use crate::canonical::{canonical_json, sha256_hex};
use crate::model::{Contact, Customer, RecipientRole};

impl Store {
    /// Creates or updates `customer` and replaces its contacts, in one transaction.
    pub(crate) async fn upsert_customer(
        &self,
        customer: &Customer,
    ) -> Result<Upserted, StoreError> {
        let content = canonical_json(customer).map_err(|source| StoreError::Encode {
            subject: "customer".to_owned(),
            source,
        })?;
        let sha = sha256_hex(&content);
        let txn = self.db.begin().await?;
        let existing = customer::Entity::find()
            .filter(customer::Column::Code.eq(&customer.code))
            .lock_exclusive()
            .one(&txn)
            .await?;
        let outcome = match existing {
            Some(row) if row.content_sha256 == sha => Upserted::Unchanged,
            Some(row) => {
                update_customer(&txn, row, customer, sha).await?;
                Upserted::Updated
            }
            None => {
                insert_customer(&txn, customer, sha).await?;
                Upserted::Created
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }

    pub(crate) async fn get_customer(&self, code: &str) -> Result<Option<Customer>, StoreError> {
        let Some(row) = customer::Entity::find()
            .filter(customer::Column::Code.eq(code))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let contacts = contact::Entity::find()
            .filter(contact::Column::CustomerId.eq(row.id))
            .order_by_asc(contact::Column::Position)
            .all(&self.db)
            .await?;
        Ok(Some(customer_from_rows(row, contacts)?))
    }
}

/// Checks whether a customer with `code` is stored, as seen by `connection`.
pub(super) async fn customer_exists(
    connection: &impl ConnectionTrait,
    code: &str,
) -> Result<bool, StoreError> {
    let found = customer::Entity::find()
        .filter(customer::Column::Code.eq(code))
        .select_only()
        .column(customer::Column::Id)
        .into_tuple::<i32>()
        .one(connection)
        .await?;
    Ok(found.is_some())
}

async fn insert_customer(
    txn: &DatabaseTransaction,
    customer: &Customer,
    sha: String,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let row = customer::ActiveModel {
        code: Set(customer.code.clone()),
        name: Set(customer.name.clone()),
        language: Set(customer.language.clone()),
        address_json: Set(encode_json("customer address", &customer.address)?),
        tax_id: Set(customer.tax_id.clone()),
        content_sha256: Set(sha),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    insert_contacts(txn, row.id, &customer.contacts).await
}

async fn update_customer(
    txn: &DatabaseTransaction,
    row: customer::Model,
    customer: &Customer,
    sha: String,
) -> Result<(), StoreError> {
    let id = row.id;
    let mut active: customer::ActiveModel = row.into();
    active.name = Set(customer.name.clone());
    active.language = Set(customer.language.clone());
    active.address_json = Set(encode_json("customer address", &customer.address)?);
    active.tax_id = Set(customer.tax_id.clone());
    active.content_sha256 = Set(sha);
    active.updated_at = Set(Utc::now());
    active.update(txn).await?;
    contact::Entity::delete_many()
        .filter(contact::Column::CustomerId.eq(id))
        .exec(txn)
        .await?;
    insert_contacts(txn, id, &customer.contacts).await
}

async fn insert_contacts(
    txn: &DatabaseTransaction,
    customer_id: i32,
    contacts: &[Contact],
) -> Result<(), StoreError> {
    for (position, contact) in contacts.iter().enumerate() {
        contact::ActiveModel {
            customer_id: Set(customer_id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            name: Set(contact.name.clone()),
            email: Set(contact.email.clone()),
            invoice_role: Set(contact.invoice_role.as_str().to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

pub(super) fn customer_from_rows(
    row: customer::Model,
    contacts: Vec<contact::Model>,
) -> Result<Customer, StoreError> {
    let contacts = contacts
        .into_iter()
        .map(|contact| {
            let invoice_role =
                RecipientRole::parse(&contact.invoice_role).ok_or_else(|| StoreError::Corrupt {
                    subject: format!("contact {} of customer {}", contact.position, row.code),
                    reason: format!("unknown invoice_role {:?}", contact.invoice_role),
                })?;
            Ok(Contact {
                name: contact.name,
                email: contact.email,
                invoice_role,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Customer {
        address: decode_json(
            &format!("address of customer {}", row.code),
            &row.address_json,
        )?,
        code: row.code,
        name: row.name,
        language: row.language,
        tax_id: row.tax_id,
        contacts,
    })
}
