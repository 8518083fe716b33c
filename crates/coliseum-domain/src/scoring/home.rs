//! Every fan's home genre: the genre carrying most of the fan's weight
//! across all artists, per range.
//!
//! The rows are in artist order, so one fan's rows are scattered over the
//! whole array. Summing them in place means a random access (and, with
//! several genres a fan, a chain of them) for every row, which is what a
//! recomputation spent most of its time waiting on. Instead the counted rows
//! are first partitioned by fan into buckets of a few thousand fans (two
//! sequential passes, one stream of writes a bucket), then each bucket is
//! summed with its fans' genre lists small enough to stay in cache.

use super::{FanDayRow, Genres, NO_GENRE, NONE, ScoreRange, ScoringConfig, on_threads, row_weight};

/// Fans per bucket, as a power of two: 4,096 fans' genre lists fit in cache.
const BUCKET_SHIFT: u32 = 12;
const BUCKET_FANS: usize = 1 << BUCKET_SHIFT;

/// A counted row as home genres need it.
#[derive(Debug, Clone, Copy, Default)]
struct FanWeight {
    /// The row's decayed weight, in thousandths of a point.
    weight: i64,
    fan: u32,
    /// Dense genre index.
    genre: u16,
    /// Age in days, saturated: only "under 7" and "under 30" matter.
    age: u16,
}

/// The rows of one share, grouped by bucket.
struct Partitioned {
    /// Where each bucket starts in `weights`; one more than the buckets.
    starts: Vec<usize>,
    weights: Vec<FanWeight>,
}

impl Partitioned {
    fn bucket(&self, bucket: usize) -> &[FanWeight] {
        &self.weights[self.starts[bucket]..self.starts[bucket + 1]]
    }
}

/// Every fan's home genre in each range of [`ScoreRange::ALL`] (dense
/// indices, [`NO_GENRE`] for none), indexed by fan id, on `threads` threads.
pub(super) fn home_genres(
    config: &ScoringConfig,
    as_of_day: i64,
    rows: &[FanDayRow],
    genres: &Genres,
    threads: usize,
) -> Vec<[u16; 3]> {
    let bound = rows
        .iter()
        .filter(|r| r.fan != NONE)
        .map(|r| r.fan as usize + 1)
        .max()
        .unwrap_or(0);
    let buckets = bound.div_ceil(BUCKET_FANS);
    let threads = threads.max(1);
    let share = rows.len().div_ceil(threads).max(1);
    let parts: Vec<Partitioned> = on_threads(rows.chunks(share).collect(), |chunk| {
        partition(config, as_of_day, chunk, genres, buckets)
    });
    let per_thread = buckets.div_ceil(threads).max(1);
    let bucket_ranges: Vec<_> = (0..threads)
        .map(|t| (t * per_thread).min(buckets)..((t + 1) * per_thread).min(buckets))
        .collect();
    let homes = on_threads(bucket_ranges, |range| {
        let mut homes = Vec::with_capacity(range.len() * BUCKET_FANS);
        let mut sums = BucketSums::default();
        for bucket in range {
            sums.add(parts.iter().map(|part| part.bucket(bucket)), bucket << BUCKET_SHIFT);
            sums.homes_into(&mut homes);
        }
        homes
    });
    let mut homes: Vec<[u16; 3]> = homes.into_iter().flatten().collect();
    homes.truncate(bound);
    homes
}

/// The counted rows of `rows` with a fan and a genre, grouped by bucket:
/// one pass to count each bucket, one to place the rows.
fn partition(
    config: &ScoringConfig,
    as_of_day: i64,
    rows: &[FanDayRow],
    genres: &Genres,
    buckets: usize,
) -> Partitioned {
    let counted = |row: &FanDayRow| row.fan != NONE && row.genre != NONE && i64::from(row.day) <= as_of_day;
    let mut starts = vec![0_usize; buckets + 1];
    for row in rows.iter().filter(|row| counted(row)) {
        starts[(row.fan >> BUCKET_SHIFT) as usize + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut weights = vec![FanWeight::default(); starts[buckets]];
    let (mut last_genre, mut last_index) = (NONE, NO_GENRE);
    for row in rows.iter().filter(|row| counted(row)) {
        if row.genre != last_genre {
            (last_genre, last_index) = (row.genre, genres.index_of(row.genre));
        }
        let age = as_of_day - i64::from(row.day);
        let slot = &mut next[(row.fan >> BUCKET_SHIFT) as usize];
        weights[*slot] = FanWeight {
            weight: row_weight(config, row, age),
            fan: row.fan,
            genre: last_index,
            age: u16::try_from(age).unwrap_or(u16::MAX),
        };
        *slot += 1;
    }
    Partitioned { starts, weights }
}

/// The genre weights of one bucket's fans: a list of genres a fan, kept in
/// an arena reused from bucket to bucket.
#[derive(Default)]
struct BucketSums {
    /// Per fan of the bucket: its first node, or [`END`].
    heads: Vec<u32>,
    nodes: Vec<Node>,
}

struct Node {
    genre: u16,
    next: u32,
    /// Per range of [`ScoreRange::ALL`].
    weight: [i64; 3],
}

const END: u32 = u32::MAX;

impl BucketSums {
    /// Starts over with the bucket whose first fan is `first_fan`, and sums
    /// its weights (given in several slices).
    fn add<'a>(&mut self, slices: impl Iterator<Item = &'a [FanWeight]>, first_fan: usize) {
        self.heads.clear();
        self.heads.resize(BUCKET_FANS, END);
        self.nodes.clear();
        for entry in slices.flatten() {
            let slot = entry.fan as usize - first_fan;
            let mut at = self.heads[slot];
            while at != END && self.nodes[at as usize].genre != entry.genre {
                at = self.nodes[at as usize].next;
            }
            if at == END {
                at = u32::try_from(self.nodes.len()).expect("fewer than 4 billion fan genres in a bucket");
                self.nodes.push(Node {
                    genre: entry.genre,
                    next: self.heads[slot],
                    weight: [0; 3],
                });
                self.heads[slot] = at;
            }
            let node = &mut self.nodes[at as usize];
            for (weight, range) in node.weight.iter_mut().zip(ScoreRange::ALL) {
                if range.counts(i64::from(entry.age)) {
                    *weight += entry.weight;
                }
            }
        }
    }

    /// Appends each fan's home genres, in fan order: the heaviest genre with
    /// a positive weight, ties to the smaller index (the smaller name).
    fn homes_into(&self, homes: &mut Vec<[u16; 3]>) {
        homes.extend(self.heads.iter().map(|&head| {
            let mut best = [(NO_GENRE, 0_i64); 3];
            let mut at = head;
            while at != END {
                let node = &self.nodes[at as usize];
                for (best, &weight) in best.iter_mut().zip(&node.weight) {
                    let better = weight > best.1 || (weight == best.1 && node.genre < best.0);
                    if weight > 0 && better {
                        *best = (node.genre, weight);
                    }
                }
                at = node.next;
            }
            best.map(|(genre, _)| genre)
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Home genres summed fan by fan in a map, the obvious way.
    fn naive(config: &ScoringConfig, as_of_day: i64, rows: &[FanDayRow], genres: &Genres) -> HashMap<u32, [u16; 3]> {
        let mut sums: HashMap<(u32, u16), [i64; 3]> = HashMap::new();
        for row in rows {
            let age = as_of_day - i64::from(row.day);
            if row.fan == NONE || row.genre == NONE || age < 0 {
                continue;
            }
            let sum = sums.entry((row.fan, genres.index_of(row.genre))).or_default();
            for (sum, range) in sum.iter_mut().zip(ScoreRange::ALL) {
                if range.counts(age) {
                    *sum += row_weight(config, row, age);
                }
            }
        }
        let mut homes: HashMap<u32, [(u16, i64); 3]> = HashMap::new();
        for (&(fan, genre), weights) in &sums {
            let best = homes.entry(fan).or_insert([(NO_GENRE, 0); 3]);
            for (best, &weight) in best.iter_mut().zip(weights) {
                if weight > 0 && (weight > best.1 || (weight == best.1 && genre < best.0)) {
                    *best = (genre, weight);
                }
            }
        }
        homes
            .into_iter()
            .map(|(fan, best)| (fan, best.map(|(g, _)| g)))
            .collect()
    }

    #[test]
    fn buckets_and_threads_give_each_fan_its_heaviest_genre() {
        let config = ScoringConfig::default();
        let as_of_day = 20_000;
        let mut state = 5_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as u32
        };
        let genre_ids = [40, 41, 42, NONE];
        let mut rows: Vec<FanDayRow> = (0..20_000)
            .map(|_| {
                let mut by_tier = [0; 5];
                by_tier[next(5) as usize] = 1 + next(3) as u16;
                FanDayRow {
                    day: 20_000 - next(45) as i32 + 2,
                    artist: next(30),
                    // Fans spread over a dozen buckets, most with several rows.
                    fan: if next(50) == 0 { NONE } else { next(3_000) * 17 },
                    city: NONE,
                    genre: genre_ids[next(4) as usize],
                    by_tier,
                    influence: 0,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.artist, r.fan, r.day));
        let name = |id: u32| format!("genre {}", 100 - id);
        let genres = Genres::of(&rows, as_of_day, &name);
        let expected = naive(&config, as_of_day, &rows, &genres);
        for threads in [1, 2, 3, 8] {
            let homes = home_genres(&config, as_of_day, &rows, &genres, threads);
            assert_eq!(homes.len(), 2_999 * 17 + 1);
            for (fan, homes) in homes.iter().enumerate() {
                let want = expected.get(&(fan as u32)).copied().unwrap_or([NO_GENRE; 3]);
                assert_eq!(*homes, want, "fan {fan}, {threads} threads");
            }
        }
    }
}
