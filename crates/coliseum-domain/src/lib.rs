//! The Coliseum domain: the Passport event schema and its validation, weight
//! tiers, KPI mapping (`kpi`), the DNA scores (`scoring`), money and exchange rates,
//! roles and plans, alert rules, and the clock.
//!
//! Invariant: nothing in this crate does I/O or reads the system time on its
//! own. "Now" always arrives as an argument or through [`clock::Clock`].

pub mod alerts;
pub mod clock;
pub mod dimension;
pub mod kpi;
pub mod money;
pub mod passport;
pub mod plans;
pub mod range;
pub mod scoring;
pub mod text;
