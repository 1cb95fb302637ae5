//! Schema migrations of the orchestrator's tables, run at start-up.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(CreateNotifiers),
            Box::new(AddDeliveryDurability),
            Box::new(AddBatchItemPages),
            Box::new(CompressDocumentsWithLz4),
            Box::new(AddDocumentFacts),
            Box::new(AddRequestedResend),
        ]
    }

    // Each service keeps its own migration history, because they may share one database.
    fn migration_table_name() -> DynIden {
        "orchestrator_migrations".into_iden()
    }
}

struct CreateTables;

impl MigrationName for CreateTables {
    fn name(&self) -> &str {
        "m20261204_000001_create_tables"
    }
}

#[derive(DeriveIden)]
enum OrBatches {
    Table,
    Id,
    BusinessDate,
    Trigger,
    Status,
    ScheduleKey,
    Cutoff,
    WindowStart,
    StartedAt,
    FinishedAt,
    Error,
    LeaseOwner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum OrBatchItems {
    Table,
    Id,
    BatchId,
    DeliveryId,
    InvoiceNumber,
    State,
    Reason,
}

#[derive(DeriveIden)]
enum OrDeliveries {
    Table,
    Id,
    DeliveryKey,
    InvoiceNumber,
    InvoiceRevision,
    CustomerCode,
    Purpose,
    RequestId,
    State,
    ToJson,
    CcJson,
    BccJson,
    Subject,
    AttachmentName,
    PdfSha256,
    MessageId,
    Reason,
    Attempts,
    NextAttemptAt,
    BatchId,
    RecipientsJson,
    ServerReply,
    Destination,
    Actor,
    ResendReason,
    TraceId,
    Logged,
    CreatedAt,
    UpdatedAt,
    RetrySince,
    AcceptedJson,
    LeaseOwner,
    LeaseUntil,
    RequestedJson,
}

#[derive(DeriveIden)]
enum OrDocuments {
    Table,
    Id,
    InvoiceNumber,
    InvoiceRevision,
    Sha256,
    FileName,
    PageCount,
    Content,
    CreatedAt,
    FactsJson,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_batches(manager).await?;
        create_batch_items(manager).await?;
        create_deliveries(manager).await?;
        create_documents(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrDocuments::Table.into_iden(),
            OrDeliveries::Table.into_iden(),
            OrBatchItems::Table.into_iden(),
            OrBatches::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_batches(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OrBatches::Table)
                .if_not_exists()
                .col(string(OrBatches::Id).primary_key())
                .col(string(OrBatches::BusinessDate))
                .col(string(OrBatches::Trigger))
                .col(string(OrBatches::Status))
                .col(string_null(OrBatches::ScheduleKey).unique_key())
                .col(timestamp_with_time_zone(OrBatches::Cutoff))
                .col(timestamp_with_time_zone(OrBatches::WindowStart))
                .col(timestamp_with_time_zone(OrBatches::StartedAt))
                .col(timestamp_with_time_zone_null(OrBatches::FinishedAt))
                .col(text_null(OrBatches::Error))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("or_batches_started_at")
                .table(OrBatches::Table)
                .col(OrBatches::StartedAt)
                .to_owned(),
        )
        .await
}

async fn create_batch_items(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OrBatchItems::Table)
                .if_not_exists()
                .col(big_pk_auto(OrBatchItems::Id))
                .col(string(OrBatchItems::BatchId))
                .col(string(OrBatchItems::DeliveryId))
                .col(string(OrBatchItems::InvoiceNumber))
                .col(string(OrBatchItems::State))
                .col(text(OrBatchItems::Reason))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("or_batch_items_batch_delivery")
                .table(OrBatchItems::Table)
                .col(OrBatchItems::BatchId)
                .col(OrBatchItems::DeliveryId)
                .unique()
                .to_owned(),
        )
        .await
}

async fn create_deliveries(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OrDeliveries::Table)
                .if_not_exists()
                .col(string(OrDeliveries::Id).primary_key())
                .col(string(OrDeliveries::DeliveryKey).unique_key())
                .col(string(OrDeliveries::InvoiceNumber))
                .col(integer(OrDeliveries::InvoiceRevision))
                .col(string(OrDeliveries::CustomerCode))
                .col(string(OrDeliveries::Purpose))
                .col(string_null(OrDeliveries::RequestId).unique_key())
                .col(string(OrDeliveries::State))
                .col(text(OrDeliveries::ToJson))
                .col(text(OrDeliveries::CcJson))
                .col(text(OrDeliveries::BccJson))
                .col(text(OrDeliveries::Subject))
                .col(string(OrDeliveries::AttachmentName))
                .col(string(OrDeliveries::PdfSha256))
                .col(string(OrDeliveries::MessageId))
                .col(text(OrDeliveries::Reason))
                .col(integer(OrDeliveries::Attempts))
                .col(timestamp_with_time_zone_null(OrDeliveries::NextAttemptAt))
                .col(string_null(OrDeliveries::BatchId))
                .col(text(OrDeliveries::RecipientsJson))
                .col(text(OrDeliveries::ServerReply))
                .col(string(OrDeliveries::Destination))
                .col(string(OrDeliveries::Actor))
                .col(text(OrDeliveries::ResendReason))
                .col(string(OrDeliveries::TraceId))
                .col(boolean(OrDeliveries::Logged))
                .col(timestamp_with_time_zone(OrDeliveries::CreatedAt))
                .col(timestamp_with_time_zone(OrDeliveries::UpdatedAt))
                .to_owned(),
        )
        .await?;
    for (name, column) in [
        ("or_deliveries_state_next_attempt", OrDeliveries::State),
        ("or_deliveries_invoice", OrDeliveries::InvoiceNumber),
    ] {
        manager
            .create_index(
                Index::create()
                    .name(name)
                    .table(OrDeliveries::Table)
                    .col(column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn create_documents(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OrDocuments::Table)
                .if_not_exists()
                .col(big_pk_auto(OrDocuments::Id))
                .col(string(OrDocuments::InvoiceNumber))
                .col(integer(OrDocuments::InvoiceRevision))
                .col(string(OrDocuments::Sha256))
                .col(string(OrDocuments::FileName))
                .col(integer(OrDocuments::PageCount))
                .col(blob(OrDocuments::Content))
                .col(timestamp_with_time_zone(OrDocuments::CreatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("or_documents_invoice_revision")
                .table(OrDocuments::Table)
                .col(OrDocuments::InvoiceNumber)
                .col(OrDocuments::InvoiceRevision)
                .unique()
                .to_owned(),
        )
        .await
}

struct CreateNotifiers;

impl MigrationName for CreateNotifiers {
    fn name(&self) -> &str {
        "m20261204_000002_notifiers"
    }
}

#[derive(DeriveIden)]
enum OrNotifiers {
    Table,
    CustomerCode,
    Enabled,
    KindsJson,
    ToJson,
    CcJson,
    BccJson,
    Split,
    TemplatesJson,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum OrNotifierChanges {
    Table,
    Id,
    CustomerCode,
    Actor,
    Reason,
    At,
    OldJson,
    NewJson,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateNotifiers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrNotifiers::Table)
                    .if_not_exists()
                    .col(string(OrNotifiers::CustomerCode).primary_key())
                    .col(boolean_null(OrNotifiers::Enabled))
                    .col(text_null(OrNotifiers::KindsJson))
                    .col(text_null(OrNotifiers::ToJson))
                    .col(text_null(OrNotifiers::CcJson))
                    .col(text_null(OrNotifiers::BccJson))
                    .col(string_null(OrNotifiers::Split))
                    .col(text(OrNotifiers::TemplatesJson))
                    .col(timestamp_with_time_zone(OrNotifiers::UpdatedAt))
                    .col(string(OrNotifiers::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        create_notifier_changes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrNotifierChanges::Table.into_iden(),
            OrNotifiers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_notifier_changes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OrNotifierChanges::Table)
                .if_not_exists()
                .col(big_pk_auto(OrNotifierChanges::Id))
                .col(string(OrNotifierChanges::CustomerCode))
                .col(string(OrNotifierChanges::Actor))
                .col(text(OrNotifierChanges::Reason))
                .col(timestamp_with_time_zone(OrNotifierChanges::At))
                .col(text_null(OrNotifierChanges::OldJson))
                .col(text(OrNotifierChanges::NewJson))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("or_notifier_changes_customer")
                .table(OrNotifierChanges::Table)
                .col(OrNotifierChanges::CustomerCode)
                .col(OrNotifierChanges::Id)
                .to_owned(),
        )
        .await
}

/// Adds the columns that retries, per-recipient retries and leases need. `or_deliveries`
/// gets the start of the current run of retries, the recipients that already accepted the
/// message, and the lease (owner replica and expiry). `or_batches` gets the lease of the
/// replica running the batch.
struct AddDeliveryDurability;

impl MigrationName for AddDeliveryDurability {
    fn name(&self) -> &str {
        "m20261204_000003_delivery_durability"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDeliveryDurability {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OrDeliveries as D;
        // One column per statement, because SQLite alters one column at a time.
        let columns = [
            timestamp_with_time_zone_null(D::RetrySince),
            text(D::AcceptedJson).default("[]").to_owned(),
            string_null(D::LeaseOwner),
            timestamp_with_time_zone_null(D::LeaseUntil),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let batch_columns = [
            string_null(OrBatches::LeaseOwner),
            timestamp_with_time_zone_null(OrBatches::LeaseUntil),
        ];
        for mut column in batch_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrBatches::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("or_deliveries_lease_until")
                    .table(D::Table)
                    .col(D::LeaseUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OrDeliveries as D;
        manager
            .drop_index(
                Index::drop()
                    .name("or_deliveries_lease_until")
                    .table(D::Table)
                    .to_owned(),
            )
            .await?;
        for column in [OrBatches::LeaseUntil, OrBatches::LeaseOwner] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrBatches::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [D::LeaseUntil, D::LeaseOwner, D::AcceptedJson, D::RetrySince] {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Adds an index on `or_batch_items (batch_id, id)`, so that a page of a batch's items, in the
/// order the batch planned them, is read without sorting the whole batch.
struct AddBatchItemPages;

impl MigrationName for AddBatchItemPages {
    fn name(&self) -> &str {
        "m20261204_000004_batch_item_pages"
    }
}

const BATCH_ITEM_PAGE_INDEX: &str = "or_batch_items_batch_id";

#[async_trait::async_trait]
impl MigrationTrait for AddBatchItemPages {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(BATCH_ITEM_PAGE_INDEX)
                    .table(OrBatchItems::Table)
                    .col(OrBatchItems::BatchId)
                    .col(OrBatchItems::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(BATCH_ITEM_PAGE_INDEX)
                    .table(OrBatchItems::Table)
                    .to_owned(),
            )
            .await
    }
}

/// Migration that sets `or_documents.content` to lz4 on PostgreSQL, in place of the default
/// pglz. pglz spent about 0.66 ms of server CPU on a partly deflated 40 kB PDF, and lz4 about
/// 0.08 ms while storing 16 % less (docs/benchmarks/batch.md). Rows already stored keep their
/// compression.
struct CompressDocumentsWithLz4;

impl MigrationName for CompressDocumentsWithLz4 {
    fn name(&self) -> &str {
        "m20261205_000005_documents_lz4"
    }
}

/// Column compression methods came with PostgreSQL 14, so an older server skips the step. A
/// server built without lz4 rejects the method. In both cases the column stays on pglz and
/// the migration counts as done, so the warning (in the service log, target
/// `sqlx::postgres::notice`) names the statement to run later.
///
/// NOTE: no test runs either fallback, because the tests run on PostgreSQL 15 with lz4.
const DOCUMENTS_LZ4: &str = "DO $$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE WARNING 'PostgreSQL before 14 has no column compression methods, so or_documents.content stays compressed with pglz. After an upgrade, run: ALTER TABLE or_documents ALTER COLUMN content SET COMPRESSION lz4';
        RETURN;
    END IF;
    EXECUTE 'ALTER TABLE or_documents ALTER COLUMN content SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE WARNING 'this PostgreSQL server was built without lz4, so or_documents.content stays compressed with pglz. On a server with lz4, run: ALTER TABLE or_documents ALTER COLUMN content SET COMPRESSION lz4';
END
$$";

const DOCUMENTS_DEFAULT_COMPRESSION: &str = "DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE or_documents ALTER COLUMN content SET COMPRESSION DEFAULT';
    END IF;
END
$$";

#[async_trait::async_trait]
impl MigrationTrait for CompressDocumentsWithLz4 {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        execute_on_postgres(manager, DOCUMENTS_LZ4).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        execute_on_postgres(manager, DOCUMENTS_DEFAULT_COMPRESSION).await
    }
}

/// Runs `sql` when the database is PostgreSQL, and does nothing on SQLite.
async fn execute_on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

/// Adds `or_documents.facts_json`: what the email of the revision states about the invoice
/// (kind, dates, total, currency, PO number) when its PDF was frozen, so that a later send of
/// that revision writes an email that agrees with its PDF. Documents frozen before this
/// migration have none.
struct AddDocumentFacts;

impl MigrationName for AddDocumentFacts {
    fn name(&self) -> &str {
        "m20261206_000006_document_facts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDocumentFacts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrDocuments::Table)
                    .add_column(text_null(OrDocuments::FactsJson))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrDocuments::Table)
                    .drop_column(OrDocuments::FactsJson)
                    .to_owned(),
            )
            .await
    }
}

/// Adds `or_deliveries.requested_json`: the revision and override addresses a resend request
/// named. A repeat of its request id that names another revision or other addresses, or none
/// where the first named some, is then distinguished from an exact repeat. Resends stored before
/// this migration have none.
struct AddRequestedResend;

impl MigrationName for AddRequestedResend {
    fn name(&self) -> &str {
        "m20261206_000007_requested_resend"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRequestedResend {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrDeliveries::Table)
                    .add_column(text_null(OrDeliveries::RequestedJson))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrDeliveries::Table)
                    .drop_column(OrDeliveries::RequestedJson)
                    .to_owned(),
            )
            .await
    }
}
