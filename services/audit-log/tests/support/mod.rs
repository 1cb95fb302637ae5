//! Test harness: a real host server with only the audit-log plugin on 127.0.0.1:0, over a
//! SQLite file in a temporary folder or a fresh PostgreSQL database.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use invoicer_audit_log::AuditLogPlugin;
use invoicer_kit::server::RunningServer;
use invoicer_kit::{Config, ServiceName, ServicePlugin};
use invoicer_proto::audit_log::v1 as pb;
use invoicer_proto::types::v1 as types;
pub(crate) use invoicer_test_db::TestDatabase;
use pb::audit_log_service_client::AuditLogServiceClient;
use sea_orm::{ConnectionTrait, Database};
use tonic::transport::Channel;

pub(crate) type Client = AuditLogServiceClient<Channel>;

/// Builds the server configuration for `database`. On SQLite the data folder does not exist
/// yet, so the plugin must create it.
fn config_for(database: &TestDatabase) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.shutdown_grace_secs = 5;
    match database.database_url() {
        Some(url) => config.database_url = Some(url),
        None => config.data_dir = database.folder().join("data/nested"),
    }
    config
}

pub(crate) struct Harness {
    database: TestDatabase,
    config: Arc<Config>,
    server: Option<RunningServer>,
    pub(crate) client: Client,
}

impl Harness {
    pub(crate) async fn start(database: TestDatabase) -> Result<Harness> {
        let config = Arc::new(config_for(&database));
        let (server, client) = serve(&config).await?;
        Ok(Harness {
            database,
            config,
            server: Some(server),
            client,
        })
    }

    /// Stops the server and starts a new one on the same database.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server
                .shutdown("test restart")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let (server, client) = serve(&self.config).await?;
        self.server = Some(server);
        self.client = client;
        Ok(())
    }

    /// Starts another server on the same database, as a second replica would run.
    pub(crate) async fn start_replica(&self) -> Result<(RunningServer, Client)> {
        serve(&self.config).await
    }

    /// Runs `sql` on the service's database behind its back, as an intruder would.
    pub(crate) async fn execute_sql(&self, sql: &str) -> Result<()> {
        let url = self.config.database_url_for(ServiceName::AuditLog);
        let db = Database::connect(&url).await?;
        db.execute_unprepared(sql)
            .await
            .with_context(|| format!("run {sql}"))?;
        db.close().await?;
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server
                .shutdown("test finished")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        drop(self.client);
        self.database.remove().await?;
        Ok(())
    }

    pub(crate) async fn append(&self, entry: pb::Entry) -> Result<pb::Entry> {
        self.append_with_key(entry, "").await
    }

    pub(crate) async fn append_with_key(
        &self,
        entry: pb::Entry,
        idempotency_key: &str,
    ) -> Result<pb::Entry> {
        let request = pb::AppendEntryRequest {
            entry: Some(entry),
            idempotency_key: idempotency_key.to_owned(),
        };
        let response = self
            .client
            .clone()
            .append_entry(request)
            .await?
            .into_inner();
        response.entry.context("AppendEntry returned no entry")
    }

    pub(crate) async fn list(
        &self,
        request: pb::ListEntriesRequest,
    ) -> Result<pb::ListEntriesResponse> {
        Ok(self
            .client
            .clone()
            .list_entries(request)
            .await?
            .into_inner())
    }

    /// Lists one page and returns its sequences in the order returned.
    pub(crate) async fn list_sequences(&self, request: pb::ListEntriesRequest) -> Result<Vec<u64>> {
        let response = self.list(request).await?;
        Ok(response
            .entries
            .iter()
            .map(|entry| entry.sequence)
            .collect())
    }

    pub(crate) async fn verify(&self) -> Result<pb::VerifyLogResponse> {
        Ok(self
            .client
            .clone()
            .verify_log(pb::VerifyLogRequest {})
            .await?
            .into_inner())
    }
}

async fn serve(config: &Arc<Config>) -> Result<(RunningServer, Client)> {
    let plugins: Vec<Arc<dyn ServicePlugin>> = vec![Arc::new(AuditLogPlugin)];
    let server = invoicer_kit::server::start(config.clone(), plugins)
        .await
        .map_err(|e| anyhow::anyhow!("start server: {e}"))?;
    let client = AuditLogServiceClient::connect(format!("http://{}", server.local_addr())).await?;
    Ok((server, client))
}

pub(crate) fn mailbox(name: &str, address: &str) -> types::Mailbox {
    types::Mailbox {
        name: name.to_owned(),
        address: address.to_owned(),
    }
}

pub(crate) fn batch_trigger(batch_id: &str) -> pb::Trigger {
    pb::Trigger {
        kind: pb::TriggerKind::Batch as i32,
        batch_id: batch_id.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn resend_trigger(actor: &str, reason: &str, request_id: &str) -> pb::Trigger {
    pb::Trigger {
        kind: pb::TriggerKind::Resend as i32,
        actor: actor.to_owned(),
        reason: reason.to_owned(),
        request_id: request_id.to_owned(),
        ..Default::default()
    }
}

/// Builds a complete entry of a sent invoice, every field set, to `to` only.
pub(crate) fn sent_entry(
    invoice: &str,
    customer: &str,
    trigger: pb::Trigger,
    to: &str,
) -> pb::Entry {
    pb::Entry {
        invoice_number: invoice.to_owned(),
        invoice_revision: 1,
        customer_code: customer.to_owned(),
        trigger: Some(trigger),
        delivery_id: format!("delivery-{invoice}"),
        from: Some(mailbox("Billing", "billing@company.example")),
        to: vec![mailbox("Accounts", to)],
        subject: format!("Invoice {invoice}"),
        message_id: format!("<{invoice}@company.example>"),
        attachment_name: format!("{invoice}.pdf"),
        attachment_size: 48_213,
        attachment_sha256: "ab".repeat(32),
        recipients: vec![types::RecipientResult {
            address: to.to_owned(),
            role: types::RecipientRole::To as i32,
            accepted: true,
            reply_code: 250,
            reply_text: "2.1.5 ok".to_owned(),
        }],
        server_reply: "250 2.0.0 queued".to_owned(),
        outcome: types::DeliveryOutcome::Sent as i32,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        destination: "smtp://127.0.0.1:2525".to_owned(),
        ..Default::default()
    }
}

/// Runs `case` against a server on `database`, then stops the server and removes the
/// database, also when the case panics.
pub(crate) async fn run<F>(database: TestDatabase, case: F) -> Result<()>
where
    F: AsyncFnOnce(&mut Harness) -> Result<()>,
{
    use futures::FutureExt;

    let mut harness = Harness::start(database).await?;
    let outcome = std::panic::AssertUnwindSafe(case(&mut harness))
        .catch_unwind()
        .await;
    let cleanup = harness.finish().await;
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(result) => {
            result?;
            cleanup
        }
    }
}
