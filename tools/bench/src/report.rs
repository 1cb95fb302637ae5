//! The results page: the command, the machine and one table row per case, written between
//! two markers so that the hand-written parts of the page (the profile) stay.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

const START_MARKER: &str = "<!-- bench results: start -->";
const END_MARKER: &str = "<!-- bench results: end -->";

/// Peak resident set size of one process.
pub(crate) struct Rss {
    pub(crate) process: String,
    pub(crate) peak_kib: u64,
}

/// CPU time one service process spent during the batch, import excluded.
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
    pub(crate) cpu: Vec<Cpu>,
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

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} on {}: {} sent in {:.1} s = {:.1} invoices/s, p50 {} p99 {}, peak RSS {}, CPU per invoice {}",
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
                .map(|cpu| {
                    let millis = self.cpu_millis_per_invoice(cpu);
                    format!("{} {} ms", cpu.process, number_millis_text(millis))
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Writes the results section of `path`, creating the page when it does not exist.
pub(crate) fn write(
    path: &Path,
    command: &str,
    concurrency: usize,
    results: &[CaseResult],
) -> anyhow::Result<()> {
    let section = results_section(command, concurrency, results);
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

fn results_section(command: &str, concurrency: usize, results: &[CaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{START_MARKER}");
    let _ = writeln!(
        out,
        "Measured {} with `{command}` (batch.concurrency {concurrency}).\n",
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
/// import excluded. The SMTP sink's and a database server's own CPU are not included.
fn write_cpu_table(out: &mut String, results: &[CaseResult]) {
    let processes = distinct_names(
        results
            .iter()
            .flat_map(|result| result.cpu.iter().map(|cpu| cpu.process.as_str())),
    );
    let _ = writeln!(
        out,
        "\nCPU milliseconds per sent invoice during the batch: user and system time of each service process, counted by Linux in steps of 10 ms, so a batch of a few invoices gives coarse figures. The SMTP sink's and a database server's own CPU are not included.\n"
    );
    let _ = write!(out, "| invoices | database |");
    for process in &processes {
        let _ = write!(out, " {process} |");
    }
    let _ = writeln!(out, " all |");
    let _ = write!(out, "|---|---|");
    for _ in &processes {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---:|");
    for result in results {
        let _ = write!(out, "| {} | {} |", result.label, result.database);
        // Only this case's processes: a case of another layout leaves the others' cells empty.
        let mut all: Option<f64> = None;
        for process in &processes {
            let millis = result
                .cpu
                .iter()
                .find(|cpu| cpu.process == *process)
                .and_then(|cpu| result.cpu_millis_per_invoice(cpu));
            if let Some(millis) = millis {
                all = Some(all.unwrap_or_default() + millis);
            }
            let _ = write!(out, " {} |", number_millis_text(millis));
        }
        let _ = writeln!(out, " {} |", number_millis_text(all));
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
            cpu: cpu_secs
                .iter()
                .map(|(process, secs)| Cpu {
                    process: (*process).to_owned(),
                    batch_secs: *secs,
                })
                .collect(),
        }
    }

    #[test]
    fn cpu_table_per_invoice_and_summed() {
        let results = [case(
            "generated 1000",
            1000,
            &[("pdf-render", 4.0), ("orchestrator", 2.5)],
        )];
        let mut out = String::new();

        write_cpu_table(&mut out, &results);

        assert!(
            out.contains("| invoices | database | pdf-render | orchestrator | all |"),
            "{out}"
        );
        assert!(
            out.contains("| generated 1000 | SQLite | 4.00 | 2.50 | 6.50 |"),
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
            out.contains("| generated 10 | SQLite | - | - | - |"),
            "{out}"
        );
        assert!(
            out.contains("| generated 20 | SQLite | - | 50.00 | 50.00 |"),
            "{out}"
        );
    }

    #[test]
    fn page_without_markers_gets_the_section_appended() {
        let replaced = replace_section("# Title\n", "SECTION");
        assert_eq!(replaced, "# Title\n\nSECTION\n");
    }
}
