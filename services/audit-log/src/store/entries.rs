//! The `al_entries` table: one row per entry of the log.

use sea_orm::entity::prelude::*;

/// One entry. Lists of mailboxes and recipient results are JSON text, and `at_unix_ms` is
/// milliseconds since the Unix epoch, UTC.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "al_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    #[sea_orm(unique)]
    pub id: String,
    pub invoice_number: String,
    pub invoice_revision: i64,
    pub customer_code: String,
    pub trigger_kind: String,
    pub batch_id: String,
    pub actor: String,
    pub reason: String,
    pub request_id: String,
    pub delivery_id: String,
    pub from_name: String,
    pub from_address: String,
    pub to_mailboxes: String,
    pub cc_mailboxes: String,
    pub bcc_mailboxes: String,
    pub subject: String,
    pub message_id: String,
    pub attachment_name: String,
    pub attachment_size: i64,
    pub attachment_sha256: String,
    pub recipient_results: String,
    pub server_reply: String,
    pub outcome: String,
    pub detail: String,
    pub at_unix_ms: i64,
    pub trace_id: String,
    pub destination: String,
    pub prev_hash: String,
    pub entry_hash: String,
    /// The caller's key for this append, unique where set. Not part of the hashed entry.
    pub idempotency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
