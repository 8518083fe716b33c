//! `coliseum bench dna`: recomputing the fifteen DNA boards from the
//! in-memory aggregates, for a data set from `coliseum generate`'s model
//! (by default 10 million entries, 50,000 artists, 1 million fans, 30 days),
//! with the artists split between two threads as the engine runs it and on
//! one thread; and the memory the aggregates hold.

use std::time::Instant;

use coliseum_domain::clock::{Clock, SystemClock};
use coliseum_domain::kpi::RevenueCeiling;
use coliseum_domain::passport::{ValidationContext, validate_raw_envelope};
use coliseum_domain::scoring::ScoringConfig;
use coliseum_engine::deltas::Deltas;
use coliseum_engine::dna::Aggregates;
use coliseum_store::{Grain, NewEntry};

use coliseum_traffic::{Generator, GeneratorConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct DnaBenchArgs {
    /// Entries in the data set.
    #[arg(long, default_value_t = 10_000_000)]
    pub entries: u64,
    #[arg(long, default_value_t = 50_000)]
    pub artists: u32,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Recomputations timed for each way (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
}

/// Entries turned into deltas at a time before they join the aggregates.
const CHUNK: u64 = 250_000;

pub async fn run(args: DnaBenchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || measure(&args)).await?
}

fn measure(args: &DnaBenchArgs) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let fx = coliseum_domain::money::FxTable::parse(
        coliseum_domain::money::Currency::parse("USD").ok_or_else(|| anyhow::anyhow!("USD"))?,
        coliseum_traffic::FX_RATES,
    )?;
    let mut generator = Generator::new(GeneratorConfig {
        artists: args.artists,
        days: args.days,
        seed: 7,
        until: now,
        total: args.entries,
    });
    let started = Instant::now();
    let mut aggregates = Aggregates::default();
    let mut left = args.entries;
    // The fan-days of the last chunk and how long they took to join the rest.
    let mut last_merge = (0, 0.0);
    let mut ceiling = RevenueCeiling::default();
    while left > 0 {
        let take = left.min(CHUNK);
        left -= take;
        let mut deltas = Deltas::default();
        for seq in (args.entries - left - take)..(args.entries - left) {
            let envelope = generator.next_historical().to_string();
            let entry = validate_raw_envelope(&envelope, "", &ValidationContext::stored(now))
                .map_err(|(_, errors)| anyhow::anyhow!("the generator made an invalid entry: {errors:?}"))?;
            // Payments in a currency without a rate would be dead letters: not counted here either.
            let _ = deltas.add(seq as i64, &NewEntry::from_entry(entry, now), &fx, &mut ceiling);
        }
        let fan_days: Vec<_> = deltas.fan_days.into_iter().collect();
        let day_cells: Vec<_> = deltas
            .cells
            .into_iter()
            .filter(|(k, _)| k.grain == Grain::Day)
            .collect();
        let merging = Instant::now();
        aggregates.add_fan_days(&fan_days);
        aggregates.add_day_cells(&day_cells);
        last_merge = (fan_days.len(), merging.elapsed().as_secs_f64());
    }
    println!(
        "# coliseum bench dna — {} entries, {} artists, {} days, {} cores",
        args.entries,
        args.artists,
        args.days,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "- aggregates: {} fan-day rows, {:.0} MiB held (built in {:.1} s from the generated entries)",
        aggregates.rows(),
        aggregates.memory_bytes() as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    println!(
        "- merging the last {} entries' {} fan-days into the others (as a publication merges the batches applied since the last): {:.0} ms",
        CHUNK.min(args.entries),
        last_merge.0,
        last_merge.1 * 1000.0
    );
    let config = ScoringConfig::default();
    let today = Grain::Day.bucket_of(now);
    let population = aggregates.score(&config, today, 2)[1].artists.len();
    let mut threaded = Vec::new();
    let mut single = Vec::new();
    for _ in 0..args.repeat {
        let started = Instant::now();
        drop(aggregates.score(&config, today, 2));
        threaded.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        drop(aggregates.score(&config, today, 1));
        single.push(started.elapsed().as_secs_f64());
    }
    println!("- population (30d): {population} artists");
    println!(
        "- all fifteen boards (3 ranges × 5 boards), artists split between 2 threads: median **{:.2} s** (runs: {})",
        median(&mut threaded),
        list(&threaded)
    );
    println!(
        "- the same on one thread: median **{:.2} s** (runs: {})",
        median(&mut single),
        list(&single)
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn list(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", ")
}
