//! The Passport event schema, version 1 (PASSPORT.md): the catalogue of known
//! entry types and the parsing and validation of deliveries.

mod catalogue;
mod delivery;
mod envelope;
mod strict_json;

pub use catalogue::{KNOWN_TYPES, KpiEffect, Requirement, Tier, TypeSpec};
pub use delivery::{Delivery, DeliveryError, MAX_BATCH_ENTRIES, MAX_BODY_BYTES, Rejected, parse_delivery};
pub use envelope::{
    Engagement, Entry, EntryKind, FieldError, Money, SUPPORTED_SCHEMA_VERSIONS, ValidationContext, validate_envelope,
    validate_raw_envelope,
};

#[cfg(test)]
mod tests;
