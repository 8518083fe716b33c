//! The Coliseum engine: the pipeline between the HTTP edge and the store.
//! Today that is the group-commit ingest writer and the pipeline's own
//! measurements; the processor, hot state and live hub join it here.
//!
//! Invariant: the engine knows nothing of HTTP or SQL; it talks to the store
//! through `coliseum_store` traits only.

pub mod ingest;
pub mod stats;

pub use ingest::{IngestConfig, IngestError, IngestWriter};
pub use stats::{PipelineStats, RateMeter};
