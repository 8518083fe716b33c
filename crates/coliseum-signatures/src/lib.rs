//! Webhook signature checks, apart from the server so that they can be
//! fuzzed on their own (`fuzz/`): what an unauthenticated sender's bytes
//! meet first.

pub mod passport;
pub mod stripe;
