//! `coliseum rebuild`: every derived row recomputed from the log.
//!
//! The processor's way (a transaction of upserts per batch) costs a database
//! row merge for nearly every entry, since at 50,000 artists the cube hardly
//! merges within a batch. A rebuild starts from empty tables, so it merges
//! in memory instead: the log is read once (the next batch read while the
//! last is counted), counted by two threads into two partitions split by
//! artist (every derived key holds its artist, so the partitions never share
//! a key), with every name interned so that a key is a few numbers, and then
//! written once, in key order, by the store's bulk load, in one transaction
//! with the cursor. Memory grows with the number of derived rows: about 200
//! bytes a row at the peak, 3.4 GiB for the 17.7 million rows of the
//! 10-million-entry benchmark.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use coliseum_domain::kpi::{Kpis, RevenueCeiling};
use coliseum_domain::money::FxTable;
use coliseum_domain::passport::{KpiEffect, TypeSpec};
use coliseum_store::{
    CellKey, DeadLetter, DerivedPart, DisplayName, FanDay, FanDayKey, Grain, Store, StoreError, StoredEntry,
};
use time::OffsetDateTime;

use crate::ProcessorConfig;
use crate::deltas::{Effects, EntryFailure, interpret};
use crate::names::NameDeltas;
use crate::processor::failed;

/// Entries read from the log at a time.
const READ_BATCH: u32 = 50_000;
/// Rows in one part sent to the store.
const PART_ROWS: usize = 50_000;

/// Where a rebuild stands, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildProgress {
    /// Counting the log; every entry up to `seq` is counted.
    Counting { seq: i64 },
    /// Writing the derived rows: `written` of `rows`.
    Writing { written: u64, rows: u64 },
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildReport {
    /// Entries read from the log.
    pub entries: u64,
    /// The cursor afterwards: the last entry read.
    pub to_seq: i64,
    pub cells: u64,
    pub fan_days: u64,
    pub dead_letters: u64,
    pub counting_seconds: f64,
    pub writing_seconds: f64,
}

/// Empties the derived tables and recomputes them from the log; entries
/// that cannot be counted become dead letters that failed once at `now`.
/// The caller makes sure no processor runs meanwhile (one would find its
/// cursor moved and stop with a conflict rather than count anything twice).
pub async fn rebuild(
    store: Arc<dyn Store>,
    fx: Arc<FxTable>,
    now: OffsetDateTime,
    progress: impl Fn(RebuildProgress),
) -> Result<RebuildReport, StoreError> {
    store.reset_derived().await?;
    let started = std::time::Instant::now();
    let mut partitions = Box::new([Partition::default(), Partition::default()]);
    let mut dead_letters = Vec::new();
    let mut ceiling = RevenueCeiling::default();
    let (mut entries, mut to_seq) = (0_u64, 0_i64);
    let mut batch = store.read_after(0, READ_BATCH).await?;
    while let Some(last) = batch.last() {
        to_seq = last.seq;
        entries += batch.len() as u64;
        let fx = fx.clone();
        let counting = tokio::task::spawn_blocking(move || {
            let failures = count(&mut partitions, &batch, &fx, now, &mut ceiling);
            (partitions, ceiling, failures)
        });
        let (counted, next) = tokio::join!(counting, store.read_after(to_seq, READ_BATCH));
        let (counted_partitions, counted_ceiling, failures) = counted.map_err(join_failure)?;
        (partitions, ceiling) = (counted_partitions, counted_ceiling);
        dead_letters.extend(failures);
        batch = next?;
        progress(RebuildProgress::Counting { seq: to_seq });
    }
    let counting_seconds = started.elapsed().as_secs_f64();

    let started = std::time::Instant::now();
    let [mut first, mut second] = *partitions;
    let mut names = std::mem::take(&mut first.display);
    names.merge(std::mem::take(&mut second.display));
    let names = names.into_vec();
    let sorted = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let other = scope.spawn(|| second.into_sorted());
            let mine = first.into_sorted();
            [
                mine,
                other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            ]
        })
    })
    .await
    .map_err(join_failure)?;
    let (cells, fan_days) = (
        sorted.iter().map(|p| p.cells.len() as u64).sum::<u64>(),
        sorted.iter().map(|p| p.fan_days.len() as u64).sum::<u64>(),
    );
    let dead_letter_count = dead_letters.len() as u64;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let writing = tokio::task::spawn_blocking(move || send_parts(&sorted, dead_letters, names, &sender, &counter));
    let mut load = std::pin::pin!(store.load_derived(to_seq, ceiling.gross(), receiver));
    let rows = cells + fan_days;
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    let loaded = loop {
        tokio::select! {
            loaded = &mut load => break loaded,
            _ = ticks.tick() => {
                progress(RebuildProgress::Writing { written: written.load(Relaxed), rows });
            }
        }
    };
    // A failed load drops the receiver; the sender then stops on its own.
    let sent = writing.await.map_err(join_failure)?;
    loaded?;
    sent?;
    progress(RebuildProgress::Writing { written: rows, rows });
    Ok(RebuildReport {
        entries,
        to_seq,
        cells,
        fan_days,
        dead_letters: dead_letter_count,
        counting_seconds,
        writing_seconds: started.elapsed().as_secs_f64(),
    })
}

fn join_failure(error: tokio::task::JoinError) -> StoreError {
    StoreError::Internal(format!("a rebuild thread failed: {error}"))
}

/// Counts a batch into the two partitions, one per thread; returns the
/// dead letters of the entries that could not be counted. Revenue is
/// admitted against the ceiling first, in log order as the processor does,
/// so that a rebuild refuses the same entries.
fn count(
    partitions: &mut [Partition; 2],
    batch: &[StoredEntry],
    fx: &FxTable,
    now: OffsetDateTime,
    ceiling: &mut RevenueCeiling,
) -> Vec<DeadLetter> {
    let (mut halves, mut shares): ([Vec<&StoredEntry>; 2], [usize; 2]) = (Default::default(), [0, 0]);
    let mut refused = Vec::new();
    for stored in batch {
        if let Err(failure) = admit_revenue(stored, fx, ceiling) {
            refused.push((stored, failure.to_string()));
            continue;
        }
        let half = partition_of(stored.entry.artist_id.as_deref().unwrap_or_default());
        halves[half].push(stored);
        shares[half] += 1;
    }
    let [first, second] = partitions;
    let [first_half, second_half] = halves;
    let (mut failed_first, failed_second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| second.count(&second_half, fx));
        let mine = first.count(&first_half, fx);
        (
            mine,
            other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    failed_first.extend(failed_second);
    failed_first.extend(refused);
    let config = ProcessorConfig::default();
    failed_first
        .into_iter()
        .map(|(stored, reason)| failed(&config, stored, reason, 1, now, now))
        .collect()
}

/// Counts a revenue entry's amount against the ceiling. Entries of other
/// types, and entries that cannot be interpreted (their partition says
/// why), pass.
fn admit_revenue(stored: &StoredEntry, fx: &FxTable, ceiling: &mut RevenueCeiling) -> Result<(), EntryFailure> {
    let moves_revenue =
        TypeSpec::lookup(&stored.entry.entry_type).is_some_and(|spec| matches!(spec.kpi, KpiEffect::Revenue(_)));
    if !moves_revenue {
        return Ok(());
    }
    let Ok(entry) = interpret(&stored.entry) else {
        return Ok(());
    };
    match Effects::of(&entry, fx) {
        Ok(Some(effects)) => Ok(ceiling.admit(&effects.kpis)?),
        Ok(None) | Err(_) => Ok(()),
    }
}

/// 0 or 1, by the stored artist id: the same artist always lands in the same partition.
fn partition_of(artist: &str) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    artist.hash(&mut hasher);
    (hasher.finish() & 1) as usize
}

/// Names as dense numbers: a key of four names costs 16 bytes, not four strings.
#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 4 billion distinct names");
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct CellId {
    grain: Grain,
    bucket: i64,
    artist: u32,
    city: u32,
    genre: u32,
    live_event: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FanDayId {
    day: i64,
    artist: u32,
    fan: u32,
    city: u32,
    genre: u32,
}

/// The derived rows of the entries of some artists, merged in memory.
#[derive(Default)]
struct Partition {
    names: Names,
    /// The display names the entries gave.
    display: NameDeltas,
    cells: HashMap<CellId, Kpis>,
    fan_days: HashMap<FanDayId, FanDay>,
}

impl Partition {
    /// Counts entries; returns those that could not be counted, with why.
    fn count<'e>(&mut self, entries: &[&'e StoredEntry], fx: &FxTable) -> Vec<(&'e StoredEntry, String)> {
        let mut failures = Vec::new();
        for &stored in entries {
            let interpreted = interpret(&stored.entry).and_then(|entry| {
                if let Some(effects) = Effects::of(&entry, fx)? {
                    self.add(&effects);
                }
                self.display.add_entry(stored.seq, &entry);
                Ok(())
            });
            if let Err(failure) = interpreted {
                failures.push((stored, failure.to_string()));
            }
        }
        failures
    }

    fn add(&mut self, effects: &Effects<'_>) {
        let names = &mut self.names;
        let (artist, city, genre) = (
            names.id(effects.artist),
            names.id(effects.city),
            names.id(effects.genre),
        );
        for (grain, bucket) in effects.cell_buckets() {
            let live_event = names.id(effects.live_event);
            let key = CellId {
                grain,
                bucket,
                artist,
                city,
                genre,
                live_event,
            };
            *self.cells.entry(key).or_default() += effects.kpis;
        }
        if let Some(day) = effects.fan_day() {
            let key = FanDayId {
                day,
                artist,
                fan: names.id(effects.fan),
                city,
                genre,
            };
            self.fan_days.entry(key).or_default().add(&effects.fan_day_counts());
        }
    }

    /// The rows in key order: names renumbered in byte order (the order the
    /// stores' keys sort in), so that comparing numbers compares the names.
    fn into_sorted(self) -> SortedPartition {
        let Names { names, .. } = self.names;
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0_u32; names.len()];
        for (position, &id) in order.iter().enumerate() {
            rank[id as usize] = position as u32;
        }
        let mut names = names;
        let mut sorted_names = Vec::with_capacity(names.len());
        for &id in &order {
            sorted_names.push(std::mem::take(&mut names[id as usize]));
        }
        let r = |id: u32| rank[id as usize];
        let mut cells: Vec<(CellId, Kpis)> = self
            .cells
            .into_iter()
            .map(|(k, v)| {
                let key = CellId {
                    artist: r(k.artist),
                    city: r(k.city),
                    genre: r(k.genre),
                    live_event: r(k.live_event),
                    ..k
                };
                (key, v)
            })
            .collect();
        cells.sort_unstable_by_key(|(key, _)| *key);
        let mut fan_days: Vec<(FanDayId, FanDay)> = self
            .fan_days
            .into_iter()
            .map(|(k, v)| {
                let key = FanDayId {
                    artist: r(k.artist),
                    fan: r(k.fan),
                    city: r(k.city),
                    genre: r(k.genre),
                    ..k
                };
                (key, v)
            })
            .collect();
        fan_days.sort_unstable_by_key(|(key, _)| *key);
        SortedPartition {
            names: sorted_names,
            cells,
            fan_days,
        }
    }
}

struct SortedPartition {
    names: Vec<String>,
    cells: Vec<(CellId, Kpis)>,
    fan_days: Vec<(FanDayId, FanDay)>,
}

impl SortedPartition {
    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn cell_key(&self, id: &CellId) -> CellKey {
        CellKey {
            grain: id.grain,
            bucket: id.bucket,
            artist: self.name(id.artist).to_owned(),
            city: self.name(id.city).to_owned(),
            genre: self.name(id.genre).to_owned(),
            live_event: self.name(id.live_event).to_owned(),
        }
    }

    fn fan_day_key(&self, id: &FanDayId) -> FanDayKey {
        FanDayKey {
            day: id.day,
            artist: self.name(id.artist).to_owned(),
            fan: self.name(id.fan).to_owned(),
            city: self.name(id.city).to_owned(),
            genre: self.name(id.genre).to_owned(),
        }
    }
}

/// Sends every row in key order, the two partitions merged (a key in both,
/// which the split by artist rules out, would be summed all the same), then
/// the dead letters and the end.
fn send_parts(
    sorted: &[SortedPartition; 2],
    dead_letters: Vec<DeadLetter>,
    names: Vec<DisplayName>,
    sender: &tokio::sync::mpsc::Sender<DerivedPart>,
    written: &AtomicU64,
) -> Result<(), StoreError> {
    let closed = |_| StoreError::Internal("the store stopped taking the rebuilt rows".to_owned());
    let [a, b] = sorted;
    let cells = merge(
        &a.cells,
        &b.cells,
        |x, y| {
            (x.grain, x.bucket)
                .cmp(&(y.grain, y.bucket))
                .then_with(|| a.name(x.artist).cmp(b.name(y.artist)))
                .then_with(|| a.name(x.city).cmp(b.name(y.city)))
                .then_with(|| a.name(x.genre).cmp(b.name(y.genre)))
                .then_with(|| a.name(x.live_event).cmp(b.name(y.live_event)))
        },
        |from_a, id| if from_a { a.cell_key(id) } else { b.cell_key(id) },
        |sum, more| *sum += *more,
    );
    for part in cells {
        written.fetch_add(part.len() as u64, Relaxed);
        sender.blocking_send(DerivedPart::Cells(part)).map_err(closed)?;
    }
    let fan_days = merge(
        &a.fan_days,
        &b.fan_days,
        |x, y| {
            x.day
                .cmp(&y.day)
                .then_with(|| a.name(x.artist).cmp(b.name(y.artist)))
                .then_with(|| a.name(x.fan).cmp(b.name(y.fan)))
                .then_with(|| a.name(x.city).cmp(b.name(y.city)))
                .then_with(|| a.name(x.genre).cmp(b.name(y.genre)))
        },
        |from_a, id| if from_a { a.fan_day_key(id) } else { b.fan_day_key(id) },
        |sum, more| sum.add(more),
    );
    for part in fan_days {
        written.fetch_add(part.len() as u64, Relaxed);
        sender.blocking_send(DerivedPart::FanDays(part)).map_err(closed)?;
    }
    if !dead_letters.is_empty() {
        sender
            .blocking_send(DerivedPart::DeadLetters(dead_letters))
            .map_err(closed)?;
    }
    if !names.is_empty() {
        sender.blocking_send(DerivedPart::Names(names)).map_err(closed)?;
    }
    sender.blocking_send(DerivedPart::End).map_err(closed)
}

/// Two key-ordered lists merged into parts of [`PART_ROWS`] rows with named
/// keys; `compare` orders a key of the first list against one of the second.
fn merge<'s, Id, Value: Copy + 's, Key>(
    first: &'s [(Id, Value)],
    second: &'s [(Id, Value)],
    compare: impl Fn(&Id, &Id) -> Ordering + 's,
    name: impl Fn(bool, &Id) -> Key + 's,
    add: impl Fn(&mut Value, &Value) + 's,
) -> impl Iterator<Item = Vec<(Key, Value)>> + 's {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let mut part = Vec::with_capacity(PART_ROWS);
        while part.len() < PART_ROWS {
            let row = match (first.get(i), second.get(j)) {
                (None, None) => break,
                (Some((id, value)), None) => {
                    i += 1;
                    (name(true, id), *value)
                }
                (None, Some((id, value))) => {
                    j += 1;
                    (name(false, id), *value)
                }
                (Some((x, vx)), Some((y, vy))) => match compare(x, y) {
                    Ordering::Less => {
                        i += 1;
                        (name(true, x), *vx)
                    }
                    Ordering::Greater => {
                        j += 1;
                        (name(false, y), *vy)
                    }
                    Ordering::Equal => {
                        (i, j) = (i + 1, j + 1);
                        let mut sum = *vx;
                        add(&mut sum, vy);
                        (name(true, x), sum)
                    }
                },
            };
            part.push(row);
        }
        (!part.is_empty()).then_some(part)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_key_order_and_sums_a_key_in_both_lists() {
        let first = [(1, 10), (3, 30), (5, 50)];
        let second = [(2, 200), (3, 300), (6, 600)];
        let merged: Vec<Vec<(i32, i32)>> = merge(
            &first,
            &second,
            |x: &i32, y: &i32| x.cmp(y),
            |_, id| *id,
            |sum, more| *sum += *more,
        )
        .collect();
        assert_eq!(merged, vec![vec![(1, 10), (2, 200), (3, 330), (5, 50), (6, 600)]]);
    }

    #[test]
    fn names_are_renumbered_in_byte_order() {
        let mut partition = Partition::default();
        let effects = |artist, fan, city| Effects {
            kpis: Kpis {
                plays: 1,
                ..Kpis::default()
            },
            timestamp: time::macros::datetime!(2026-11-20 12:00 UTC),
            artist,
            fan,
            city,
            genre: "",
            live_event: "",
            tier: 1,
            influence: false,
        };
        partition.add(&effects("art_b", "fan_2", "oslo"));
        partition.add(&effects("art_a", "fan_1", "Oslo"));
        partition.add(&effects("art_b", "fan_2", "oslo"));
        let sorted = partition.into_sorted();
        let days: Vec<FanDayKey> = sorted.fan_days.iter().map(|(id, _)| sorted.fan_day_key(id)).collect();
        let names = |key: &FanDayKey| (key.artist.clone(), key.fan.clone(), key.city.clone());
        assert_eq!(
            days.iter().map(names).collect::<Vec<_>>(),
            vec![
                ("art_a".to_owned(), "fan_1".to_owned(), "Oslo".to_owned()),
                ("art_b".to_owned(), "fan_2".to_owned(), "oslo".to_owned()),
            ]
        );
        assert_eq!(sorted.fan_days[1].1.by_tier, [0, 2, 0, 0, 0]);
        assert_eq!(sorted.cells.len(), 4, "an hour and a day cell for each artist");
        assert!(
            sorted
                .cells
                .windows(2)
                .all(|pair| sorted.cell_key(&pair[0].0) < sorted.cell_key(&pair[1].0))
        );
    }
}
