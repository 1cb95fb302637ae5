//! Benchmarks `RenderInvoice` through the gRPC service on 127.0.0.1: starts the pdf-render
//! service with the host's bootstrap, sends one request at a time, and prints renders per
//! CPU second, latency percentiles and the peak resident memory.
//!
//! `cargo run --release -p invoicer-pdf-render --bin render-bench -- --lines 2 --count 2000`
//!
//! The options are in `USAGE` (`render-bench --help`). `--same-number` makes every render
//! after the first hit Typst's memo cache.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on standard output"
)]

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use invoicer_kit::server;
use invoicer_kit::{Config, ServicePlugin};
use invoicer_pdf_render::{PdfRenderPlugin, render_request, sample};
use invoicer_proto::pdf_render::v1::pdf_render_service_client::PdfRenderServiceClient;

/// The allocator of the `invoicer` binary, so the numbers are those of the service.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    lines: usize,
    count: usize,
    warmup: usize,
    memory_every: usize,
    same_number: bool,
    distinct_content: bool,
    /// Customer languages the requests take in turn; empty keeps the sample's.
    languages: Vec<String>,
    template: Option<std::path::PathBuf>,
}

const USAGE: &str = "\
Usage: render-bench [OPTIONS]

Renders invoices through the pdf-render service on 127.0.0.1, one at a time, and prints
latency percentiles, renders per CPU second and the peak resident memory.

Options:
  --lines N            invoice lines (2 gives one page, 380 about ten pages) [default: 2]
  --count N            measured renders, at least 1 [default: 1000]
  --warmup N           renders before measuring [default: 50]
  --memory-every N     print the resident memory every N renders [default: 0, never]
  --same-number        send identical requests
  --distinct-content   give every request its own customer name and line descriptions
  --languages en,de    customer languages the requests take in turn
  --template FILE      render with a company template
  --help               print this text";

fn main() -> Result<(), Box<dyn Error>> {
    let Some(options) = parse_options(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    // One worker thread and one blocking thread: the numbers are for one core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(&options))
}

/// Parses the command-line arguments after the program name. Returns `None` when they
/// request help.
fn parse_options(
    mut arguments: impl Iterator<Item = String>,
) -> Result<Option<Options>, Box<dyn Error>> {
    let mut options = Options {
        lines: 2,
        count: 1_000,
        warmup: 50,
        memory_every: 0,
        same_number: false,
        distinct_content: false,
        languages: Vec::new(),
        template: None,
    };
    while let Some(argument) = arguments.next() {
        let mut number = |name: &str| -> Result<usize, Box<dyn Error>> {
            let value = arguments
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            value
                .parse()
                .map_err(|_| format!("{name} {value:?} is not a whole number").into())
        };
        match argument.as_str() {
            "--lines" => options.lines = number("--lines")?,
            "--count" => {
                options.count = number("--count")?;
                if options.count == 0 {
                    return Err("--count 0 measures nothing; pass 1 or more".into());
                }
            }
            "--warmup" => options.warmup = number("--warmup")?,
            "--memory-every" => options.memory_every = number("--memory-every")?,
            "--same-number" => options.same_number = true,
            "--distinct-content" => options.distinct_content = true,
            "--languages" => {
                let list = arguments
                    .next()
                    .ok_or("--languages needs language tags, such as en,de")?;
                options.languages = list.split(',').map(str::to_owned).collect();
            }
            "--template" => {
                let path = arguments.next().ok_or("--template needs a Typst file")?;
                options.template = Some(path.into());
            }
            "--help" | "-h" => return Ok(None),
            other => {
                return Err(format!(
                    "unknown option {other:?}; expected --lines, --count, --warmup, \
                     --memory-every, --same-number, --distinct-content, --languages, \
                     --template or --help"
                )
                .into());
            }
        }
    }
    Ok(Some(options))
}

async fn run(options: &Options) -> Result<(), Box<dyn Error>> {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse()?;
    config.pdf.template.clone_from(&options.template);
    let plugins: Vec<Arc<dyn ServicePlugin>> = vec![Arc::new(PdfRenderPlugin)];
    let running = server::start(Arc::new(config), plugins)
        .await
        .map_err(|error| format!("server start failed: {error}"))?;
    let mut client = PdfRenderServiceClient::connect(format!("http://{}", running.local_addr()))
        .await?
        .max_decoding_message_size(64 * 1024 * 1024);

    let template = sample::invoice_with_lines(options.lines);
    let request_for = |index: usize| {
        let mut input = template.clone();
        if !options.same_number {
            input.invoice.number = format!("BENCH-{index:07}");
        }
        // The customer block and the line table then differ between requests, as between the
        // invoices of one company, so Typst cannot reuse their cached layouts. The seller,
        // labels, dates and totals stay the same.
        if options.distinct_content {
            input.customer.name = format!("Customer {index:07} GmbH");
            for (position, line) in input.invoice.lines.iter_mut().enumerate() {
                line.description = format!("Item {position} of order {index:07}");
            }
        }
        if !options.languages.is_empty() {
            input.customer.language = options.languages[index % options.languages.len()].clone();
        }
        render_request(&input)
    };

    let mut pages = 0;
    for index in 0..options.warmup {
        pages = client
            .render_invoice(request_for(index))
            .await?
            .into_inner()
            .page_count;
    }

    let cpu_before = cpu_time()?;
    let wall_before = Instant::now();
    let mut latencies = Vec::with_capacity(options.count);
    let mut bytes = 0;
    for index in 0..options.count {
        let request = request_for(options.warmup + index);
        let started = Instant::now();
        let response = client.render_invoice(request).await?.into_inner();
        latencies.push(started.elapsed());
        pages = response.page_count;
        bytes = response.pdf.len();
        if options.memory_every > 0 && (index + 1) % options.memory_every == 0 {
            let (rss, hwm) = memory_kib()?;
            println!(
                "after {:>7} renders: VmRSS {rss} KiB, VmHWM {hwm} KiB",
                index + 1
            );
        }
    }
    let wall = wall_before.elapsed();
    let cpu = cpu_time()? - cpu_before;

    running
        .shutdown("benchmark finished")
        .await
        .map_err(|error| format!("server shutdown failed: {error}"))?;
    report(options, pages, bytes, &mut latencies, wall, cpu)
}

fn report(
    options: &Options,
    pages: u32,
    bytes: usize,
    latencies: &mut [Duration],
    wall: Duration,
    cpu: Duration,
) -> Result<(), Box<dyn Error>> {
    latencies.sort();
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    let (_, hwm) = memory_kib()?;
    println!(
        "invoice: {} lines, {pages} pages, {bytes} bytes; {} renders after {} warm-up",
        options.lines, options.count, options.warmup
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "throughput: {:.0} renders/s wall clock, {:.0} renders per CPU second (client and server in this process)",
        options.count as f64 / wall.as_secs_f64(),
        options.count as f64 / cpu.as_secs_f64()
    );
    println!("peak memory: VmHWM {hwm} KiB");
    Ok(())
}

/// Returns the process's user plus system CPU time from `/proc/self/stat`.
fn cpu_time() -> Result<Duration, Box<dyn Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unexpected /proc/self/stat format")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or("unexpected /proc/self/stat format")?
        .iter()
        .map(|field| field.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    // Linux reports these in clock ticks of 1/100 s (USER_HZ) on every common architecture.
    Ok(Duration::from_millis(ticks * 10))
}

/// Returns VmRSS and VmHWM in KiB from `/proc/self/status`.
fn memory_kib() -> Result<(u64, u64), Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Result<u64, Box<dyn Error>> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .ok_or_else(|| format!("/proc/self/status has no {name}"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| format!("unexpected {name} line {line:?}"))?;
        Ok(value.parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<Option<Options>, String> {
        parse_options(arguments.iter().map(|argument| (*argument).to_owned()))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn zero_count_rejected() {
        let error = parse(&["--count", "0"]).err().unwrap();

        assert!(error.contains("--count 0"), "{error}");
    }

    #[test]
    fn help_asks_for_usage() {
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--lines", "3", "-h"]).unwrap().is_none());
    }

    #[test]
    fn unknown_option_named() {
        let error = parse(&["--lnes", "3"]).err().unwrap();

        assert!(error.contains("\"--lnes\""), "{error}");
    }

    #[test]
    fn options_read() {
        let options = parse(&["--lines", "380", "--count", "20", "--distinct-content"])
            .unwrap()
            .unwrap();

        assert_eq!(options.lines, 380);
        assert_eq!(options.count, 20);
        assert!(options.distinct_content);
    }
}
