//! One benchmark case: a fresh database, the sink and the five service processes, the import,
//! the timed batch, then the metrics and each process's peak RSS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use invoicer_test_db::TestDatabase;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::machine::{self, MachineTicks};
use crate::report::{CaseResult, Cpu, Rss};
use crate::{generate, latency, report};

const SERVICES: [&str; 5] = [
    "invoice-query",
    "pdf-render",
    "mail-delivery",
    "audit-log",
    "orchestrator",
];

/// Name in the report of the processes named `postgres` on this machine.
const POSTGRES_PROCESSES: &str = "postgres";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DatabaseKind {
    Sqlite,
    /// A fresh database on the server named by INVOICER_TEST_DATABASE_URL.
    Postgres,
}

impl DatabaseKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "SQLite",
            DatabaseKind::Postgres => "PostgreSQL",
        }
    }
}

/// Placement of the five services in processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layout {
    /// Each service in its own `invoicer serve --services NAME` process, as one Deployment per
    /// service runs them.
    PerService,
    /// All five in one `invoicer serve` process, as the default configuration runs them. They
    /// still call each other over gRPC on loopback.
    OneProcess,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Generated invoice counts, comma-separated, such as 1000,10000,100000.
    #[arg(long, value_delimiter = ',', default_value = "1000", value_parser = at_least_one)]
    invoices: Vec<usize>,
    /// Also run the Chinook sample export (services/invoicer/sample/chinook-export.json).
    #[arg(long)]
    chinook: bool,
    /// Databases, comma-separated: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    database: Vec<DatabaseKind>,
    /// Placement of the services in processes.
    #[arg(long, value_enum, default_value_t = Layout::PerService)]
    layout: Layout,
    /// Deliveries the orchestrator runs at once (`batch.concurrency`).
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    concurrency: usize,
    /// Tokio worker threads of each service process, set as `TOKIO_WORKER_THREADS`
    /// [default: 1 with `--layout per-service`, one per core with `--layout one-process`].
    #[arg(long, value_parser = at_least_one)]
    worker_threads: Option<usize>,
    /// The invoicer binary [default: `invoicer` in the folder of this benchmark's binary].
    #[arg(long)]
    invoicer: Option<PathBuf>,
    /// Results page to write; only the part between its result markers is replaced.
    #[arg(long, default_value = "docs/benchmarks/batch.md")]
    output: PathBuf,
    /// Seconds each CLI call of a case, the import and the batch, may run before the case fails.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

impl RunArgs {
    /// Returns the tokio worker threads of each service process, or `None` for one per core.
    /// Five processes with one worker per core each would run ten workers on two cores, and
    /// one worker per process sent about 7 % more invoices per second there.
    fn worker_threads(&self) -> Option<usize> {
        match (self.worker_threads, self.layout) {
            (Some(threads), _) => Some(threads),
            (None, Layout::PerService) => Some(1),
            (None, Layout::OneProcess) => None,
        }
    }

    /// Describes the settings the services ran with, for the results page.
    fn settings(&self) -> String {
        let workers = match self.worker_threads() {
            Some(1) => "1 tokio worker thread per service process".to_owned(),
            Some(threads) => format!("{threads} tokio worker threads per service process"),
            None => "one tokio worker thread per core".to_owned(),
        };
        format!("batch.concurrency {}, {workers}", self.concurrency)
    }
}

/// What one case runs on.
struct Case {
    label: String,
    export: Export,
    database: DatabaseKind,
}

enum Export {
    Generated(usize),
    File(PathBuf),
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let invoicer = match &args.invoicer {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("invoicer"),
    };
    ensure!(
        invoicer.exists(),
        "no invoicer binary at {}: build it with the benchmark, `cargo build --profile dist -p invoicer -p invoicer-bench`, or pass --invoicer",
        invoicer.display()
    );
    let postgres_url_set = std::env::var_os(invoicer_test_db::POSTGRES_URL_VARIABLE).is_some();
    ensure!(
        !args.database.contains(&DatabaseKind::Postgres) || postgres_url_set,
        "--database postgres needs {}, such as postgres://postgres@127.0.0.1:5432/test; set it or leave postgres out",
        invoicer_test_db::POSTGRES_URL_VARIABLE
    );
    let mut cases = Vec::new();
    for &database in &args.database {
        for &count in &args.invoices {
            cases.push(Case {
                label: format!("generated {count}"),
                export: Export::Generated(count),
                database,
            });
        }
        if args.chinook {
            let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../services/invoicer/sample/chinook-export.json");
            cases.push(Case {
                label: "Chinook sample".to_owned(),
                export: Export::File(sample),
                database,
            });
        }
    }
    let mut results = Vec::new();
    for case in cases {
        eprintln!("bench: {} on {}", case.label, case.database.as_str());
        let result = run_case(&case, &args, &invoicer)
            .await
            .with_context(|| format!("case {} on {} failed", case.label, case.database.as_str()))?;
        eprintln!("bench: {}", result.summary());
        results.push(result);
    }
    let mut command = std::env::args().collect::<Vec<_>>().join(" ");
    // How the services reached PostgreSQL (TCP or socket, the sslmode) changes the results.
    if args.database.contains(&DatabaseKind::Postgres)
        && let Ok(url) = std::env::var(invoicer_test_db::POSTGRES_URL_VARIABLE)
        && !url.is_empty()
    {
        command = format!(
            "{}='{}' {command}",
            invoicer_test_db::POSTGRES_URL_VARIABLE,
            without_password(&url).replace('\'', "'\\''")
        );
    }
    report::write(&args.output, &command, &args.settings(), &results)?;
    eprintln!("bench: wrote {}", args.output.display());
    Ok(())
}

async fn run_case(case: &Case, args: &RunArgs, invoicer: &Path) -> anyhow::Result<CaseResult> {
    let database = match case.database {
        DatabaseKind::Sqlite => TestDatabase::sqlite()?,
        DatabaseKind::Postgres => TestDatabase::postgres("bench")
            .await?
            .context("PostgreSQL needs INVOICER_TEST_DATABASE_URL, such as postgres://postgres@127.0.0.1:5432/test")?,
    };
    let result = run_on(case, args, invoicer, &database).await;
    database.remove().await?;
    result
}

async fn run_on(
    case: &Case,
    args: &RunArgs,
    invoicer: &Path,
    database: &TestDatabase,
) -> anyhow::Result<CaseResult> {
    let folder = database.folder().to_owned();
    let exports = match &case.export {
        Export::Generated(count) => {
            let mut paths = Vec::new();
            for (index, document) in generate::exports(*count).into_iter().enumerate() {
                let path = folder.join(format!("export-{index:02}.json"));
                std::fs::write(&path, document)?;
                paths.push(path);
            }
            paths
        }
        Export::File(path) => vec![path.clone()],
    };

    let mut sink = Process::sink(&folder).await?;
    let mut ports = BTreeMap::new();
    let shared_port = match args.layout {
        Layout::PerService => None,
        Layout::OneProcess => Some(free_port()?),
    };
    for name in SERVICES {
        let port = match shared_port {
            Some(port) => port,
            None => free_port()?,
        };
        ports.insert(name, port);
    }
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let config = write_config(&folder, database, &ports, args)?;
    let groups: Vec<(&str, &str)> = match args.layout {
        Layout::PerService => SERVICES.iter().map(|name| (*name, *name)).collect(),
        Layout::OneProcess => vec![("invoicer", "invoice-query")],
    };
    let mut services = Vec::new();
    for (name, first_service) in groups {
        let hosted = match args.layout {
            Layout::PerService => name.to_owned(),
            Layout::OneProcess => SERVICES.join(","),
        };
        let process = Process::service(
            invoicer,
            &config,
            ServiceProcess {
                name,
                services: &hosted,
                port: ports[first_service],
                metrics,
                worker_threads: args.worker_threads(),
            },
            &sink.address,
            &folder,
        )
        .await?;
        services.push(process);
    }
    for process in &mut services {
        process.wait_until_listening().await?;
    }
    // The process ids let a profiler attach, such as `perf record -g -p PID,PID`.
    let pids: Vec<String> = services
        .iter()
        .map(|process| {
            format!(
                "{} {}",
                process.name,
                process.child.id().unwrap_or_default()
            )
        })
        .collect();
    eprintln!("bench: process ids: {}", pids.join(", "));

    let endpoint = |name: &str| format!("http://127.0.0.1:{}", ports[name]);
    let started = Instant::now();
    for export in &exports {
        let export_text = export.to_string_lossy().into_owned();
        cli(
            invoicer,
            &config,
            &endpoint("invoice-query"),
            &["import", &export_text],
        )
        .await?;
    }
    let import_secs = started.elapsed().as_secs_f64();

    let cpu_before = services
        .iter()
        .map(Process::cpu_secs)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sink_before = sink.cpu_secs()?;
    let postgres_before = (case.database == DatabaseKind::Postgres).then(machine::postgres_ticks);
    let machine_before = MachineTicks::read()?;
    let started = Instant::now();
    let output = cli(
        invoicer,
        &config,
        &endpoint("orchestrator"),
        &["batch", "run", "--lookback", "3650d", "--json"],
    )
    .await?;
    let batch_secs = started.elapsed().as_secs_f64();
    let machine_cpu = machine_before.until(MachineTicks::read()?);
    let mut cpu = Vec::new();
    for (process, before) in services.iter().zip(cpu_before) {
        cpu.push(Cpu {
            process: process.name.clone(),
            batch_secs: process.cpu_secs()? - before,
        });
    }
    let mut outside = vec![Cpu {
        process: sink.name.clone(),
        batch_secs: sink.cpu_secs()? - sink_before,
    }];
    if let Some(before) = postgres_before
        && let Some(secs) = machine::postgres_secs_between(&before, &machine::postgres_ticks())
    {
        outside.push(Cpu {
            process: POSTGRES_PROCESSES.to_owned(),
            batch_secs: secs,
        });
    }
    let summary: serde_json::Value =
        serde_json::from_str(output.lines().last().context("batch run printed nothing")?)?;
    let sent = summary["sent"].as_u64().unwrap_or_default();
    let eligible = summary["eligible"].as_u64().unwrap_or_default();
    ensure!(sent == eligible, "not every invoice was sent: {summary}");

    let metrics_text = latency::scrape(metrics).await?;
    let buckets = latency::sent_buckets(&metrics_text);
    let mut rss = Vec::new();
    for process in services.iter().chain(std::iter::once(&sink)) {
        rss.push(Rss {
            process: process.name.clone(),
            peak_kib: process.peak_rss_kib()?,
        });
    }
    for process in services {
        process.stop().await?;
    }
    sink.stop_in_place().await?;
    let received = sink.sink_message_count().await?;
    ensure!(
        received == sent,
        "the SMTP sink received {received} messages, but the batch sent {sent}"
    );
    Ok(CaseResult {
        label: case.label.clone(),
        database: case.database.as_str(),
        sent,
        import_secs,
        batch_secs,
        p50: latency::quantile(&buckets, 0.5),
        p90: latency::quantile(&buckets, 0.9),
        p99: latency::quantile(&buckets, 0.99),
        rss,
        cpu,
        outside,
        machine: machine_cpu,
    })
}

/// Parses a count that must be 1 or more.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(error) => Err(format!("{error}; expected a whole number of 1 or more")),
    }
}

/// One service process of a case: its name in the report, the services it hosts and its
/// addresses.
struct ServiceProcess<'a> {
    /// Name in the report: the service, or `invoicer` for all five.
    name: &'a str,
    /// `--services` of `invoicer serve`.
    services: &'a str,
    port: u16,
    /// Prometheus endpoint, served by the process that hosts the orchestrator.
    metrics: SocketAddr,
    /// `TOKIO_WORKER_THREADS` of the process, or `None` for tokio's default of one per core.
    worker_threads: Option<usize>,
}

/// Returns utime + stime of a `/proc/PID/stat` line, in seconds.
fn cpu_secs_of_stat(stat: &str) -> Option<f64> {
    machine::process_ticks_of_stat(stat).map(|ticks| ticks as f64 / machine::USER_HZ)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn write_config(
    folder: &Path,
    database: &TestDatabase,
    ports: &BTreeMap<&str, u16>,
    args: &RunArgs,
) -> anyhow::Result<PathBuf> {
    let endpoint = |name: &str| format!("http://127.0.0.1:{}", ports[name]);
    let database_url = database
        .database_url()
        .map(|url| format!("database_url = \"{url}\"\n"))
        .unwrap_or_default();
    let config = format!(
        r#"data_dir = "{data}"
{database_url}
[client]
timeout_secs = {timeout}

[batch]
concurrency = {concurrency}

[batch.schedule]
enabled = false

[endpoints]
invoice_query = "{iq}"
pdf_render = "{pdf}"
mail_delivery = "{mail}"
audit_log = "{audit}"
orchestrator = "{orch}"

[telemetry]
log_filter = "warn"
"#,
        data = database.data_dir().display(),
        timeout = args.timeout_secs,
        concurrency = args.concurrency,
        iq = endpoint("invoice-query"),
        pdf = endpoint("pdf-render"),
        mail = endpoint("mail-delivery"),
        audit = endpoint("audit-log"),
        orch = endpoint("orchestrator"),
    );
    let path = folder.join("invoicer.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// Builds a command for `program` without the caller's `INVOICER_*`, `OTEL_*` and `RUST_LOG`.
fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("INVOICER_") || text.starts_with("OTEL_") || text == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

async fn cli(
    invoicer: &Path,
    config: &Path,
    endpoint: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let output = clean_command(invoicer)
        .arg("--config")
        .arg(config)
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "invoicer {args:?} exited with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// A child process of the benchmark: a service or the sink.
struct Process {
    name: String,
    child: Child,
    address: String,
    listen: Vec<SocketAddr>,
    log: PathBuf,
    /// The sink's stdout after its first line; it prints the message count at exit.
    output: Option<Lines<BufReader<ChildStdout>>>,
}

impl Process {
    async fn sink(folder: &Path) -> anyhow::Result<Process> {
        let program = std::env::current_exe()?;
        let log = folder.join("sink.log");
        let mut child = clean_command(&program)
            .args(["sink", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start the SMTP sink")?;
        let stdout = child.stdout.take().context("sink has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .context("the SMTP sink did not start")??
            .unwrap_or_default();
        let Some(address) = first.strip_prefix("listening ") else {
            bail!("unexpected first line from the SMTP sink: {first:?}");
        };
        Ok(Process {
            name: "smtp sink".to_owned(),
            child,
            address: format!("smtp://{address}"),
            listen: Vec::new(),
            log,
            output: Some(lines),
        })
    }

    async fn service(
        invoicer: &Path,
        config: &Path,
        process: ServiceProcess<'_>,
        smtp_url: &str,
        folder: &Path,
    ) -> anyhow::Result<Process> {
        let ServiceProcess {
            name,
            services,
            port,
            metrics,
            worker_threads,
        } = process;
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let log = folder.join(format!("{name}.log"));
        let mut command = clean_command(invoicer);
        command
            .arg("--config")
            .arg(config)
            .args(["serve", "--services", services])
            .env("INVOICER_LISTEN", listen.to_string())
            .env("INVOICER_SMTP_URL", smtp_url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        match worker_threads {
            Some(threads) => command.env("TOKIO_WORKER_THREADS", threads.to_string()),
            None => command.env_remove("TOKIO_WORKER_THREADS"),
        };
        let mut listens = vec![listen];
        if services.split(',').any(|service| service == "orchestrator") {
            command.env("INVOICER_METRICS_LISTEN", metrics.to_string());
            listens.push(metrics);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", invoicer.display()))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            address: format!("http://{listen}"),
            listen: listens,
            log,
            output: None,
        })
    }

    /// Waits until the process listens on each of its addresses. Fails at once when it
    /// exits, and after `START_TIMEOUT` when it runs without listening.
    async fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        for &address in &self.listen {
            while tokio::net::TcpStream::connect(address).await.is_err() {
                if let Some(status) = self.child.try_wait()? {
                    bail!(
                        "{} exited ({status}) before it listened on {address}; log:\n{}",
                        self.name,
                        self.log_text()
                    );
                }
                if started.elapsed() > START_TIMEOUT {
                    bail!(
                        "{} does not listen on {address}; log:\n{}",
                        self.name,
                        self.log_text()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Returns what the process wrote to its log file, or nothing when the file is unreadable.
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU time the process used so far, user and system, over all its threads, in seconds.
    fn cpu_secs(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("process already exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        cpu_secs_of_stat(&stat)
            .with_context(|| format!("cannot read the CPU times in /proc/{pid}/stat"))
    }

    /// Peak resident set size (`VmHWM` in /proc/PID/status), in KiB.
    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("process already exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmHWM in /proc/{pid}/status"))
    }

    /// Reads the sink's `messages N` line, printed at exit.
    async fn sink_message_count(&mut self) -> anyhow::Result<u64> {
        let lines = self.output.as_mut().context("not the sink")?;
        while let Some(line) = lines.next_line().await? {
            if let Some(count) = line.strip_prefix("messages ") {
                return Ok(count.trim().parse()?);
            }
        }
        bail!("the SMTP sink exited without printing its message count")
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop_in_place().await
    }

    /// Sends SIGTERM and waits for the exit.
    async fn stop_in_place(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .with_context(|| format!("{} still running after SIGTERM", self.name))??;
        if !status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!(
                "{} ({}) exited with {status}; log:\n{log}",
                self.name,
                self.address
            );
        }
        Ok(())
    }
}

/// Replaces the password in `url`, between `user:` and `@` or as a `password` parameter of
/// the query, by `***`.
fn without_password(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut masked = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => match rest[..at].split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
                    None => url.to_owned(),
                },
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _value)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        masked = format!("{masked}?{}", pairs.join("&"));
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_secs_of_stat_adds_user_and_system() {
        let stat =
            "4242 (invoicer serve) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0";

        assert_eq!(cpu_secs_of_stat(stat), Some(3.25));
    }

    #[test]
    fn password_left_out_of_database_url() {
        assert_eq!(
            without_password("postgres://bench:s3cr:et@127.0.0.1:5432/test?sslmode=disable"),
            "postgres://bench:***@127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(
            without_password("postgres://bench:p%40ss@[::1]:5432/test"),
            "postgres://bench:***@[::1]:5432/test"
        );
        assert_eq!(
            without_password("postgres://bench:p@ss@127.0.0.1/test?application_name=a@b"),
            "postgres://bench:***@127.0.0.1/test?application_name=a@b"
        );
        assert_eq!(
            without_password("postgres://bench@127.0.0.1/test?sslmode=disable&password=s3cret"),
            "postgres://bench@127.0.0.1/test?sslmode=disable&password=***"
        );
        let plain = "postgres://postgres@127.0.0.1:5432/test?host=/var/run/postgresql";
        assert_eq!(without_password(plain), plain);
        assert_eq!(without_password("not a url"), "not a url");
    }

    #[test]
    fn counts_of_zero_rejected() {
        assert_eq!(at_least_one("0"), Err("must be at least 1".to_owned()));
        assert_eq!(at_least_one("250"), Ok(250));
        assert!(at_least_one("ten").is_err());
    }

    /// A binary that exits at once, such as `--invoicer /bin/true`, fails the start with
    /// its exit status instead of waiting out `START_TIMEOUT`.
    #[tokio::test]
    async fn exited_service_fails_start() {
        let folder = tempfile::tempdir().unwrap();
        let process = ServiceProcess {
            name: "pdf-render",
            services: "pdf-render",
            port: free_port().unwrap(),
            metrics: SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())),
            worker_threads: Some(1),
        };
        let config = folder.path().join("invoicer.toml");
        let mut service = Process::service(
            Path::new("/bin/true"),
            &config,
            process,
            "smtp://127.0.0.1:1",
            folder.path(),
        )
        .await
        .unwrap();

        let error = service.wait_until_listening().await.unwrap_err();

        assert!(error.to_string().contains("exited"), "{error:#}");
    }

    #[test]
    fn cpu_secs_of_stat_rejects_short_line() {
        assert_eq!(cpu_secs_of_stat("4242 (invoicer) S 1"), None);
    }
}
