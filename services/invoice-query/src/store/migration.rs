//! Schema migrations, run at start-up. The table that records applied migrations is
//! `invoice_query_migrations`, so services that share one PostgreSQL database do not mix
//! their migration histories.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, pk_auto, text, text_null, text_uniq, timestamp_with_time_zone,
};

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateTables)]
    }

    fn migration_table_name() -> DynIden {
        "invoice_query_migrations".into_iden()
    }
}

#[derive(DeriveIden)]
enum IqCustomers {
    Table,
    Id,
    Code,
    Name,
    Language,
    AddressJson,
    TaxId,
    ContentSha256,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IqContacts {
    Table,
    Id,
    CustomerId,
    Position,
    Name,
    Email,
    InvoiceRole,
}

#[derive(DeriveIden)]
enum IqInvoices {
    Table,
    Id,
    Number,
    CustomerCode,
    Kind,
    Status,
    Revision,
    OrderNumber,
    PoNumber,
    IssuedAt,
    IssuedAtUtc,
    DueDate,
    Currency,
    Terms,
    LinesJson,
    Subtotal,
    TaxesJson,
    Total,
    Notes,
    NotifyOptOut,
    ContentSha256,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IqInvoiceRevisions {
    Table,
    Id,
    InvoiceId,
    Revision,
    ContentJson,
    ContentSha256,
    ImportedAt,
}

#[derive(DeriveMigrationName)]
struct CreateTables;

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(customers_table()).await?;
        manager.create_table(contacts_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("iq_contacts_customer_id")
                    .table(IqContacts::Table)
                    .col(IqContacts::CustomerId)
                    .to_owned(),
            )
            .await?;
        manager.create_table(invoices_table()).await?;
        // ListInvoicesToNotify filters on status and a range of issued_at_utc.
        manager
            .create_index(
                Index::create()
                    .name("iq_invoices_status_issued_at_utc")
                    .table(IqInvoices::Table)
                    .col(IqInvoices::Status)
                    .col(IqInvoices::IssuedAtUtc)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("iq_invoices_customer_code")
                    .table(IqInvoices::Table)
                    .col(IqInvoices::CustomerCode)
                    .to_owned(),
            )
            .await?;
        manager.create_table(revisions_table()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IqInvoiceRevisions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IqInvoices::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IqContacts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IqCustomers::Table).to_owned())
            .await
    }
}

fn customers_table() -> TableCreateStatement {
    Table::create()
        .table(IqCustomers::Table)
        .col(pk_auto(IqCustomers::Id))
        .col(text_uniq(IqCustomers::Code))
        .col(text(IqCustomers::Name))
        .col(text_null(IqCustomers::Language))
        .col(text(IqCustomers::AddressJson))
        .col(text_null(IqCustomers::TaxId))
        .col(text(IqCustomers::ContentSha256))
        .col(timestamp_with_time_zone(IqCustomers::CreatedAt))
        .col(timestamp_with_time_zone(IqCustomers::UpdatedAt))
        .to_owned()
}

fn contacts_table() -> TableCreateStatement {
    Table::create()
        .table(IqContacts::Table)
        .col(pk_auto(IqContacts::Id))
        .col(integer(IqContacts::CustomerId))
        .col(integer(IqContacts::Position))
        .col(text(IqContacts::Name))
        .col(text(IqContacts::Email))
        .col(text(IqContacts::InvoiceRole))
        .foreign_key(
            ForeignKey::create()
                .name("iq_contacts_customer_id_fkey")
                .from(IqContacts::Table, IqContacts::CustomerId)
                .to(IqCustomers::Table, IqCustomers::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn invoices_table() -> TableCreateStatement {
    Table::create()
        .table(IqInvoices::Table)
        .col(pk_auto(IqInvoices::Id))
        .col(text_uniq(IqInvoices::Number))
        .col(text(IqInvoices::CustomerCode))
        .col(text(IqInvoices::Kind))
        .col(text(IqInvoices::Status))
        .col(integer(IqInvoices::Revision))
        .col(text_null(IqInvoices::OrderNumber))
        .col(text_null(IqInvoices::PoNumber))
        .col(text(IqInvoices::IssuedAt))
        .col(timestamp_with_time_zone(IqInvoices::IssuedAtUtc))
        .col(text_null(IqInvoices::DueDate))
        .col(text(IqInvoices::Currency))
        .col(text_null(IqInvoices::Terms))
        .col(text(IqInvoices::LinesJson))
        .col(text(IqInvoices::Subtotal))
        .col(text(IqInvoices::TaxesJson))
        .col(text(IqInvoices::Total))
        .col(text_null(IqInvoices::Notes))
        .col(boolean(IqInvoices::NotifyOptOut))
        .col(text(IqInvoices::ContentSha256))
        .col(timestamp_with_time_zone(IqInvoices::CreatedAt))
        .col(timestamp_with_time_zone(IqInvoices::UpdatedAt))
        .foreign_key(
            ForeignKey::create()
                .name("iq_invoices_customer_code_fkey")
                .from(IqInvoices::Table, IqInvoices::CustomerCode)
                .to(IqCustomers::Table, IqCustomers::Code),
        )
        .to_owned()
}

fn revisions_table() -> TableCreateStatement {
    Table::create()
        .table(IqInvoiceRevisions::Table)
        .col(pk_auto(IqInvoiceRevisions::Id))
        .col(integer(IqInvoiceRevisions::InvoiceId))
        .col(integer(IqInvoiceRevisions::Revision))
        .col(text(IqInvoiceRevisions::ContentJson))
        .col(text(IqInvoiceRevisions::ContentSha256))
        .col(timestamp_with_time_zone(IqInvoiceRevisions::ImportedAt))
        .foreign_key(
            ForeignKey::create()
                .name("iq_invoice_revisions_invoice_id_fkey")
                .from(IqInvoiceRevisions::Table, IqInvoiceRevisions::InvoiceId)
                .to(IqInvoices::Table, IqInvoices::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .index(
            Index::create()
                .name("iq_invoice_revisions_invoice_id_revision")
                .col(IqInvoiceRevisions::InvoiceId)
                .col(IqInvoiceRevisions::Revision)
                .unique(),
        )
        .to_owned()
}
