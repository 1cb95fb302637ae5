//! Batch throughput benchmark: runs the whole batch through the five services, each its own
//! `invoicer serve --services X` process (or all five in one with `--layout one-process`)
//! talking gRPC on loopback, against an SMTP sink in a separate process. Reports invoices per
//! second, per-delivery latency percentiles, the peak RSS and the CPU time per invoice of
//! every process, and writes the results page.
//!
//!     cargo build --profile dist -p invoicer -p invoicer-bench
//!     target/dist/bench run --invoices 1000,10000 --database sqlite,postgres

mod generate;
mod latency;
mod machine;
mod report;
mod run;
mod sink;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Batch throughput benchmark of invoicer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the batch for each invoice count and database, and writes the results page.
    Run(run::RunArgs),
    /// Serves the SMTP sink that `run` starts as its own process.
    Sink {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Sink { listen } => sink::run(listen).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
