//! The 43 known entry types with their tier, KPI effect and required fields.

/// A weight tier in tenths of a point: 1 = 0.1 (passive), 10 = 1 (light),
/// 100 = 10 (active), 1000 = 100 (committed), 10000 = 1000 (patron).
/// Integers, so that sums of weights are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tier(pub u16);

impl Tier {
    pub const PASSIVE: Tier = Tier(1);
    pub const LIGHT: Tier = Tier(10);
    pub const ACTIVE: Tier = Tier(100);
    pub const COMMITTED: Tier = Tier(1000);
    pub const PATRON: Tier = Tier(10000);

    pub fn tenths(self) -> u16 {
        self.0
    }
}

/// Which KPI tile an entry moves (the KPI column of PASSPORT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiEffect {
    /// Moves no KPI, and adds nothing to engagement.
    None,
    /// Engagement points only.
    Engagement,
    /// A play when the stream lasted at least 30 s; a preview otherwise.
    Play,
    /// Votes, +1 or −1.
    Vote(i8),
    /// Attendance +1.
    Attendance,
    /// Revenue, + or − the amount.
    Revenue(i8),
}

/// A field a type requires beyond the envelope's own required fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    ArtistId,
    UserId,
    DurationMs,
    LiveEventId,
    /// `metadata.amount_minor` and `metadata.currency`.
    Money,
}

/// One known entry type.
#[derive(Debug, PartialEq, Eq)]
pub struct TypeSpec {
    pub name: &'static str,
    pub tier: Tier,
    pub kpi: KpiEffect,
    pub requires: &'static [Requirement],
}

impl TypeSpec {
    pub fn lookup(name: &str) -> Option<&'static TypeSpec> {
        KNOWN_TYPES.iter().find(|spec| spec.name == name)
    }

    pub fn requires(&self, requirement: Requirement) -> bool {
        self.requires.contains(&requirement)
    }
}

use KpiEffect as K;
use Requirement::{ArtistId as A, DurationMs, LiveEventId as L, Money as M, UserId as U};

const fn spec(name: &'static str, tier: Tier, kpi: KpiEffect, requires: &'static [Requirement]) -> TypeSpec {
    TypeSpec {
        name,
        tier,
        kpi,
        requires,
    }
}

const P: Tier = Tier::PASSIVE;
const LT: Tier = Tier::LIGHT;
const AC: Tier = Tier::ACTIVE;
const CO: Tier = Tier::COMMITTED;
const PA: Tier = Tier::PATRON;

/// The catalogue of PASSPORT.md, in its order.
pub static KNOWN_TYPES: [TypeSpec; 43] = [
    spec("audio.play", LT, K::Play, &[A, U, DurationMs]),
    spec("audio.complete", LT, K::Engagement, &[A, U]),
    spec("audio.skip", P, K::Engagement, &[A, U]),
    spec("audio.like", LT, K::Engagement, &[A, U]),
    spec("audio.unlike", P, K::Engagement, &[A, U]),
    spec("audio.playlist_add", AC, K::Engagement, &[A, U]),
    spec("audio.download", AC, K::Engagement, &[A, U]),
    spec("audio.share", AC, K::Engagement, &[A, U]),
    spec("vote.cast", AC, K::Vote(1), &[A, U]),
    spec("vote.retracted", AC, K::Vote(-1), &[A, U]),
    spec("event.rsvp", AC, K::Engagement, &[A, U, L]),
    spec("event.rsvp_cancelled", P, K::Engagement, &[A, U, L]),
    spec("ticket.purchased", CO, K::Engagement, &[A, U, L]),
    spec("ticket.transferred", LT, K::Engagement, &[A, U, L]),
    spec("event.attended", CO, K::Attendance, &[A, U, L]),
    spec("stream.joined", AC, K::Attendance, &[A, U, L]),
    spec("stream.left", P, K::Engagement, &[A, U, L]),
    spec("event.created", P, K::None, &[A, L]),
    spec("social.follow", LT, K::Engagement, &[A, U]),
    spec("social.unfollow", P, K::Engagement, &[A, U]),
    spec("social.like", LT, K::Engagement, &[A, U]),
    spec("social.comment", AC, K::Engagement, &[A, U]),
    spec("social.share", AC, K::Engagement, &[A, U]),
    spec("social.repost", AC, K::Engagement, &[A, U]),
    spec("social.mention", AC, K::Engagement, &[A, U]),
    spec("social.profile_view", P, K::Engagement, &[A, U]),
    spec("merch.purchased", CO, K::Engagement, &[A, U]),
    spec("subscription.started", CO, K::Engagement, &[A, U]),
    spec("subscription.renewed", CO, K::Engagement, &[A, U]),
    spec("subscription.cancelled", P, K::Engagement, &[A, U]),
    spec("treasury.money_spent", CO, K::Revenue(1), &[A, U, M]),
    spec("treasury.refunded", P, K::Revenue(-1), &[A, U, M]),
    spec("treasury.tip", CO, K::Revenue(1), &[A, U, M]),
    spec("treasury.patronage", PA, K::Revenue(1), &[A, U, M]),
    spec("treasury.money_earned", P, K::None, &[A, M]),
    spec("treasury.payout_sent", P, K::None, &[A, M]),
    spec("treasury.split_settled", P, K::None, &[A, M]),
    spec("treasury.wallet_linked", P, K::None, &[U]),
    spec("badge.earned", AC, K::Engagement, &[U]),
    spec("badge.revoked", P, K::None, &[U]),
    spec("account.created", P, K::None, &[U]),
    spec("account.consent_updated", P, K::None, &[U]),
    spec("artist.headlined", PA, K::Engagement, &[A, L]),
];

/// Plays shorter than this are previews: tier 0.1 and no play.
pub const PLAY_THRESHOLD_MS: u64 = 30_000;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_catalogue_has_43_distinct_well_formed_names() {
        let names: HashSet<&str> = KNOWN_TYPES.iter().map(|spec| spec.name).collect();
        assert_eq!(names.len(), 43);
        for name in names {
            let (family, action) = name.split_once('.').expect("family.action");
            let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            assert!(ok(family) && ok(action), "{name}");
        }
    }

    #[test]
    fn spot_checks_against_the_schema_table() {
        let get = |name| TypeSpec::lookup(name).expect("known type");
        assert_eq!(get("treasury.patronage").tier, Tier::PATRON);
        assert_eq!(get("vote.retracted").kpi, KpiEffect::Vote(-1));
        assert_eq!(get("treasury.refunded").kpi, KpiEffect::Revenue(-1));
        assert!(get("event.attended").requires(Requirement::LiveEventId));
        assert!(!get("badge.earned").requires(Requirement::ArtistId));
        assert!(TypeSpec::lookup("audio.rewind").is_none());
    }
}
