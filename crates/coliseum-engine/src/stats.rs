//! What the pipeline measures about itself for operators: rates over a
//! sliding window, kept in memory and cheap to update on every batch.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Events per second over the last few whole seconds.
#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    buckets: Mutex<Vec<(u64, u64)>>, // (second since `origin`, count)
    origin: Instant,
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            buckets: Mutex::new(Vec::new()),
            origin: Instant::now(),
        }
    }

    pub fn record(&self, count: u64) {
        self.record_at(Instant::now(), count);
    }

    fn record_at(&self, at: Instant, count: u64) {
        let second = at.saturating_duration_since(self.origin).as_secs();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.last_mut() {
            Some((last, total)) if *last == second => *total += count,
            _ => buckets.push((second, count)),
        }
        let horizon = second.saturating_sub(self.window.as_secs() + 1);
        buckets.retain(|(s, _)| *s >= horizon);
    }

    /// Events over the last `span` of whole seconds (at most the window).
    pub fn total_over(&self, span: Duration) -> u64 {
        let now = self.origin.elapsed().as_secs();
        let from = now.saturating_sub(span.as_secs().max(1));
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .iter()
            .filter(|(s, _)| *s >= from && *s < now)
            .map(|(_, c)| c)
            .sum()
    }

    /// The mean rate over the window's whole seconds before the current one.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(Instant::now())
    }

    fn per_second_at(&self, at: Instant) -> f64 {
        let now = at.saturating_duration_since(self.origin).as_secs();
        let span = self.window.as_secs().max(1);
        let from = now.saturating_sub(span);
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = buckets
            .iter()
            .filter(|(s, _)| *s >= from && *s < now)
            .map(|(_, c)| c)
            .sum();
        total as f64 / span as f64
    }
}

/// Milliseconds in buckets whose width grows with the value (1 ms up to
/// 100 ms, then 10 ms, 100 ms and 1 s), so percentiles stay within about 10 %.
const LATENCY_STEPS: [(u64, u64); 4] = [(100, 1), (1_000, 10), (10_000, 100), (100_000, 1_000)];
const LATENCY_BUCKETS: usize = 100 + 90 + 90 + 90 + 1;

fn latency_bucket(ms: u64) -> usize {
    let mut base_index = 0;
    let mut from = 0;
    for (upto, width) in LATENCY_STEPS {
        if ms < upto {
            return base_index + ((ms - from) / width) as usize;
        }
        base_index += ((upto - from) / width) as usize;
        from = upto;
    }
    LATENCY_BUCKETS - 1
}

fn latency_bucket_floor(index: usize) -> u64 {
    let mut base_index = 0;
    let mut from = 0;
    for (upto, width) in LATENCY_STEPS {
        let count = ((upto - from) / width) as usize;
        if index < base_index + count {
            return from + (index - base_index) as u64 * width;
        }
        base_index += count;
        from = upto;
    }
    from
}

/// Latencies of the last few minutes, in 10-second slots of bucket counts.
#[derive(Debug)]
pub struct LatencyWindow {
    window: Duration,
    slots: Mutex<Vec<(u64, Vec<u64>)>>, // (10-second slot since `origin`, counts)
    origin: Instant,
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyPercentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl LatencyWindow {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            slots: Mutex::new(Vec::new()),
            origin: Instant::now(),
        }
    }

    /// Records `count` samples of `ms` milliseconds each.
    pub fn record(&self, ms: u64, count: u64) {
        let slot = self.origin.elapsed().as_secs() / 10;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.last().is_none_or(|(s, _)| *s != slot) {
            slots.push((slot, vec![0; LATENCY_BUCKETS]));
            let horizon = slot.saturating_sub(self.window.as_secs() / 10);
            slots.retain(|(s, _)| *s >= horizon);
        }
        if let Some((_, counts)) = slots.last_mut() {
            counts[latency_bucket(ms)] += count;
        }
    }

    /// Percentiles over the whole window.
    pub fn percentiles(&self) -> LatencyPercentiles {
        self.percentiles_over(self.window)
    }

    /// Percentiles over the last `span` (at most the window), to 10 seconds.
    pub fn percentiles_over(&self, span: Duration) -> LatencyPercentiles {
        let slot = self.origin.elapsed().as_secs() / 10;
        let horizon = slot.saturating_sub(span.min(self.window).as_secs() / 10);
        let mut merged = vec![0_u64; LATENCY_BUCKETS];
        for (_, counts) in self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(s, _)| *s >= horizon)
        {
            for (total, count) in merged.iter_mut().zip(counts) {
                *total += count;
            }
        }
        let total: u64 = merged.iter().sum();
        let at = |p: f64| {
            if total == 0 {
                return 0.0;
            }
            let rank = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, count) in merged.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return latency_bucket_floor(index) as f64;
                }
            }
            latency_bucket_floor(LATENCY_BUCKETS - 1) as f64
        };
        LatencyPercentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// The window of the pipeline's own figures (`error_rate_10m`, latency).
pub const TEN_MINUTES: Duration = Duration::from_secs(600);

/// What the pipeline measures about itself, and the signal the ingest
/// writer gives the processor when new entries are committed.
#[derive(Debug)]
pub struct PipelineStats {
    pub accepted: RateMeter,
    /// Entries the processor consumed from the log (counted or not).
    pub processed: RateMeter,
    /// Entries processed over the last hour, for windowed error rates.
    pub processed_window: RateMeter,
    /// Entries that failed and went to the dead letters, over the last hour.
    pub failed_window: RateMeter,
    /// From receipt to visibility in the served figures, over the last
    /// hour (10 minutes in `GET /v1/admin/pipeline`; alert rules choose).
    pub latency: LatencyWindow,
    /// Notified after every commit of new entries: the processor wakes at
    /// once instead of polling.
    pub log_appended: tokio::sync::Notify,
}

impl PipelineStats {
    /// Failed entries per processed entry over the last 10 minutes.
    pub fn error_rate_10m(&self) -> f64 {
        self.error_rate_over(TEN_MINUTES).0
    }

    /// Failed entries per processed entry over the last `span`, and the
    /// entries processed: a rate over few entries says little.
    pub fn error_rate_over(&self, span: Duration) -> (f64, u64) {
        let processed = self.processed_window.total_over(span);
        let failed = self.failed_window.total_over(span);
        let rate = if processed == 0 {
            0.0
        } else {
            failed as f64 / processed as f64
        };
        (rate, processed)
    }
}

impl Default for PipelineStats {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self {
            accepted: RateMeter::new(Duration::from_secs(10)),
            processed: RateMeter::new(Duration::from_secs(10)),
            processed_window: RateMeter::new(hour),
            failed_window: RateMeter::new(hour),
            latency: LatencyWindow::new(hour),
            log_appended: tokio::sync::Notify::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_covers_whole_seconds_of_the_window() {
        let meter = RateMeter::new(Duration::from_secs(10));
        let t0 = meter.origin;
        for s in 0..10 {
            meter.record_at(t0 + Duration::from_secs(s), 100);
        }
        // The current (partial) second is not counted.
        meter.record_at(t0 + Duration::from_millis(10_500), 5000);
        assert_eq!(meter.per_second_at(t0 + Duration::from_millis(10_600)), 100.0);
        // Long after, everything has slid out.
        assert_eq!(meter.per_second_at(t0 + Duration::from_secs(100)), 0.0);
    }

    #[test]
    fn latency_buckets_are_contiguous_and_floors_round_trip() {
        let mut last = 0;
        for ms in 0..120_000 {
            let bucket = latency_bucket(ms);
            assert!(
                bucket == last || bucket == last + 1,
                "{ms} ms jumps from {last} to {bucket}"
            );
            assert!(latency_bucket_floor(bucket) <= ms);
            last = bucket;
        }
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_recorded_latencies() {
        let window = LatencyWindow::new(Duration::from_secs(600));
        assert_eq!(window.percentiles(), LatencyPercentiles::default());
        window.record(5, 90);
        window.record(250, 9);
        window.record(4_000, 1);
        let p = window.percentiles();
        assert_eq!((p.p50, p.p95, p.p99), (5.0, 250.0, 250.0));
        window.record(4_000, 10);
        assert_eq!(window.percentiles().p99, 4_000.0);
    }
}
