//! From log entries to additive deltas: the KPI rollup cells (hour and day)
//! and the fan-days each entry adds to, merged by key. Pure: the processor,
//! rebuild and the tests all go through [`Deltas::add`], so a batch split in
//! any way sums to the same rollups.

use std::collections::HashMap;

use coliseum_domain::dimension::Dimension;
use coliseum_domain::kpi::{KpiError, Kpis, RevenueCeiling, kpis_of};
use coliseum_domain::money::FxTable;
use coliseum_domain::passport::{Entry, FieldError, ValidationContext, validate_raw_envelope};
use coliseum_store::{CellKey, FanDay, FanDayKey, Grain, NewEntry};
use time::OffsetDateTime;

use crate::names::NameDeltas;

/// The types whose weight is cultural influence (SCORING.md, domain A).
const INFLUENCE_TYPES: &[&str] = &[
    "audio.share",
    "social.share",
    "social.repost",
    "social.comment",
    "social.mention",
];

/// Why a stored entry could not be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryFailure {
    #[error("{0}")]
    Kpi(#[from] KpiError),
    /// The envelope no longer reads as valid: only possible when the rules
    /// changed between the release that stored it and this one.
    #[error("the stored envelope is no longer valid: {0}")]
    Invalid(String),
}

/// Reads a stored entry back as the validated entry it was when it arrived.
pub fn interpret(stored: &NewEntry) -> Result<Entry, EntryFailure> {
    validate_raw_envelope(&stored.envelope, "", &ValidationContext::stored(stored.received_at)).map_err(
        |(_, errors)| {
            EntryFailure::Invalid(
                errors
                    .iter()
                    .map(|FieldError { pointer, detail }| format!("{pointer} {detail}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        },
    )
}

/// The deltas of a set of entries, merged by cell and by fan-day.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deltas {
    pub cells: HashMap<CellKey, Kpis>,
    pub fan_days: HashMap<FanDayKey, FanDay>,
    /// Entries whose effects are included.
    pub counted: u64,
    /// The display names those entries (and unrecognized ones) gave.
    pub names: NameDeltas,
}

/// What one counted entry adds: its KPIs to its hour and day cells (when
/// it moves any), and one entry of its tier to its fan-day (when it has an
/// artist). Dimensions are `""` where the entry has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects<'a> {
    pub kpis: Kpis,
    pub timestamp: OffsetDateTime,
    pub artist: &'a str,
    pub fan: &'a str,
    pub city: &'a str,
    pub genre: &'a str,
    pub live_event: &'a str,
    /// 0..=4: passive, light, active, committed, patron.
    pub tier: usize,
    pub influence: bool,
}

impl<'a> Effects<'a> {
    /// The effects of an interpreted entry; `None` for an unrecognized one,
    /// which adds nothing and is no failure.
    pub fn of(entry: &'a Entry, fx: &FxTable) -> Result<Option<Self>, KpiError> {
        let Some(tier) = entry.tier() else { return Ok(None) };
        let dimension = |d: &'a Option<Dimension>| d.as_ref().map_or("", |d| d.key.as_str());
        Ok(Some(Effects {
            kpis: kpis_of(entry, fx)?,
            timestamp: entry.timestamp,
            artist: entry.artist_id.as_deref().unwrap_or_default(),
            fan: entry.user_id.as_deref().unwrap_or_default(),
            city: dimension(&entry.city),
            genre: dimension(&entry.genre),
            live_event: entry.live_event_id.as_deref().unwrap_or_default(),
            tier: tier_index(tier.tenths()),
            influence: INFLUENCE_TYPES.contains(&entry.type_name.as_str()),
        }))
    }

    /// The cells the KPIs go to, as (grain, bucket); none when they are all zero.
    pub fn cell_buckets(&self) -> impl Iterator<Item = (Grain, i64)> + use<'_> {
        [Grain::Hour, Grain::Day]
            .into_iter()
            .filter(|_| !self.kpis.is_zero())
            .map(|grain| (grain, grain.bucket_of(self.timestamp)))
    }

    /// The day of the fan-day this entry adds to; `None` without an artist.
    pub fn fan_day(&self) -> Option<i64> {
        (!self.artist.is_empty()).then(|| Grain::Day.bucket_of(self.timestamp))
    }

    /// What it adds to its fan-day.
    pub fn fan_day_counts(&self) -> FanDay {
        let mut counts = FanDay::default();
        counts.by_tier[self.tier] = 1;
        counts.influence = i64::from(self.influence);
        counts
    }
}

impl Deltas {
    /// Adds one stored entry's effects, or says why it cannot be counted
    /// (adding nothing). Unrecognized entries add nothing and are no failure.
    /// Its revenue counts against `ceiling`, which refuses it when it would
    /// make a revenue figure overflow.
    /// Entry `seq`'s display names are taken with it.
    pub fn add(
        &mut self,
        seq: i64,
        stored: &NewEntry,
        fx: &FxTable,
        ceiling: &mut RevenueCeiling,
    ) -> Result<(), EntryFailure> {
        let entry = interpret(stored)?;
        let Some(effects) = Effects::of(&entry, fx)? else {
            self.names.add_entry(seq, &entry);
            return Ok(());
        };
        ceiling.admit(&effects.kpis)?;
        self.names.add_entry(seq, &entry);
        for (grain, bucket) in effects.cell_buckets() {
            let key = CellKey {
                grain,
                bucket,
                artist: effects.artist.to_owned(),
                city: effects.city.to_owned(),
                genre: effects.genre.to_owned(),
                live_event: effects.live_event.to_owned(),
            };
            *self.cells.entry(key).or_default() += effects.kpis;
        }
        if let Some(day) = effects.fan_day() {
            let key = FanDayKey {
                day,
                artist: effects.artist.to_owned(),
                fan: effects.fan.to_owned(),
                city: effects.city.to_owned(),
                genre: effects.genre.to_owned(),
            };
            self.fan_days.entry(key).or_default().add(&effects.fan_day_counts());
        }
        self.counted += 1;
        Ok(())
    }

    /// Adds another set of deltas to these.
    pub fn merge(&mut self, other: Deltas) {
        for (key, kpis) in other.cells {
            *self.cells.entry(key).or_default() += kpis;
        }
        for (key, day) in other.fan_days {
            self.fan_days.entry(key).or_default().add(&day);
        }
        self.counted += other.counted;
        self.names.merge(other.names);
    }
}

/// 0.1, 1, 10, 100, 1000 points → 0..=4.
fn tier_index(tenths: u16) -> usize {
    match tenths {
        0..=1 => 0,
        2..=10 => 1,
        11..=100 => 2,
        101..=1000 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coliseum_domain::money::Currency;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const TYPES: &[&str] = &[
        "audio.play",
        "vote.cast",
        "vote.retracted",
        "event.attended",
        "treasury.money_spent",
        "treasury.refunded",
        "social.share",
        "badge.earned",
        "hologram.beamed",
    ];

    fn stored(i: usize, kind: usize, artist: u8, minutes: u16, duration: u32, euros: bool) -> NewEntry {
        let now = datetime!(2026-11-20 12:00 UTC);
        let at = now - time::Duration::minutes(i64::from(minutes));
        let city = ["Oslo", " oslo", "Lima"][usize::from(artist) % 3];
        let envelope = json!({
            "event_id": format!("e-{i}"), "schema_version": 1, "type": TYPES[kind % TYPES.len()],
            "timestamp": at.format(&time::format_description::well_known::Rfc3339).expect("format"),
            "user_id": format!("fan_{}", artist % 3), "artist_id": format!("art_{artist}"),
            "metadata": {"city": city, "live_event_id": "live_1", "artist_name": format!("Artist {}", minutes % 3),
                         "amount_minor": 250, "currency": if euros { "EUR" } else { "USD" }},
            "engagement": {"duration_ms": duration},
        });
        let entry = validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::at(now)).expect("valid");
        NewEntry::from_entry(entry, now)
    }

    /// The deltas of entries that start at `first_seq` in the log.
    fn deltas_of(entries: &[NewEntry], first_seq: usize, fx: &FxTable) -> Deltas {
        let mut deltas = Deltas::default();
        for (i, entry) in entries.iter().enumerate() {
            let _ = deltas.add((first_seq + i) as i64, entry, fx, &mut RevenueCeiling::default());
        }
        deltas
    }

    proptest! {
        // Processing a stream in any split gives the same rollups as in one go.
        #[test]
        fn any_split_of_a_stream_sums_to_the_same_deltas(
            raw in proptest::collection::vec((0usize..9, 0u8..6, 0u16..4000, 0u32..60_000, any::<bool>()), 1..120),
            cuts in proptest::collection::vec(0usize..120, 0..8),
        ) {
            let fx = FxTable::parse(Currency::parse("USD").expect("USD"), "EUR=1.1").expect("rates");
            let entries: Vec<NewEntry> = raw
                .iter()
                .enumerate()
                .map(|(i, &(kind, artist, minutes, duration, euros))| stored(i, kind, artist, minutes, duration, euros))
                .collect();
            let whole = deltas_of(&entries, 0, &fx);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (entries.len() + 1)).collect();
            cuts.push(0);
            cuts.push(entries.len());
            cuts.sort_unstable();
            let mut merged = Deltas::default();
            for pair in cuts.windows(2) {
                merged.merge(deltas_of(&entries[pair[0]..pair[1]], pair[0], &fx));
            }
            prop_assert!(!whole.names.is_empty());
            prop_assert_eq!(merged, whole);
        }
    }

    #[test]
    fn a_stored_entry_that_no_longer_validates_is_a_failure_not_a_panic() {
        let mut broken = stored(0, 0, 1, 5, 40_000, false);
        broken.envelope = "{\"event_id\": 7}".to_owned();
        let failure = Deltas::default().add(
            1,
            &broken,
            &FxTable::new(Currency::parse("USD").expect("USD")),
            &mut RevenueCeiling::default(),
        );
        assert!(matches!(failure, Err(EntryFailure::Invalid(_))), "{failure:?}");
    }

    #[test]
    fn an_entry_past_the_revenue_ceiling_adds_nothing_and_says_why() {
        let fx = FxTable::parse(Currency::parse("USD").expect("USD"), "EUR=1.1").expect("rates");
        let payment = stored(0, 4, 1, 5, 0, false);
        let mut deltas = Deltas::default();
        let mut ceiling = RevenueCeiling::after(i64::MAX - 300);
        deltas.add(1, &payment, &fx, &mut ceiling).expect("250 fits");
        let refused = deltas.add(2, &stored(1, 4, 1, 6, 0, false), &fx, &mut ceiling);
        assert!(
            matches!(refused, Err(EntryFailure::Kpi(KpiError::RevenueCeiling))),
            "{refused:?}"
        );
        assert_eq!((deltas.counted, ceiling.gross()), (1, i64::MAX - 50));
        let day = deltas
            .cells
            .iter()
            .find(|(key, _)| key.grain == Grain::Day)
            .expect("a day cell");
        assert_eq!(day.1.revenue_minor, 250);
    }
}
