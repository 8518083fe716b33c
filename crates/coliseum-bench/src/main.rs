//! `coliseum-bench` (also run as `coliseum bench …`): the benchmark suite.
//! BENCHMARKS.md says what each measures and how to read it. It drives the
//! `coliseum` binary built beside it over HTTP, as a client would, and is the
//! one crate outside the stores that may speak SQL: the baselines it compares
//! against.

mod attack;
mod dna;
mod ingest;
mod limits;
mod live;
mod mixed;
mod pages;
mod pipeline;
mod reports;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "coliseum bench", about = "The Coliseum benchmarks (BENCHMARKS.md)")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Signed webhooks over HTTP against a `coliseum serve` child process.
    Ingest(ingest::IngestBenchArgs),
    /// Processing, reads, freshness and rebuild on a realistic data set.
    Pipeline(pipeline::PipelineBenchArgs),
    /// Recomputing the fifteen DNA boards from the in-memory aggregates.
    Dna(dna::DnaBenchArgs),
    /// What a rate-limit check costs, in memory and in Redis.
    Limits(limits::LimitsBenchArgs),
    /// WebSocket subscribers of live topics while plays arrive.
    Live(live::LiveBenchArgs),
    /// PDF reports: their time, and reads while they are made.
    Reports(reports::ReportsBenchArgs),
}

/// The `coliseum` binary built beside this one: the engine under test.
fn coliseum_binary() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let engine = exe.with_file_name(format!("coliseum{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        engine.exists(),
        "{} is not built; build it beside this binary with `cargo build --release --workspace`",
        engine.display()
    );
    Ok(engine)
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    coliseum_http::observability::init_tracing();
    let outcome = match Cli::parse().command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Pipeline(args) => pipeline::run(args).await,
        BenchCommand::Dna(args) => dna::run(args).await,
        BenchCommand::Limits(args) => limits::run(args).await,
        BenchCommand::Live(args) => live::run(args).await,
        BenchCommand::Reports(args) => reports::run(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coliseum bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
