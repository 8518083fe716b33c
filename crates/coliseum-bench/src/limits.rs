//! `coliseum bench limits`: what a rate-limit check costs each request, in
//! memory and in Redis (one Lua script a check), with many callers at once:
//! checks per second and latency percentiles, each over several runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coliseum_http::ratelimit::{Quota, RateLimiter};

#[derive(Debug, Clone, clap::Args)]
pub struct LimitsBenchArgs {
    /// Redis to measure against (skipped with `--redis-url ""`).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Concurrent callers, each with its own key.
    #[arg(long, default_value_t = 256)]
    pub callers: usize,
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

pub async fn run(args: LimitsBenchArgs) -> anyhow::Result<()> {
    println!(
        "rate-limit checks: {} callers, {} s per run, median of {}",
        args.callers, args.seconds, args.repeat
    );
    measure("memory", Arc::new(RateLimiter::in_memory()), &args).await;
    if !args.redis_url.is_empty() {
        let redis = RateLimiter::redis(&args.redis_url).await?;
        measure("redis", Arc::new(redis), &args).await;
    }
    Ok(())
}

async fn measure(name: &str, limiter: Arc<RateLimiter>, args: &LimitsBenchArgs) {
    let mut runs = Vec::new();
    for run in 0..args.repeat {
        let until = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..args.callers)
            .map(|caller| {
                let limiter = limiter.clone();
                // Keys new to every run, and an allowance never spent: every check is a full step.
                let key = format!("bench:{}:{run}:{caller}", std::process::id());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let at = Instant::now();
                        let decision = limiter.check(&key, Quota::per_minute(u32::MAX / 2)).await;
                        latencies.push(at.elapsed().as_secs_f64() * 1e6);
                        assert!(decision.allowed);
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap_or_default());
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        runs.push((latencies.len() as f64 / elapsed, at(0.5), at(0.99)));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (rate, p50, p99) = runs[runs.len() / 2];
    println!("{name:>7}: {rate:>10.0} checks/s   p50 {p50:>8.1} µs   p99 {p99:>8.1} µs");
}
