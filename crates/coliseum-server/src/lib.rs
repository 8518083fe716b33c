//! The Coliseum server: the HTTP API over the engine, the `coliseum` command
//! line, synthetic traffic for demos, and the benchmarks.
//!
//! Invariant: no SQL here; the server reaches data only through the store
//! traits and the engine.

pub mod app;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod connections;
pub mod credentials;
pub mod demo;
pub mod generate;
pub mod ingest_budget;
pub mod observability;
pub mod params;
pub mod problem;
pub mod ratelimit;
pub mod request_limits;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod stripe;
/// Passport deliveries' signatures (Standard Webhooks).
pub use coliseum_signatures::passport as webhook;
