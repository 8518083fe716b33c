//! The Coliseum HTTP application as a library: the engine's wiring
//! ([`app`]), the routes and their OpenAPI document, the views (the body of
//! every read), the access guard, problem documents, sessions and
//! credentials, rate limits and the connection layer. The `coliseum` binary
//! runs it; the tests drive it over real HTTP.
//!
//! Invariant: no SQL here; the application reaches data only through the
//! store traits and the engine.

pub mod alerts;
pub mod app;
pub mod audit;
pub mod client_address;
pub mod connections;
pub mod credentials;
pub mod ingest_budget;
pub mod live;
pub mod observability;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod ratelimit;
pub mod reports;
pub mod request_limits;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod stripe;
pub mod views;
pub mod web;
/// Passport deliveries' signatures (Standard Webhooks).
pub use coliseum_signatures::passport as webhook;
