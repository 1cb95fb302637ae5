//! Schema migrations of audit-log, run at start-up.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, string_len, text, text_null};

/// The migrations of audit-log, tracked in their own table so services can share one
/// PostgreSQL database.
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateEntries), Box::new(AddIdempotencyKey)]
    }

    fn migration_table_name() -> DynIden {
        "audit_log_migrations".into_iden()
    }
}

#[derive(DeriveIden)]
enum AlEntries {
    Table,
    Sequence,
    Id,
    InvoiceNumber,
    InvoiceRevision,
    CustomerCode,
    TriggerKind,
    BatchId,
    Actor,
    Reason,
    RequestId,
    DeliveryId,
    FromName,
    FromAddress,
    ToMailboxes,
    CcMailboxes,
    BccMailboxes,
    Subject,
    MessageId,
    AttachmentName,
    AttachmentSize,
    AttachmentSha256,
    RecipientResults,
    ServerReply,
    Outcome,
    Detail,
    AtUnixMs,
    TraceId,
    Destination,
    PrevHash,
    EntryHash,
    IdempotencyKey,
}

#[derive(DeriveIden)]
enum AlEntryRecipients {
    Table,
    EntrySequence,
    AddressLowercase,
    Role,
}

#[derive(DeriveMigrationName)]
struct CreateEntries;

#[async_trait::async_trait]
impl MigrationTrait for CreateEntries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(entries_table()).await?;
        for (name, column) in [
            ("idx_al_entries_invoice_number", AlEntries::InvoiceNumber),
            ("idx_al_entries_customer_code", AlEntries::CustomerCode),
            ("idx_al_entries_at_unix_ms", AlEntries::AtUnixMs),
            ("idx_al_entries_batch_id", AlEntries::BatchId),
        ] {
            let index = Index::create()
                .name(name)
                .table(AlEntries::Table)
                .col(column)
                .to_owned();
            manager.create_index(index).await?;
        }

        manager.create_table(recipients_table()).await?;
        let address_index = Index::create()
            .name("idx_al_entry_recipients_address_lowercase")
            .table(AlEntryRecipients::Table)
            .col(AlEntryRecipients::AddressLowercase)
            .to_owned();
        manager.create_index(address_index).await
    }
}

fn entries_table() -> TableCreateStatement {
    Table::create()
        .table(AlEntries::Table)
        .col(big_integer(AlEntries::Sequence).primary_key())
        .col(string_len(AlEntries::Id, 36).unique_key())
        .col(text(AlEntries::InvoiceNumber))
        .col(big_integer(AlEntries::InvoiceRevision))
        .col(text(AlEntries::CustomerCode))
        .col(string(AlEntries::TriggerKind))
        .col(text(AlEntries::BatchId))
        .col(text(AlEntries::Actor))
        .col(text(AlEntries::Reason))
        .col(text(AlEntries::RequestId))
        .col(text(AlEntries::DeliveryId))
        .col(text(AlEntries::FromName))
        .col(text(AlEntries::FromAddress))
        .col(text(AlEntries::ToMailboxes))
        .col(text(AlEntries::CcMailboxes))
        .col(text(AlEntries::BccMailboxes))
        .col(text(AlEntries::Subject))
        .col(text(AlEntries::MessageId))
        .col(text(AlEntries::AttachmentName))
        .col(big_integer(AlEntries::AttachmentSize))
        .col(text(AlEntries::AttachmentSha256))
        .col(text(AlEntries::RecipientResults))
        .col(text(AlEntries::ServerReply))
        .col(string(AlEntries::Outcome))
        .col(text(AlEntries::Detail))
        .col(big_integer(AlEntries::AtUnixMs))
        .col(text(AlEntries::TraceId))
        .col(text(AlEntries::Destination))
        .col(string_len(AlEntries::PrevHash, 64))
        .col(string_len(AlEntries::EntryHash, 64))
        .to_owned()
}

fn recipients_table() -> TableCreateStatement {
    Table::create()
        .table(AlEntryRecipients::Table)
        .col(big_integer(AlEntryRecipients::EntrySequence))
        .col(text(AlEntryRecipients::AddressLowercase))
        .col(string(AlEntryRecipients::Role))
        .primary_key(
            Index::create()
                .col(AlEntryRecipients::EntrySequence)
                .col(AlEntryRecipients::AddressLowercase)
                .col(AlEntryRecipients::Role),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_al_entry_recipients_entry_sequence")
                .from(AlEntryRecipients::Table, AlEntryRecipients::EntrySequence)
                .to(AlEntries::Table, AlEntries::Sequence),
        )
        .to_owned()
}

/// Migration that adds the caller's idempotency key to each entry, unique where set, so that
/// an append sent again after a lost response finds its entry instead of appending a copy.
/// Entries appended before it have none.
struct AddIdempotencyKey;

impl MigrationName for AddIdempotencyKey {
    fn name(&self) -> &str {
        "m20261205_000002_idempotency_key"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddIdempotencyKey {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = Table::alter()
            .table(AlEntries::Table)
            .add_column(text_null(AlEntries::IdempotencyKey))
            .to_owned();
        manager.alter_table(column).await?;
        // Both SQLite and PostgreSQL let any number of rows have no key under a unique index.
        // NOTE: PostgreSQL builds it without CONCURRENTLY, inside the migration's transaction,
        // so appends wait while it indexes an existing log.
        let index = Index::create()
            .name(IDEMPOTENCY_KEY_INDEX)
            .table(AlEntries::Table)
            .col(AlEntries::IdempotencyKey)
            .unique()
            .to_owned();
        manager.create_index(index).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let index = Index::drop()
            .name(IDEMPOTENCY_KEY_INDEX)
            .table(AlEntries::Table)
            .to_owned();
        manager.drop_index(index).await?;
        let column = Table::alter()
            .table(AlEntries::Table)
            .drop_column(AlEntries::IdempotencyKey)
            .to_owned();
        manager.alter_table(column).await
    }
}

/// Name of the unique index on `al_entries.idempotency_key`.
const IDEMPOTENCY_KEY_INDEX: &str = "idx_al_entries_idempotency_key";
