//! Two orchestrator replicas on one PostgreSQL database, the other services shared: both run
//! a batch at once, the one that owns the deliveries is killed in the middle, and the survivor
//! takes its deliveries over. Every invoice reaches the SMTP server exactly once, apart from
//! `unknown` ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use invoicer_kit::Config;
use invoicer_kit::server::RunningServer;
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

/// The services other than the orchestrator, in one host that every replica calls, with
/// `INVOICES` invoices of one customer imported.
struct Services {
    host: RunningServer,
    endpoint: String,
    shared: Arc<Config>,
}

impl Services {
    async fn start(database: &TestDatabase, smtp: &TestSmtpServer) -> Result<Services> {
        let mut shared = invoicer_e2e::test_config(database, smtp);
        shared.server.services = "invoice-query,pdf-render,mail-delivery,audit-log".to_owned();
        let shared = Arc::new(shared);
        let host = invoicer::host::start(shared.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let endpoint = format!("http://{}", host.local_addr());

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
            &endpoint,
            "import",
            file.to_str().context("non-UTF-8 path")?,
        ];
        invoicer::run(args.iter().map(|a| (*a).to_owned()).collect(), &mut stdout).await?;
        Ok(Services {
            host,
            endpoint,
            shared,
        })
    }

    /// Returns the config of an orchestrator replica that calls these services.
    fn replica_config(&self) -> Config {
        let mut config = (*self.shared).clone();
        config.server.services = "orchestrator".to_owned();
        config.endpoints.invoice_query = Some(self.endpoint.clone());
        config.endpoints.pdf_render = Some(self.endpoint.clone());
        config.endpoints.mail_delivery = Some(self.endpoint.clone());
        config.endpoints.audit_log = Some(self.endpoint.clone());
        config.batch.lease_duration = "5s".to_owned();
        config.batch.retry_first_delay = "1s".to_owned();
        config.batch.concurrency = 2;
        // Every replica runs the scheduler loop, but only the holder of its lock fires.
        config.batch.schedule.enabled = true;
        config
    }

    async fn stop(self) -> Result<()> {
        self.host
            .shutdown("test finished")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
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
        // Few enough invoices for the first page to hold them all.
        let request = pb::GetBatchRequest {
            id: batch.id,
            ..Default::default()
        };
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
    let services = Services::start(&database, &smtp).await?;
    let replica_config = || services.replica_config();
    let doomed = Replica::start(replica_config())?;
    let survivor = Replica::start(replica_config())?;

    // A replica plans a chunk of invoices in one transaction, so of two batches started at
    // the same moment either one may plan all 40. So the doomed replica starts first, and once
    // its first message arrives it owns every delivery. The survivor's batch then runs beside
    // it and must leave those deliveries alone while their lease holds.
    let mut doomed_client = doomed.client()?;
    let doomed_batch =
        tokio::spawn(async move { doomed_client.run_batch(run_batch_request()).await });
    smtp.wait_for_messages(1, Duration::from_secs(60)).await?;
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
    services.stop().await?;
    database.remove().await?;
    Ok(())
}

/// Lists the scheduled batches, oldest business date first.
async fn scheduled_batches(replica: &Replica) -> Result<Vec<pb::Batch>> {
    let request = pb::ListBatchesRequest {
        page_size: 100,
        page_token: String::new(),
    };
    let batches = replica
        .client()?
        .list_batches(request)
        .await?
        .into_inner()
        .batches;
    let mut scheduled: Vec<pb::Batch> = batches
        .into_iter()
        .filter(|b| b.trigger == i32::from(pb::BatchTrigger::Schedule))
        .collect();
    scheduled.sort_by(|a, b| a.business_date.cmp(&b.business_date));
    Ok(scheduled)
}

/// Two replicas run the scheduler while a night is due. Only the holder of the scheduler's
/// lock may fire, so the other one's catch-up waits until the leader is killed. Then the
/// survivor takes the lead and runs that night once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_night_fires_once_on_postgres() -> Result<()> {
    let Some(database) =
        TestDatabase::postgres("e2e::replicas::scheduled_night_fires_once").await?
    else {
        return Ok(());
    };
    let smtp = TestSmtpServer::builder().start().await?;
    let services = Services::start(&database, &smtp).await?;

    // The schedule fires daily 12 hours from now. So its latest fire instant, about 12 hours
    // ago, comes after the invoices were issued a day ago, and the next one after the test.
    let hour = (chrono::Timelike::hour(&chrono::Utc::now()) + 12) % 24;
    let replica_config = |catch_up: bool| {
        let mut config = services.replica_config();
        config.batch.schedule.cron = format!("0 {hour} * * *");
        config.batch.schedule.timezone = Some("UTC".to_owned());
        config.batch.schedule.catch_up = catch_up;
        config
    };

    // The leader runs no catch-up; it only fires 12 hours from now.
    let leader = Replica::start(replica_config(false))?;
    // An older night's batch makes the latest night count as missed. Its cutoff, at least
    // two days ago, lies before the invoices were issued, so it sends nothing.
    let old_date = (chrono::Utc::now() - chrono::Duration::days(3)).date_naive();
    let request = pb::RunBatchRequest {
        business_date: old_date.to_string(),
        ..run_batch_request()
    };
    let old = leader
        .client()?
        .run_batch(request)
        .await?
        .into_inner()
        .batch
        .context("no batch")?;
    ensure!(
        old.counts.unwrap_or_default().eligible == 0,
        "the batch of {old_date} found invoices: {:?}",
        old.counts
    );

    // The second replica would run the missed night at once if it led.
    let follower = Replica::start(replica_config(true))?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let before_kill = scheduled_batches(&follower).await?;
    ensure!(
        before_kill.len() == 1,
        "a replica that does not hold the scheduler's lock fired: {before_kill:?}"
    );
    ensure!(
        smtp.messages().is_empty(),
        "{} messages sent before the leader was killed",
        smtp.messages().len()
    );

    leader.stop(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let night = loop {
        let batches = scheduled_batches(&follower).await?;
        let missed: Vec<&pb::Batch> = batches
            .iter()
            .filter(|b| b.business_date != old_date.to_string())
            .collect();
        ensure!(
            missed.len() <= 1,
            "the missed night fired twice: {missed:?}"
        );
        if let Some(night) = missed.first()
            && night.status != i32::from(pb::BatchStatus::Running)
        {
            break (*night).clone();
        }
        if Instant::now() > deadline {
            bail!("the surviving replica did not run the missed night within 60 s: {batches:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(
        night.status == i32::from(pb::BatchStatus::Completed),
        "the missed night's batch ended {}: {}",
        night.status,
        night.error
    );
    let counts = night.counts.unwrap_or_default();
    assert_eq!(counts.eligible, INVOICES as u32, "{counts:?}");
    assert_eq!(counts.sent, INVOICES as u32, "{counts:?}");

    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.messages() {
        let parsed = invoicer_e2e::parse_message(&message)?;
        *copies.entry(parsed.delivery_key).or_default() += 1;
    }
    assert_eq!(copies.len(), INVOICES, "{copies:?}");
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    assert_eq!(scheduled_batches(&follower).await?.len(), 2);

    follower.stop(true);
    services.stop().await?;
    database.remove().await?;
    Ok(())
}
