//! The Passport event schema, version 1 (PASSPORT.md): the catalogue of known
//! entry types and the parsing and validation of deliveries.

mod catalogue;
mod delivery;
mod envelope;

pub use catalogue::{KpiEffect, Requirement, Tier, TypeSpec, KNOWN_TYPES};
pub use delivery::{parse_delivery, Delivery, DeliveryError, Rejected, MAX_BATCH_ENTRIES, MAX_BODY_BYTES};
pub use envelope::{
    validate_envelope, Engagement, Entry, EntryKind, FieldError, Money, ValidationContext,
    SUPPORTED_SCHEMA_VERSIONS,
};

#[cfg(test)]
mod tests;
