//! The Coliseum engine: the pipeline between the HTTP edge and the store.
//! The group-commit ingest writer, the processor that turns the log into
//! rollups (through `deltas`), the hot state and the reads served from it,
//! and the pipeline's own measurements; the live hub joins it here.
//!
//! Invariant: the engine knows nothing of HTTP or SQL; it talks to the store
//! through `coliseum_store` traits only.

pub mod board;
mod bounded;
pub mod deltas;
mod dense;
pub mod dna;
pub mod fallback;
pub mod health;
pub mod hot;
pub mod ingest;
pub mod journal;
mod lane;
pub mod names;
pub mod packed;
pub mod processor;
pub mod read_age;
pub mod reads;
pub mod rebuild;
pub mod recent;
pub mod served;
pub mod single_flight;
pub mod stats;
pub mod totals;

pub use ingest::{IngestConfig, IngestError, IngestWriter};
pub use processor::{AppliedSink, Processor, ProcessorConfig, Step, Watermark};
pub use stats::{LatencyPercentiles, LatencyWindow, PipelineStats, RateMeter};
