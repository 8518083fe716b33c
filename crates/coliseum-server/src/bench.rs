//! `coliseum bench`: the benchmark suite (BENCHMARKS.md says what each
//! measures and how to read it).

mod attack;
pub mod dna;
pub mod ingest;
pub mod limits;
mod mixed;
pub mod pipeline;
