//! `or_deliveries`: one row per (invoice, revision, notifier, purpose), created before any I/O.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "or_deliveries")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub delivery_key: String,
    pub invoice_number: String,
    pub invoice_revision: i32,
    pub customer_code: String,
    pub purpose: String,
    pub request_id: Option<String>,
    pub state: String,
    pub to_json: String,
    pub cc_json: String,
    pub bcc_json: String,
    pub subject: String,
    pub attachment_name: String,
    pub pdf_sha256: String,
    pub message_id: String,
    pub reason: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub batch_id: Option<String>,
    pub recipients_json: String,
    pub server_reply: String,
    pub destination: String,
    pub actor: String,
    pub resend_reason: String,
    pub trace_id: String,
    pub logged: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub retry_since: Option<DateTimeUtc>,
    pub accepted_json: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub requested_json: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
