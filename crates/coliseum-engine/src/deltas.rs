//! From log entries to additive deltas: the KPI rollup cells (hour and day)
//! and the fan-days each entry adds to, merged by key. Pure: the processor,
//! rebuild and the tests all go through [`Deltas::add`], so a batch split in
//! any way sums to the same rollups.

use std::collections::HashMap;

use coliseum_domain::kpi::{KpiError, Kpis, kpis_of};
use coliseum_domain::money::FxTable;
use coliseum_domain::passport::{Entry, FieldError, ValidationContext, validate_raw_envelope};
use coliseum_store::{CellKey, FanDay, FanDayKey, Grain, NewEntry};

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
}

impl Deltas {
    /// Adds one stored entry's effects, or says why it cannot be counted
    /// (adding nothing). Unrecognized entries add nothing and are no failure.
    pub fn add(&mut self, stored: &NewEntry, fx: &FxTable) -> Result<(), EntryFailure> {
        let entry = interpret(stored)?;
        let Some(tier) = entry.tier() else { return Ok(()) };
        let kpis = kpis_of(&entry, fx)?;
        let dimension =
            |d: &Option<coliseum_domain::dimension::Dimension>| d.as_ref().map(|d| d.key.clone()).unwrap_or_default();
        let (city, genre) = (dimension(&entry.city), dimension(&entry.genre));
        let artist = entry.artist_id.clone().unwrap_or_default();
        if !kpis.is_zero() {
            for grain in [Grain::Hour, Grain::Day] {
                let key = CellKey {
                    grain,
                    bucket: grain.bucket_of(entry.timestamp),
                    artist: artist.clone(),
                    city: city.clone(),
                    genre: genre.clone(),
                    live_event: entry.live_event_id.clone().unwrap_or_default(),
                };
                *self.cells.entry(key).or_default() += kpis;
            }
        }
        if !artist.is_empty() {
            let key = FanDayKey {
                day: Grain::Day.bucket_of(entry.timestamp),
                artist,
                fan: entry.user_id.clone().unwrap_or_default(),
                city,
                genre,
            };
            let day = self.fan_days.entry(key).or_default();
            day.by_tier[tier_index(tier.tenths())] += 1;
            day.influence += i64::from(INFLUENCE_TYPES.contains(&entry.type_name.as_str()));
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
            "metadata": {"city": city, "live_event_id": "live_1",
                         "amount_minor": 250, "currency": if euros { "EUR" } else { "USD" }},
            "engagement": {"duration_ms": duration},
        });
        let entry = validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::at(now)).expect("valid");
        NewEntry::from_entry(entry, now)
    }

    fn deltas_of(entries: &[NewEntry], fx: &FxTable) -> Deltas {
        let mut deltas = Deltas::default();
        for entry in entries {
            let _ = deltas.add(entry, fx);
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
            let whole = deltas_of(&entries, &fx);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (entries.len() + 1)).collect();
            cuts.push(0);
            cuts.push(entries.len());
            cuts.sort_unstable();
            let mut merged = Deltas::default();
            for pair in cuts.windows(2) {
                merged.merge(deltas_of(&entries[pair[0]..pair[1]], &fx));
            }
            prop_assert_eq!(merged, whole);
        }
    }

    #[test]
    fn a_stored_entry_that_no_longer_validates_is_a_failure_not_a_panic() {
        let mut broken = stored(0, 0, 1, 5, 40_000, false);
        broken.envelope = "{\"event_id\": 7}".to_owned();
        let failure = Deltas::default().add(&broken, &FxTable::new(Currency::parse("USD").expect("USD")));
        assert!(matches!(failure, Err(EntryFailure::Invalid(_))), "{failure:?}");
    }
}
