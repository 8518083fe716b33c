//! Pipeline health for operators: the figures of `GET /v1/admin/pipeline`,
//! and a history of them sampled every few seconds for the admin charts.

use std::collections::VecDeque;
use std::sync::Mutex;

use coliseum_store::{Store, StoreError};
use time::OffsetDateTime;

use crate::ingest::IngestWriter;
use crate::stats::{LatencyPercentiles, PipelineStats};

/// One reading of the pipeline's health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineHealth {
    pub at: OffsetDateTime,
    pub paused: bool,
    pub head_seq: i64,
    pub processed_seq: i64,
    /// Entries stored but not yet processed.
    pub queue_depth: i64,
    pub ingest_per_s: f64,
    pub processed_per_s: f64,
    pub error_rate_10m: f64,
    /// From receipt to visibility in the served figures, over 10 minutes.
    pub latency_ms: LatencyPercentiles,
    pub dead_letters: i64,
    pub unrecognized: i64,
    /// Entries waiting for or inside a group commit.
    pub ingest_queue_entries: usize,
}

/// Reads the pipeline's health now.
pub async fn pipeline_health(
    store: &dyn Store,
    stats: &PipelineStats,
    ingest: &IngestWriter,
    at: OffsetDateTime,
) -> Result<PipelineHealth, StoreError> {
    let log = store.log_stats().await?;
    let state = store.pipeline_state().await?;
    Ok(PipelineHealth {
        at,
        paused: state.paused,
        head_seq: log.head_seq,
        processed_seq: state.processed_seq,
        queue_depth: (log.head_seq - state.processed_seq).max(0),
        ingest_per_s: stats.accepted.per_second(),
        processed_per_s: stats.processed.per_second(),
        error_rate_10m: stats.error_rate_10m(),
        latency_ms: stats.latency.percentiles_over(crate::stats::TEN_MINUTES),
        dead_letters: store.open_dead_letters().await?,
        unrecognized: log.unrecognized,
        ingest_queue_entries: ingest.queued_entries(),
    })
}

/// The last readings, oldest first, at most `capacity` of them.
#[derive(Debug)]
pub struct HealthHistory {
    capacity: usize,
    samples: Mutex<VecDeque<PipelineHealth>>,
}

impl HealthHistory {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    pub fn record(&self, sample: PipelineHealth) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == self.capacity {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The readings taken at or after `since`.
    pub fn since(&self, since: OffsetDateTime) -> Vec<PipelineHealth> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.at >= since)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample(minute: u8) -> PipelineHealth {
        PipelineHealth {
            at: datetime!(2026-11-20 12:00 UTC).replace_minute(minute).expect("minute"),
            paused: false,
            head_seq: i64::from(minute),
            processed_seq: 0,
            queue_depth: i64::from(minute),
            ingest_per_s: 0.0,
            processed_per_s: 0.0,
            error_rate_10m: 0.0,
            latency_ms: LatencyPercentiles::default(),
            dead_letters: 0,
            unrecognized: 0,
            ingest_queue_entries: 0,
        }
    }

    #[test]
    fn the_history_keeps_the_newest_readings() {
        let history = HealthHistory::new(3);
        for minute in 0..5 {
            history.record(sample(minute));
        }
        let kept: Vec<i64> = history
            .since(datetime!(2026-11-20 0:00 UTC))
            .iter()
            .map(|s| s.head_seq)
            .collect();
        assert_eq!(kept, vec![2, 3, 4]);
        assert_eq!(history.since(datetime!(2026-11-20 12:04 UTC)).len(), 1);
    }
}
