//! Display names (PASSPORT.md): what people read instead of `art_17`. An
//! artist's or live event's newest name by entry timestamp, a city's or
//! genre's first spelling in the log, by the one rule of
//! [`DisplayName::replaces`]. [`NameDeltas`] gathers a run of entries'
//! names for a batch or a rebuild; [`DisplayNames`] is what the reads look
//! names up in, loaded at start and kept current by every applied batch.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use coliseum_domain::passport::Entry;
use coliseum_store::{DisplayName, DisplayNamesStore, NameKind, ProcessedBatch, StoreError};

use crate::processor::{AppliedSink, Watermark};

/// The names a run of entries gave, at most one per kind and id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameDeltas(HashMap<(NameKind, String), DisplayName>);

impl NameDeltas {
    /// Takes the names entry `seq` gives: its artist's and live event's
    /// (with their ids), its city's and genre's spellings.
    pub fn add_entry(&mut self, seq: i64, entry: &Entry) {
        let named = [
            (NameKind::Artist, entry.artist_id.as_ref(), entry.artist_name.as_ref()),
            (
                NameKind::LiveEvent,
                entry.live_event_id.as_ref(),
                entry.live_event_name.as_ref(),
            ),
            (
                NameKind::City,
                entry.city.as_ref().map(|c| &c.key),
                entry.city.as_ref().map(|c| &c.display),
            ),
            (
                NameKind::Genre,
                entry.genre.as_ref().map(|g| &g.key),
                entry.genre.as_ref().map(|g| &g.display),
            ),
        ];
        for (kind, id, name) in named {
            if let (Some(id), Some(name)) = (id, name) {
                self.offer(DisplayName {
                    kind,
                    id: id.clone(),
                    name: name.clone(),
                    at: entry.timestamp,
                    seq,
                });
            }
        }
    }

    /// Keeps `name` where it replaces the one held for its kind and id.
    pub fn offer(&mut self, name: DisplayName) {
        match self.0.get_mut(&(name.kind, name.id.clone())) {
            Some(held) if name.replaces(held) => *held = name,
            Some(_) => {}
            None => {
                self.0.insert((name.kind, name.id.clone()), name);
            }
        }
    }

    pub fn merge(&mut self, other: NameDeltas) {
        for name in other.0.into_values() {
            self.offer(name);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<DisplayName> {
        self.0.into_values().collect()
    }
}

/// The names in force, by kind and id.
#[derive(Debug, Default)]
pub struct DisplayNames {
    /// By [`NameKind::code`].
    known: RwLock<[HashMap<String, DisplayName>; 4]>,
}

impl DisplayNames {
    /// The names the store keeps.
    pub async fn load(store: &dyn DisplayNamesStore) -> Result<Arc<Self>, StoreError> {
        let names = Arc::new(Self::default());
        names.learn(&store.display_names().await?);
        Ok(names)
    }

    /// The names in force under one read of the map: a body that names a
    /// page of artists looks them all up for one lock, not one each.
    pub fn read(&self) -> NamesRead<'_> {
        NamesRead(self.known.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The display name of an artist or live event (by id), or the
    /// spelling of a city or genre (by key); `None` while none is known.
    pub fn name(&self, kind: NameKind, id: &str) -> Option<String> {
        self.read().name(kind, id)
    }

    /// A city's or genre's spelling, its key when none is known.
    pub fn spelling(&self, kind: NameKind, key: &str) -> String {
        self.read().spelling(kind, key)
    }

    /// Takes each of `names` where it replaces the one known.
    pub fn learn(&self, names: &[DisplayName]) {
        if names.is_empty() {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for name in names {
            let by_id = &mut known[name.kind.code() as usize];
            match by_id.get_mut(&name.id) {
                Some(held) if name.replaces(held) => *held = name.clone(),
                Some(_) => {}
                None => {
                    by_id.insert(name.id.clone(), name.clone());
                }
            }
        }
    }
}

/// The names in force, held for a few lookups (never across an `await`).
#[derive(Debug)]
pub struct NamesRead<'a>(RwLockReadGuard<'a, [HashMap<String, DisplayName>; 4]>);

impl NamesRead<'_> {
    /// As [`DisplayNames::name`].
    pub fn name(&self, kind: NameKind, id: &str) -> Option<String> {
        self.0[kind.code() as usize].get(id).map(|n| n.name.clone())
    }

    /// As [`DisplayNames::spelling`].
    pub fn spelling(&self, kind: NameKind, key: &str) -> String {
        self.name(kind, key).unwrap_or_else(|| key.to_owned())
    }

    /// Up to `limit` of `kind` whose name or id contains `text` (any case),
    /// as `(id, name)`: names that start with it first, then by name. A
    /// scan (50,000 artists take about a millisecond), so callers bound
    /// how often it runs; only the winners are copied.
    pub fn find(&self, kind: NameKind, text: &str, limit: usize) -> Vec<(String, String)> {
        let wanted = text.trim().to_lowercase();
        if wanted.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut found: Vec<(bool, &str, &str)> = self.0[kind.code() as usize]
            .values()
            .filter_map(|n| {
                let name = n.name.to_lowercase();
                let hit = name.contains(&wanted) || n.id.to_lowercase().contains(&wanted);
                hit.then(|| (!name.starts_with(&wanted), n.name.as_str(), n.id.as_str()))
            })
            .collect();
        if found.len() > limit {
            found.select_nth_unstable(limit - 1);
            found.truncate(limit);
        }
        found.sort_unstable();
        found
            .into_iter()
            .map(|(_, name, id)| (id.to_owned(), name.to_owned()))
            .collect()
    }
}

impl AppliedSink for DisplayNames {
    fn applied(&self, batch: &Arc<ProcessedBatch>, _watermark: Watermark) {
        self.learn(&batch.names);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn name(kind: NameKind, id: &str, name: &str, minute: i64, seq: i64) -> DisplayName {
        DisplayName {
            kind,
            id: id.to_owned(),
            name: name.to_owned(),
            at: datetime!(2026-11-30 12:00 UTC) + time::Duration::minutes(minute),
            seq,
        }
    }

    #[test]
    fn the_newest_name_and_the_first_spelling_win_in_any_order_of_arrival() {
        let names = [
            name(NameKind::Artist, "art_1", "Temilade", 1, 9),
            name(NameKind::Artist, "art_1", "Tems", 5, 4),
            name(NameKind::Artist, "art_1", "TEMS (old)", 5, 3),
            name(NameKind::City, "lagos", "LAGOS", 9, 7),
            name(NameKind::City, "lagos", "Lagos", 1, 2),
        ];
        // Every order of arrival, whether gathered first or learned one by one.
        for rotation in 0..names.len() {
            let mut order = names.to_vec();
            order.rotate_left(rotation);
            let mut deltas = NameDeltas::default();
            let known = DisplayNames::default();
            for n in &order {
                deltas.offer(n.clone());
                known.learn(std::slice::from_ref(n));
            }
            let gathered = DisplayNames::default();
            gathered.learn(&deltas.into_vec());
            for names in [&known, &gathered] {
                assert_eq!(names.name(NameKind::Artist, "art_1").as_deref(), Some("Tems"));
                assert_eq!(names.spelling(NameKind::City, "lagos"), "Lagos");
                assert_eq!(
                    names.spelling(NameKind::Genre, "jazz"),
                    "jazz",
                    "no spelling known: the key"
                );
                assert_eq!(names.name(NameKind::LiveEvent, "art_1"), None, "kinds are apart");
            }
        }
    }

    #[test]
    fn a_search_finds_names_that_start_with_the_text_first_in_any_case() {
        let names = DisplayNames::default();
        names.learn(&[
            name(NameKind::Artist, "art_1", "Burna Boy", 1, 1),
            name(NameKind::Artist, "art_2", "Aurora", 1, 2),
            name(NameKind::Artist, "art_3", "Tems", 1, 3),
            name(NameKind::LiveEvent, "le_1", "Aurora Live", 1, 4),
        ]);
        let read = names.read();
        let found = read.find(NameKind::Artist, "  UR ", 10);
        assert_eq!(
            found,
            vec![
                ("art_2".to_owned(), "Aurora".to_owned()),
                ("art_1".to_owned(), "Burna Boy".to_owned())
            ]
        );
        assert_eq!(
            read.find(NameKind::Artist, "au", 10)[0].0,
            "art_2",
            "a name that starts with it first"
        );
        assert_eq!(read.find(NameKind::Artist, "art_3", 10).len(), 1, "ids match too");
        assert!(read.find(NameKind::Artist, "", 10).is_empty());
        assert_eq!(read.find(NameKind::Artist, "r", 1).len(), 1);
    }
}
