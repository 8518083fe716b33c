//! End-to-end tests of the server over real HTTP, on SQLite and on
//! PostgreSQL, plus the real binary under SIGKILL and a PostgreSQL outage.
//! One test binary for the crate keeps link times down.

mod admin;
mod alerts;
mod analytics;
mod authorization;
mod billing;
mod cluster;
mod dna;
mod entitlements;
mod freshness;
mod hostile;
mod identity;
mod ingest;
mod live;
mod outage;
mod process;
mod ratelimits;
mod reports;
mod shared;
mod support;
mod web;
