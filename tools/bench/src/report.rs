//! The results page: the command, the machine and one table row per case, written between
//! two markers so that the hand-written parts of the page (the profile) stay.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::machine::MachineCpu;

const START_MARKER: &str = "<!-- bench results: start -->";
const END_MARKER: &str = "<!-- bench results: end -->";

/// Peak resident set size of one process.
pub(crate) struct Rss {
    pub(crate) process: String,
    pub(crate) peak_kib: u64,
}

/// CPU time one process (or a group of processes) spent during the batch, import excluded.
pub(crate) struct Cpu {
    pub(crate) process: String,
    pub(crate) batch_secs: f64,
}

/// The measurements of one case.
pub(crate) struct CaseResult {
    pub(crate) label: String,
    pub(crate) database: &'static str,
    pub(crate) sent: u64,
    pub(crate) import_secs: f64,
    pub(crate) batch_secs: f64,
    /// Per-delivery latency percentiles in seconds, estimated from histogram buckets.
    pub(crate) p50: Option<f64>,
    pub(crate) p90: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) rss: Vec<Rss>,
    /// The service processes.
    pub(crate) cpu: Vec<Cpu>,
    /// Processes beside the services: the SMTP sink and, on PostgreSQL, the server's
    /// processes on this machine.
    pub(crate) outside: Vec<Cpu>,
    pub(crate) machine: MachineCpu,
}

impl CaseResult {
    fn rate(&self) -> f64 {
        if self.batch_secs > 0.0 {
            self.sent as f64 / self.batch_secs
        } else {
            0.0
        }
    }

    /// CPU milliseconds per sent invoice of one process during the batch; `None` when the
    /// batch sent nothing.
    fn cpu_millis_per_invoice(&self, cpu: &Cpu) -> Option<f64> {
        (self.sent > 0).then(|| cpu.batch_secs * 1000.0 / self.sent as f64)
    }

    /// Returns the whole machine's busy CPU milliseconds per sent invoice, or `None` when the
    /// batch sent nothing.
    fn machine_millis_per_invoice(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.machine.busy_secs * 1000.0 / self.sent as f64)
    }

    /// Returns the CPU milliseconds per sent invoice of `process` among `cpu`, or `None` when
    /// it did not run in this case or the batch sent nothing.
    fn millis_of(&self, cpu: &[Cpu], process: &str) -> Option<f64> {
        cpu.iter()
            .find(|cpu| cpu.process == process)
            .and_then(|cpu| self.cpu_millis_per_invoice(cpu))
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} on {}: {} sent in {:.1} s = {:.1} invoices/s, p50 {} p99 {}, peak RSS {}, CPU per invoice {}, machine {} ms, idle {:.0} %",
            self.label,
            self.database,
            self.sent,
            self.batch_secs,
            self.rate(),
            millis(self.p50),
            millis(self.p99),
            self.rss
                .iter()
                .map(|rss| format!("{} {:.0} MiB", rss.process, mib(rss.peak_kib)))
                .collect::<Vec<_>>()
                .join(", "),
            self.cpu
                .iter()
                .chain(&self.outside)
                .map(|cpu| {
                    let millis = self.cpu_millis_per_invoice(cpu);
                    format!("{} {} ms", cpu.process, number_millis_text(millis))
                })
                .collect::<Vec<_>>()
                .join(", "),
            number_millis_text(self.machine_millis_per_invoice()),
            self.machine.idle_share * 100.0,
        )
    }
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Writes the results section of `path`, creating the page when it does not exist. `settings`
/// names what the services ran with, such as `batch.concurrency 16`.
pub(crate) fn write(
    path: &Path,
    command: &str,
    settings: &str,
    results: &[CaseResult],
) -> anyhow::Result<()> {
    let section = results_section(command, settings, results);
    let page = match std::fs::read_to_string(path) {
        Ok(existing) => replace_section(&existing, &section),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            format!("# Batch throughput benchmark\n\n{section}\n")
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))
}

fn replace_section(page: &str, section: &str) -> String {
    match (page.find(START_MARKER), page.find(END_MARKER)) {
        (Some(start), Some(end)) if start < end => {
            let after = &page[end + END_MARKER.len()..];
            format!("{}{section}{after}", &page[..start])
        }
        _ => format!("{page}\n{section}\n"),
    }
}

fn results_section(command: &str, settings: &str, results: &[CaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{START_MARKER}");
    let _ = writeln!(
        out,
        "Measured {} with `{command}` ({settings}).\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "Machine: {}\n", machine());
    let processes = distinct_names(
        results
            .iter()
            .flat_map(|result| result.rss.iter().map(|rss| rss.process.as_str())),
    );
    let _ = write!(
        out,
        "| invoices | database | sent | import s | batch s | invoices/s | p50 ms | p90 ms | p99 ms |"
    );
    for process in &processes {
        let _ = write!(out, " {process} MiB |");
    }
    let _ = writeln!(out);
    let _ = write!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for _ in &processes {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for result in results {
        let _ = write!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            result.label,
            result.database,
            result.sent,
            result.import_secs,
            result.batch_secs,
            result.rate(),
            number_millis(result.p50),
            number_millis(result.p90),
            number_millis(result.p99),
        );
        for process in &processes {
            let peak = result
                .rss
                .iter()
                .find(|rss| rss.process == *process)
                .map_or_else(|| "-".to_owned(), |rss| format!("{:.0}", mib(rss.peak_kib)));
            let _ = write!(out, " {peak} |");
        }
        let _ = writeln!(out);
    }
    write_cpu_table(&mut out, results);
    let _ = write!(out, "{END_MARKER}");
    out
}

/// Writes the CPU milliseconds per sent invoice of each service process during the batch,
/// import excluded, their sum, then the SMTP sink's, the PostgreSQL server's and the whole
/// machine's, and the share of time the cores were idle.
fn write_cpu_table(out: &mut String, results: &[CaseResult]) {
    let processes = distinct_names(
        results
            .iter()
            .flat_map(|result| result.cpu.iter().map(|cpu| cpu.process.as_str())),
    );
    let outside = distinct_names(
        results
            .iter()
            .flat_map(|result| result.outside.iter().map(|cpu| cpu.process.as_str())),
    );
    let _ = writeln!(
        out,
        "\nCPU milliseconds per sent invoice during the batch: user and system time of each service process and their sum, then of the SMTP sink, of the processes named `postgres` on this machine (the database server, on PostgreSQL) and of the whole machine with the kernel. Linux counts them in steps of 10 ms, so a batch of a few invoices gives coarse figures. Idle is the share of the cores' time that nothing ran.\n"
    );
    let mut columns = processes.clone();
    columns.push("services");
    columns.extend(&outside);
    columns.extend(["machine", "idle"]);
    let _ = write!(out, "| invoices | database |");
    for column in &columns {
        let _ = write!(out, " {column} |");
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &columns {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for result in results {
        let _ = write!(out, "| {} | {} |", result.label, result.database);
        // Only this case's processes: a case of another layout leaves the others' cells empty.
        let mut services: Option<f64> = None;
        for process in &processes {
            let millis = result.millis_of(&result.cpu, process);
            if let Some(millis) = millis {
                services = Some(services.unwrap_or_default() + millis);
            }
            let _ = write!(out, " {} |", number_millis_text(millis));
        }
        let _ = write!(out, " {} |", number_millis_text(services));
        for process in &outside {
            let millis = result.millis_of(&result.outside, process);
            let _ = write!(out, " {} |", number_millis_text(millis));
        }
        let machine = result.machine_millis_per_invoice();
        let _ = writeln!(
            out,
            " {} | {:.0} % |",
            number_millis_text(machine),
            result.machine.idle_share * 100.0
        );
    }
}

/// Returns the names in their first-seen order, each once: the process columns of a table.
fn distinct_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut distinct: Vec<&str> = Vec::new();
    for name in names {
        if !distinct.contains(&name) {
            distinct.push(name);
        }
    }
    distinct
}

/// Formats milliseconds with two decimals, or `-` for none.
fn number_millis_text(millis: Option<f64>) -> String {
    millis.map_or_else(|| "-".to_owned(), |millis| format!("{millis:.2}"))
}

fn number_millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1}", s * 1000.0))
}

/// CPU model, core count and memory, read from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {memory_gib:.0} GiB memory, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_between_markers_is_replaced() {
        let page =
            format!("# Title\n\nintro\n\n{START_MARKER}\nold\n{END_MARKER}\n\n## Profile\nkept\n");
        let replaced = replace_section(&page, &format!("{START_MARKER}\nnew\n{END_MARKER}"));
        assert!(replaced.contains("\nnew\n"), "{replaced}");
        assert!(!replaced.contains("old"), "{replaced}");
        assert!(replaced.contains("## Profile\nkept\n"), "{replaced}");
        assert!(replaced.starts_with("# Title\n\nintro\n\n"), "{replaced}");
    }

    fn cpu_of(secs: &[(&str, f64)]) -> Vec<Cpu> {
        secs.iter()
            .map(|(process, secs)| Cpu {
                process: (*process).to_owned(),
                batch_secs: *secs,
            })
            .collect()
    }

    fn case(label: &str, sent: u64, cpu_secs: &[(&str, f64)]) -> CaseResult {
        CaseResult {
            label: label.to_owned(),
            database: "SQLite",
            sent,
            import_secs: 1.0,
            batch_secs: 10.0,
            p50: None,
            p90: None,
            p99: None,
            rss: Vec::new(),
            cpu: cpu_of(cpu_secs),
            outside: cpu_of(&[("smtp sink", 0.5)]),
            machine: MachineCpu {
                busy_secs: 8.0,
                idle_share: 0.125,
            },
        }
    }

    #[test]
    fn cpu_table_per_invoice_and_summed() {
        let mut postgres = case(
            "generated 1000",
            1000,
            &[("pdf-render", 4.0), ("orchestrator", 2.5)],
        );
        postgres.database = "PostgreSQL";
        postgres
            .outside
            .push(cpu_of(&[("postgres", 1.25)]).remove(0));
        let results = [
            case(
                "generated 1000",
                1000,
                &[("pdf-render", 4.0), ("orchestrator", 2.5)],
            ),
            postgres,
        ];
        let mut out = String::new();

        write_cpu_table(&mut out, &results);

        assert!(
            out.contains("| invoices | database | pdf-render | orchestrator | services | smtp sink | postgres | machine | idle |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "| generated 1000 | SQLite | 4.00 | 2.50 | 6.50 | 0.50 | - | 8.00 | 12 % |"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "| generated 1000 | PostgreSQL | 4.00 | 2.50 | 6.50 | 0.50 | 1.25 | 8.00 | 12 % |"
            ),
            "{out}"
        );
    }

    #[test]
    fn cpu_table_without_sent_invoices() {
        let results = [
            case("generated 10", 0, &[("invoicer", 1.0)]),
            case("generated 20", 20, &[("other", 1.0)]),
        ];
        let mut out = String::new();

        write_cpu_table(&mut out, &results);

        assert!(
            out.contains("| generated 10 | SQLite | - | - | - | - | - | 12 % |"),
            "{out}"
        );
        assert!(
            out.contains("| generated 20 | SQLite | - | 50.00 | 50.00 | 25.00 | 400.00 | 12 % |"),
            "{out}"
        );
    }

    #[test]
    fn page_without_markers_gets_the_section_appended() {
        let replaced = replace_section("# Title\n", "SECTION");
        assert_eq!(replaced, "# Title\n\nSECTION\n");
    }
}
