//! Per-artist KPI sums packed for the read caches: 28 bytes a row instead
//! of 56. The caches hold these rows by the million (every artist of every
//! tile a board or a series was made from), and the figures of one artist
//! over one tile almost always fit in 32 bits. A row whose figures do not
//! keeps them whole on the side, so no sum is ever cut short.

use coliseum_domain::kpi::{Kpis, Metric};

/// The first figure of a row whose figures did not fit: they are the next
/// of [`PackedSums::wide`] in order. No narrowed figure takes this value,
/// and every figure of such a row holds it.
const WIDE: i32 = i32::MIN;

/// The six figures, in the order of `[i64; 6]` from [`Kpis`].
const FIGURES: usize = 6;

/// Per-artist sums, by interned id, in the order they were given. The
/// figures are kept column by column: a board sums one metric over hundreds
/// of thousands of rows, and reads only its ids and that column (8 bytes a
/// row instead of 28).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedSums {
    ids: Box<[u32]>,
    /// Figure `k` of row `i` at `k * ids.len() + i`.
    figures: Box<[i32]>,
    /// The figures of the rows marked [`WIDE`], in row order.
    wide: Box<[Kpis]>,
}

impl PackedSums {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn column(&self, at: usize) -> &[i32] {
        let len = self.ids.len();
        &self.figures[at * len..(at + 1) * len]
    }

    /// The rows in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Kpis)> + '_ {
        let columns: [&[i32]; FIGURES] = std::array::from_fn(|at| self.column(at));
        let mut wide = self.wide.iter();
        self.ids.iter().enumerate().map(move |(i, id)| {
            let kpis = if columns[0][i] == WIDE {
                *wide.next().expect("every marked row has its figures on the side")
            } else {
                Kpis::from(columns.map(|column| i64::from(column[i])))
            };
            (*id, kpis)
        })
    }

    /// Each row's id and its figure of `metric`, in order: what a board
    /// sums, reading that figure's column only.
    pub fn values(&self, metric: Metric) -> impl Iterator<Item = (u32, i64)> + '_ {
        let at = match metric {
            Metric::Plays => 0,
            Metric::Votes => 1,
            Metric::Attendance => 2,
            Metric::Revenue => 3,
            Metric::Engagement => 5,
        };
        let mut wide = self.wide.iter();
        self.ids.iter().zip(self.column(at)).map(move |(id, value)| {
            let value = if *value == WIDE {
                wide.next()
                    .expect("every marked row has its figures on the side")
                    .metric(metric)
            } else {
                i64::from(*value)
            };
            (*id, value)
        })
    }

    /// The rows' ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter().copied()
    }

    /// The memory it holds, for the caches' budgets.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.ids.len() * std::mem::size_of::<u32>()
            + self.figures.len() * std::mem::size_of::<i32>()
            + self.wide.len() * std::mem::size_of::<Kpis>()
    }
}

/// `kpis` in 32 bits a figure, when every figure fits.
fn narrow(kpis: &Kpis) -> Option<[i32; FIGURES]> {
    let figures: [i64; FIGURES] = (*kpis).into();
    let mut narrowed = [0; FIGURES];
    for (to, from) in narrowed.iter_mut().zip(figures) {
        *to = i32::try_from(from).ok().filter(|n| *n != WIDE)?;
    }
    Some(narrowed)
}

/// Packs rows one at a time, for sums made by a callback.
#[derive(Debug, Default)]
pub struct Packer {
    ids: Vec<u32>,
    columns: [Vec<i32>; FIGURES],
    wide: Vec<Kpis>,
}

impl Packer {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            ids: Vec::with_capacity(rows),
            columns: std::array::from_fn(|_| Vec::with_capacity(rows)),
            wide: Vec::new(),
        }
    }

    pub fn push(&mut self, id: u32, kpis: &Kpis) {
        let figures = narrow(kpis).unwrap_or_else(|| {
            self.wide.push(*kpis);
            [WIDE; FIGURES]
        });
        self.ids.push(id);
        for (column, figure) in self.columns.iter_mut().zip(figures) {
            column.push(figure);
        }
    }

    pub fn finish(self) -> PackedSums {
        let mut figures = Vec::with_capacity(self.ids.len() * FIGURES);
        for column in &self.columns {
            figures.extend_from_slice(column);
        }
        PackedSums {
            ids: self.ids.into_boxed_slice(),
            figures: figures.into_boxed_slice(),
            wide: self.wide.into_boxed_slice(),
        }
    }
}

impl FromIterator<(u32, Kpis)> for PackedSums {
    fn from_iter<I: IntoIterator<Item = (u32, Kpis)>>(rows: I) -> Self {
        let rows = rows.into_iter();
        let mut packer = Packer::with_capacity(rows.size_hint().0);
        for (id, kpis) in rows {
            packer.push(id, &kpis);
        }
        packer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kpis(plays: i64, revenue_minor: i64) -> Kpis {
        Kpis {
            plays,
            votes: 2,
            attendance: -3,
            revenue_minor,
            revenue_entries: 4,
            engagement_tenths: -5,
        }
    }

    #[test]
    fn rows_come_back_whole_and_in_order_whether_they_fit_or_not() {
        let rows = vec![
            (7, kpis(1, 250)),
            (3, kpis(i64::from(i32::MAX) + 1, 10)),
            (9, kpis(i64::from(i32::MAX), i64::from(i32::MIN))),
            (1, kpis(-1, -4_000_000_000_000)),
            (4, kpis(0, 0)),
            (5, kpis(i64::from(i32::MIN), 1)),
        ];
        let packed: PackedSums = rows.iter().copied().collect();
        assert_eq!(packed.len(), 6);
        assert_eq!(packed.iter().collect::<Vec<_>>(), rows);
        assert_eq!(packed.wide.len(), 4, "the figures beyond 32 bits and the marker value");
        assert_eq!(packed.ids().collect::<Vec<_>>(), [7, 3, 9, 1, 4, 5]);
        for metric in Metric::ALL {
            let expected: Vec<(u32, i64)> = rows.iter().map(|(id, k)| (*id, k.metric(metric))).collect();
            assert_eq!(packed.values(metric).collect::<Vec<_>>(), expected, "{metric:?}");
        }
    }

    #[test]
    fn a_row_that_fits_takes_half_the_bytes_of_a_whole_one() {
        let packed: PackedSums = (0..1_000).map(|id| (id, kpis(i64::from(id), 99))).collect();
        let whole = 1_000 * std::mem::size_of::<(u32, Kpis)>();
        assert!(
            packed.bytes() * 2 <= whole + 100,
            "{} bytes against {whole}",
            packed.bytes()
        );
        assert!(PackedSums::default().is_empty());
    }
}
