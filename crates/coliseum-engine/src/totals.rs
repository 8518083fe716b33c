//! Platform totals: the sums of every artist (and of entries with none) per
//! bucket, for each combination of city and genre — neither, either, or
//! both. A platform KPI series is then a walk over its buckets, whatever the
//! number of artists, with or without filters. The hour buckets of the last
//! 31 days and the day buckets of everything `all` covers are kept: at most
//! (1 + cities + genres + cities × genres) × 1,475 sums, sparse.

use std::collections::{BTreeMap, HashMap};

use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellKey, Grain};

/// Hour buckets of platform totals kept: the current one and 30 days before.
pub const TOTAL_HOURS_KEPT: i64 = 31 * 24;
/// Day buckets of platform totals kept: the whole of what `all` covers (24
/// months of 365 / 12 days, from midnight) and the current day.
pub const TOTAL_DAYS_KEPT: i64 = 24 * 365 / 12 + 2;

/// A city and genre combination as interned names; 0 is "any".
type Combination = (u32, u32);

#[derive(Debug, Default)]
pub struct Totals {
    /// Cities and genres as small numbers, from 1.
    names: HashMap<Box<str>, u32>,
    hours: HashMap<Combination, BTreeMap<i64, Kpis>>,
    days: HashMap<Combination, BTreeMap<i64, Kpis>>,
    /// The first bucket kept at the last pruning, per grain.
    pruned_at: (i64, i64),
}

impl Totals {
    /// The first hour and day bucket kept when the current ones are these.
    pub fn kept_from(current_hour: i64, current_day: i64) -> (i64, i64) {
        (current_hour - TOTAL_HOURS_KEPT + 1, current_day - TOTAL_DAYS_KEPT + 1)
    }

    fn intern(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len() + 1).unwrap_or(u32::MAX);
        self.names.insert(name.into(), id);
        id
    }

    /// The interned combination, or `None` when a name was never seen.
    fn combination(&self, city: Option<&str>, genre: Option<&str>) -> Option<Combination> {
        let id = |name: Option<&str>| match name {
            None => Some(0),
            Some(name) => self.names.get(name).copied(),
        };
        Some((id(city)?, id(genre)?))
    }

    /// Adds one cell if its bucket is kept (`first` of its grain onwards).
    pub fn add(&mut self, key: &CellKey, kpis: Kpis, first: i64) {
        if key.bucket < first {
            return;
        }
        let (city, genre) = (self.intern(&key.city), self.intern(&key.genre));
        let series = match key.grain {
            Grain::Hour => &mut self.hours,
            Grain::Day => &mut self.days,
        };
        // Every combination this cell belongs to: "any" for each dimension,
        // and its own value where it has one.
        let combinations = [(0, 0), (city, 0), (0, genre), (city, genre)];
        for (i, combination) in combinations.into_iter().enumerate() {
            let (needs_city, needs_genre) = (i & 1 != 0, i & 2 != 0);
            if (needs_city && city == 0) || (needs_genre && genre == 0) {
                continue;
            }
            *series.entry(combination).or_default().entry(key.bucket).or_default() += kpis;
        }
    }

    /// Drops the buckets before `first_hour` and `first_day`, once each time
    /// they move.
    pub fn prune(&mut self, first_hour: i64, first_day: i64) {
        if self.pruned_at == (first_hour, first_day) {
            return;
        }
        self.pruned_at = (first_hour, first_day);
        for (series, first) in [(&mut self.hours, first_hour), (&mut self.days, first_day)] {
            for buckets in series.values_mut() {
                if buckets.first_key_value().is_some_and(|(&b, _)| b < first) {
                    *buckets = buckets.split_off(&first);
                }
            }
            series.retain(|_, buckets| !buckets.is_empty());
        }
    }

    /// The memory it holds, estimated from its lengths: a B-tree's spare
    /// room in its nodes is not counted.
    pub fn bytes(&self) -> usize {
        let sums: usize = self.hours.values().chain(self.days.values()).map(BTreeMap::len).sum();
        let series = self.hours.capacity() + self.days.capacity();
        crate::hot::map_bytes::<(Box<str>, u32)>(self.names.capacity())
            + self.names.keys().map(|name| name.len()).sum::<usize>()
            + crate::hot::map_bytes::<(Combination, BTreeMap<i64, Kpis>)>(series)
            + sums * std::mem::size_of::<(i64, Kpis)>()
    }

    /// The sums per bucket of `first..=last` for a city, a genre, both or
    /// neither, buckets without figures left out.
    pub fn series(
        &self,
        grain: Grain,
        first: i64,
        last: i64,
        city: Option<&str>,
        genre: Option<&str>,
    ) -> Vec<(i64, Kpis)> {
        let series = match grain {
            Grain::Hour => &self.hours,
            Grain::Day => &self.days,
        };
        if first > last {
            return Vec::new();
        }
        let buckets = self.combination(city, genre).and_then(|c| series.get(&c));
        buckets.map_or_else(Vec::new, |buckets| {
            buckets.range(first..=last).map(|(&b, &k)| (b, k)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(grain: Grain, bucket: i64, city: &str, genre: &str) -> CellKey {
        CellKey {
            grain,
            bucket,
            artist: "a".into(),
            city: city.into(),
            genre: genre.into(),
            live_event: String::new(),
        }
    }

    fn plays(n: i64) -> Kpis {
        Kpis {
            plays: n,
            ..Kpis::default()
        }
    }

    #[test]
    fn every_combination_of_city_and_genre_is_summed_per_bucket() {
        let mut totals = Totals::default();
        totals.add(&cell(Grain::Hour, 10, "lagos", "jazz"), plays(1), 0);
        totals.add(&cell(Grain::Hour, 10, "lagos", "pop"), plays(2), 0);
        totals.add(&cell(Grain::Hour, 11, "", "jazz"), plays(4), 0);
        totals.add(&cell(Grain::Day, 3, "lagos", "jazz"), plays(8), 0);
        let series = |city, genre| {
            totals
                .series(Grain::Hour, 0, 20, city, genre)
                .into_iter()
                .map(|(b, k)| (b, k.plays))
                .collect::<Vec<_>>()
        };
        assert_eq!(series(None, None), vec![(10, 3), (11, 4)]);
        assert_eq!(series(Some("lagos"), None), vec![(10, 3)]);
        assert_eq!(series(None, Some("jazz")), vec![(10, 1), (11, 4)]);
        assert_eq!(series(Some("lagos"), Some("jazz")), vec![(10, 1)]);
        assert_eq!(series(Some("lagos"), Some("rock")), vec![]);
        assert_eq!(totals.series(Grain::Hour, 11, 11, None, None), vec![(11, plays(4))]);
        assert_eq!(
            totals.series(Grain::Day, 0, 9, Some("lagos"), None),
            vec![(3, plays(8))]
        );
    }

    #[test]
    fn buckets_before_the_kept_ones_are_dropped_and_never_added() {
        let mut totals = Totals::default();
        totals.add(&cell(Grain::Hour, 10, "lagos", ""), plays(1), 0);
        totals.add(&cell(Grain::Hour, 12, "lagos", ""), plays(1), 0);
        totals.prune(11, 0);
        totals.add(&cell(Grain::Hour, 10, "lagos", ""), plays(5), 11);
        assert_eq!(totals.series(Grain::Hour, 0, 20, None, None), vec![(12, plays(1))]);
        totals.prune(13, 0);
        assert!(totals.series(Grain::Hour, 0, 20, None, None).is_empty());
        assert!(totals.hours.is_empty(), "empty series are forgotten");
    }
}
