//! The KPI definitions of PASSPORT.md: what one entry adds to plays, votes,
//! attendance, revenue and engagement. Figures are additive integers, so
//! any split of the log into batches sums to the same totals.

use std::ops::{Add, AddAssign};

use crate::money::{Currency, FxTable};
use crate::passport::{Entry, EntryKind, KpiEffect};

/// The five KPIs, plus the count of revenue entries that the Economic DNA
/// domain divides by. Engagement is kept in tenths of a point (tiers go down
/// to 0.1), so every sum is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Kpis {
    pub plays: i64,
    pub votes: i64,
    pub attendance: i64,
    /// Base currency, minor units.
    pub revenue_minor: i64,
    /// `treasury.money_spent`, `treasury.tip` and `treasury.patronage` entries.
    pub revenue_entries: i64,
    pub engagement_tenths: i64,
}

impl Kpis {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// One KPI by name: the value a leaderboard of that metric ranks by.
    pub fn metric(&self, metric: Metric) -> i64 {
        match metric {
            Metric::Plays => self.plays,
            Metric::Votes => self.votes,
            Metric::Attendance => self.attendance,
            Metric::Revenue => self.revenue_minor,
            Metric::Engagement => self.engagement_tenths,
        }
    }
}

/// The six figures in the order they are declared: how rows store them
/// (SQL columns, packed caches).
impl From<Kpis> for [i64; 6] {
    fn from(kpis: Kpis) -> Self {
        [
            kpis.plays,
            kpis.votes,
            kpis.attendance,
            kpis.revenue_minor,
            kpis.revenue_entries,
            kpis.engagement_tenths,
        ]
    }
}

impl From<[i64; 6]> for Kpis {
    fn from(
        [
            plays,
            votes,
            attendance,
            revenue_minor,
            revenue_entries,
            engagement_tenths,
        ]: [i64; 6],
    ) -> Self {
        Self {
            plays,
            votes,
            attendance,
            revenue_minor,
            revenue_entries,
            engagement_tenths,
        }
    }
}

impl AddAssign for Kpis {
    fn add_assign(&mut self, other: Self) {
        self.plays += other.plays;
        self.votes += other.votes;
        self.attendance += other.attendance;
        self.revenue_minor += other.revenue_minor;
        self.revenue_entries += other.revenue_entries;
        self.engagement_tenths += other.engagement_tenths;
    }
}

impl std::ops::SubAssign for Kpis {
    fn sub_assign(&mut self, other: Self) {
        self.plays -= other.plays;
        self.votes -= other.votes;
        self.attendance -= other.attendance;
        self.revenue_minor -= other.revenue_minor;
        self.revenue_entries -= other.revenue_entries;
        self.engagement_tenths -= other.engagement_tenths;
    }
}

impl Add for Kpis {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl std::iter::Sum for Kpis {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

/// The KPI a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Plays,
    Votes,
    Attendance,
    Revenue,
    Engagement,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Plays,
        Metric::Votes,
        Metric::Attendance,
        Metric::Revenue,
        Metric::Engagement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Plays => "plays",
            Metric::Votes => "votes",
            Metric::Attendance => "attendance",
            Metric::Revenue => "revenue",
            Metric::Engagement => "engagement",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Why an entry's KPIs cannot be computed now; the entry goes to the dead
/// letters with this reason and can be replayed once the cause is fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KpiError {
    #[error("no exchange rate for {0}")]
    NoExchangeRate(Currency),
    #[error("the amount overflows when converted to the base currency")]
    Overflow,
    #[error(
        "counting it would take the revenue counted so far past {} minor units, the most every revenue figure can hold exactly",
        i64::MAX
    )]
    RevenueCeiling,
}

/// The guard that keeps every revenue figure exact. Every figure the
/// engine keeps or serves (a cell, a bucket's platform total, an artist's
/// sum over two years, a DNA component) is a sum of some entries' revenue,
/// so it is at most the sum of their absolute values. While that sum over
/// every counted entry stays within `i64`, no figure anywhere can overflow,
/// in memory or in either store; the entry that would take it past is
/// refused (a dead letter with [`KpiError::RevenueCeiling`]), never wrapped.
/// At 10^12 per entry that is millions of maximal payments: only absurd or
/// hostile input reaches it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevenueCeiling {
    /// The sum of the absolute revenue of every entry counted so far.
    gross: i64,
}

impl RevenueCeiling {
    /// The guard after entries of `gross` absolute revenue were counted.
    pub fn after(gross: i64) -> Self {
        Self { gross }
    }

    pub fn gross(&self) -> i64 {
        self.gross
    }

    /// Counts `kpis`' revenue against the ceiling, or refuses it and leaves
    /// the ceiling as it was.
    pub fn admit(&mut self, kpis: &Kpis) -> Result<(), KpiError> {
        let gross = kpis
            .revenue_minor
            .checked_abs()
            .and_then(|amount| self.gross.checked_add(amount))
            .ok_or(KpiError::RevenueCeiling)?;
        self.gross = gross;
        Ok(())
    }
}

/// What `entry` adds to the KPIs. Unrecognized entries add nothing.
pub fn kpis_of(entry: &Entry, fx: &FxTable) -> Result<Kpis, KpiError> {
    let EntryKind::Known(spec) = entry.kind else {
        return Ok(Kpis::default());
    };
    let mut kpis = Kpis::default();
    if spec.kpi == KpiEffect::None {
        return Ok(kpis);
    }
    // Invariant: a known entry has a tier.
    kpis.engagement_tenths = entry.tier().map_or(0, |tier| i64::from(tier.tenths()));
    match spec.kpi {
        KpiEffect::None | KpiEffect::Engagement => {}
        KpiEffect::Play => kpis.plays = i64::from(entry.is_full_play()),
        KpiEffect::Vote(sign) => kpis.votes = i64::from(sign),
        KpiEffect::Attendance => kpis.attendance = 1,
        KpiEffect::Revenue(sign) => {
            // Validation guarantees money on every revenue type.
            if let Some(money) = entry.money {
                let base = fx
                    .to_base_minor(money.amount_minor, money.currency)
                    .ok_or(KpiError::NoExchangeRate(money.currency))?;
                kpis.revenue_minor = base.checked_mul(i64::from(sign)).ok_or(KpiError::Overflow)?;
            }
            kpis.revenue_entries = i64::from(sign > 0);
        }
    }
    Ok(kpis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passport::{ValidationContext, validate_envelope};
    use serde_json::json;
    use time::macros::datetime;

    fn entry(kind: &str, extra: serde_json::Value) -> Entry {
        let mut envelope = json!({
            "event_id": "e-1", "schema_version": 1, "type": kind,
            "timestamp": "2026-11-20T10:00:00Z", "user_id": "fan_1", "artist_id": "art_1",
            "metadata": {"live_event_id": "live_1", "amount_minor": 1000, "currency": "EUR", "kind": "merch"},
        });
        if let (Some(target), Some(extra)) = (envelope.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        validate_envelope(&envelope, "", &ValidationContext::at(datetime!(2026-11-20 12:00 UTC)))
            .unwrap_or_else(|errors| panic!("{kind} is valid: {errors:?}"))
    }

    fn fx() -> FxTable {
        FxTable::parse(Currency::parse("USD").expect("USD"), "EUR=1.10").expect("table")
    }

    fn kpis(kind: &str, extra: serde_json::Value) -> Kpis {
        kpis_of(&entry(kind, extra), &fx()).expect("computable")
    }

    #[test]
    fn a_play_of_30_seconds_counts_and_a_shorter_one_is_a_preview() {
        let full = kpis("audio.play", json!({"engagement": {"duration_ms": 30_000}}));
        assert_eq!((full.plays, full.engagement_tenths), (1, 10));
        let preview = kpis("audio.play", json!({"engagement": {"duration_ms": 29_999}}));
        assert_eq!((preview.plays, preview.engagement_tenths), (0, 1));
    }

    #[test]
    fn votes_retractions_and_attendance() {
        assert_eq!(kpis("vote.cast", json!({})).votes, 1);
        assert_eq!(kpis("vote.retracted", json!({})).votes, -1);
        assert_eq!(kpis("vote.retracted", json!({})).engagement_tenths, 100);
        assert_eq!(kpis("event.attended", json!({})).attendance, 1);
        assert_eq!(kpis("stream.joined", json!({})).attendance, 1);
    }

    #[test]
    fn revenue_is_converted_per_entry_and_refunds_subtract() {
        let spent = kpis("treasury.money_spent", json!({}));
        assert_eq!((spent.revenue_minor, spent.revenue_entries), (1100, 1));
        let refund = kpis("treasury.refunded", json!({}));
        assert_eq!((refund.revenue_minor, refund.revenue_entries), (-1100, 0));
        assert_eq!(kpis("treasury.patronage", json!({})).engagement_tenths, 10_000);
    }

    #[test]
    fn types_without_a_kpi_add_nothing_not_even_engagement() {
        assert!(kpis("treasury.money_earned", json!({})).is_zero());
        assert!(kpis("event.created", json!({})).is_zero());
    }

    #[test]
    fn a_currency_without_a_rate_is_an_error_naming_it() {
        let mut nok = entry("treasury.tip", json!({}));
        nok.money = nok.money.map(|m| crate::passport::Money {
            currency: Currency::parse("NOK").expect("NOK"),
            ..m
        });
        let error = kpis_of(&nok, &fx()).expect_err("no NOK rate");
        assert_eq!(error.to_string(), "no exchange rate for NOK");
    }

    proptest::proptest! {
        /// Over any sequence of revenues, from anywhere in `i64`: an entry
        /// is admitted exactly when the absolute sum stays within `i64`,
        /// and then every partial sum of the admitted entries, in any
        /// order, fits too.
        #[test]
        fn the_revenue_ceiling_admits_exactly_what_sums_without_overflow(
            revenues in proptest::collection::vec(
                proptest::prop_oneof![proptest::num::i64::ANY, -1_000_000_000_000_i64..=1_000_000_000_000],
                0..64,
            ),
            start in 0_i64..=i64::MAX,
        ) {
            let mut ceiling = RevenueCeiling::after(start);
            let mut gross = i128::from(start);
            let mut admitted = Vec::new();
            for revenue_minor in revenues {
                let kpis = Kpis { revenue_minor, ..Kpis::default() };
                let fits = gross + i128::from(revenue_minor).abs() <= i128::from(i64::MAX);
                proptest::prop_assert_eq!(ceiling.admit(&kpis).is_ok(), fits);
                if fits {
                    gross += i128::from(revenue_minor).abs();
                    admitted.push(revenue_minor);
                }
                proptest::prop_assert_eq!(i128::from(ceiling.gross()), gross);
            }
            let mut sum = 0_i64;
            for revenue in admitted.iter().rev() {
                sum = sum.checked_add(*revenue).expect("a partial sum of admitted entries fits");
            }
        }
    }
}
