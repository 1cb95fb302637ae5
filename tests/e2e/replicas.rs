//! Two orchestrator replicas on one PostgreSQL database, the other services shared: both run
//! the batch at once, one is killed in the middle, and the survivor takes its deliveries
//! over. Every invoice reaches the SMTP server exactly once, apart from `unknown` ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use invoicer_kit::Config;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use invoicer_test_db::TestDatabase;
use invoicer_test_smtp::{Stage, TestSmtpServer};
use tonic::transport::Channel;

use crate::data::{contact, customer, export, invoice};

const INVOICES: usize = 40;

/// An orchestrator host on a runtime of its own, so that killing it drops every task at
/// once, mid-delivery, without the graceful stop: what SIGKILL does to a process.
struct Replica {
    endpoint: String,
    control: Option<std::sync::mpsc::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    fn start(config: Config) -> Result<Replica> {
        let (started, address) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let (control, stop) = std::sync::mpsc::channel::<bool>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = started.send(Err(error.to_string()));
                    return;
                }
            };
            let server = match runtime.block_on(invoicer::host::start(Arc::new(config))) {
                Ok(server) => server,
                Err(error) => {
                    let _ = started.send(Err(error.to_string()));
                    return;
                }
            };
            let _ = started.send(Ok(server.local_addr()));
            let graceful = stop.recv().unwrap_or(false);
            if graceful {
                let _ = runtime.block_on(server.shutdown("test finished"));
            } else {
                // Tasks are dropped where they stand; the server handle goes after them.
                runtime.shutdown_background();
                drop(server);
            }
        });
        let address = address
            .recv()
            .context("the replica thread ended")?
            .map_err(|e| anyhow::anyhow!("replica did not start: {e}"))?;
        Ok(Replica {
            endpoint: format!("http://{address}"),
            control: Some(control),
            thread: Some(thread),
        })
    }

    fn client(&self) -> Result<OrchestratorServiceClient<Channel>> {
        let channel = Channel::from_shared(self.endpoint.clone())?.connect_lazy();
        Ok(OrchestratorServiceClient::new(channel).max_decoding_message_size(64 << 20))
    }

    fn stop(mut self, graceful: bool) {
        if let Some(control) = self.control.take() {
            let _ = control.send(graceful);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_batch_request() -> pb::RunBatchRequest {
    pb::RunBatchRequest {
        cutoff: String::new(),
        lookback: "30d".to_owned(),
        dry_run: false,
        business_date: String::new(),
    }
}

/// Returns the latest state of each invoice's delivery, read from every batch.
async fn delivery_states(replica: &Replica) -> Result<HashMap<String, pb::Delivery>> {
    let mut client = replica.client()?;
    let request = pb::ListBatchesRequest {
        page_size: 100,
        page_token: String::new(),
    };
    let mut batches = client.list_batches(request).await?.into_inner().batches;
    batches.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let mut states = HashMap::new();
    for batch in batches {
        let request = pb::GetBatchRequest { id: batch.id };
        let full = client
            .get_batch(request)
            .await?
            .into_inner()
            .batch
            .context("GetBatch returned no batch")?;
        for delivery in full.deliveries {
            states.insert(delivery.invoice_number.clone(), delivery);
        }
    }
    Ok(states)
}

fn settled(state: i32) -> bool {
    state == i32::from(pb::DeliveryState::Sent) || state == i32::from(pb::DeliveryState::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_one_killed_on_postgres() -> Result<()> {
    let Some(database) = TestDatabase::postgres("e2e::replicas::two_replicas_one_killed").await?
    else {
        return Ok(());
    };
    let smtp = TestSmtpServer::builder()
        .delay(Stage::DataEnd, Duration::from_millis(150))
        .start()
        .await?;
    let mut shared = invoicer_e2e::test_config(&database, &smtp);
    shared.server.services = "invoice-query,pdf-render,mail-delivery,audit-log".to_owned();
    let shared = Arc::new(shared);
    let services = invoicer::host::start(shared.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let services_endpoint = format!("http://{}", services.local_addr());

    let customers = vec![customer(
        "C-1",
        vec![contact("Lee", "lee@buyer.example", "to")],
    )];
    let invoices = (0..INVOICES)
        .map(|n| invoice(&format!("INV-{n:03}"), "C-1", "10.00"))
        .collect();
    let file = database.folder().join("export.json");
    std::fs::write(&file, export(customers, invoices))?;
    let mut stdout = Vec::new();
    let args = [
        "invoicer",
        "--endpoint",
        &services_endpoint,
        "import",
        file.to_str().context("non-UTF-8 path")?,
    ];
    invoicer::run(args.iter().map(|a| (*a).to_owned()).collect(), &mut stdout).await?;

    let replica_config = || {
        let mut config = (*shared).clone();
        config.server.services = "orchestrator".to_owned();
        config.endpoints.invoice_query = Some(services_endpoint.clone());
        config.endpoints.pdf_render = Some(services_endpoint.clone());
        config.endpoints.mail_delivery = Some(services_endpoint.clone());
        config.endpoints.audit_log = Some(services_endpoint.clone());
        config.batch.lease_duration = "5s".to_owned();
        config.batch.retry_first_delay = "1s".to_owned();
        config.batch.concurrency = 2;
        // Both replicas run the scheduler loop; only the lock holder fires.
        config.batch.schedule.enabled = true;
        config
    };
    let doomed = Replica::start(replica_config())?;
    let survivor = Replica::start(replica_config())?;

    // Both run the batch at once, so they split the invoices between them.
    let mut doomed_client = doomed.client()?;
    let doomed_batch =
        tokio::spawn(async move { doomed_client.run_batch(run_batch_request()).await });
    let mut survivor_client = survivor.client()?;
    let survivor_batch =
        tokio::spawn(async move { survivor_client.run_batch(run_batch_request()).await });
    smtp.wait_for_messages(8, Duration::from_secs(60)).await?;
    doomed.stop(false);
    let _ = doomed_batch.await;
    let first = survivor_batch
        .await??
        .into_inner()
        .batch
        .context("no batch")?;
    let counts = first.counts.unwrap_or_default();
    ensure!(
        counts.eligible < INVOICES as u32,
        "the survivor's batch took every invoice: {counts:?}"
    );

    // The survivor takes the killed replica's deliveries over once their leases expire and
    // runs batches until nothing is left.
    let deadline = Instant::now() + Duration::from_secs(120);
    let states = loop {
        let _ = survivor.client()?.run_batch(run_batch_request()).await?;
        let states = delivery_states(&survivor).await?;
        if states.len() == INVOICES && states.values().all(|d| settled(d.state)) {
            break states;
        }
        if Instant::now() > deadline {
            let open: Vec<_> = states
                .values()
                .filter(|d| !settled(d.state))
                .map(|d| (&d.invoice_number, d.state, &d.reason))
                .collect();
            bail!("deliveries not settled after 120 s: {open:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.messages() {
        let parsed = invoicer_e2e::parse_message(&message)?;
        let number = parsed.delivery_key.split("/r").next().unwrap_or_default();
        *copies.entry(number.to_owned()).or_default() += 1;
    }
    let mut unknown = 0;
    for (number, delivery) in &states {
        let received = copies.get(number).copied().unwrap_or(0);
        if delivery.state == i32::from(pb::DeliveryState::Sent) {
            assert_eq!(received, 1, "{number} is sent and arrived {received} times");
        } else {
            unknown += 1;
            assert!(
                received <= 1,
                "{number} is unknown and arrived {received} times"
            );
        }
    }
    assert!(unknown <= 2, "{unknown} unknown deliveries from one kill");

    // The killed replica's batch is marked failed by the survivor.
    let batches = survivor
        .client()?
        .list_batches(pb::ListBatchesRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .batches;
    let running = batches
        .iter()
        .filter(|b| b.status == i32::from(pb::BatchStatus::Running))
        .count();
    assert_eq!(
        running, 0,
        "a batch of the killed replica still counts as running"
    );

    survivor.stop(true);
    services
        .shutdown("test finished")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    database.remove().await?;
    Ok(())
}
