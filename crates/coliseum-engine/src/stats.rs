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

/// Counters of the ingest side of the pipeline.
#[derive(Debug)]
pub struct PipelineStats {
    pub accepted: RateMeter,
}

impl Default for PipelineStats {
    fn default() -> Self {
        Self {
            accepted: RateMeter::new(Duration::from_secs(10)),
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
}
