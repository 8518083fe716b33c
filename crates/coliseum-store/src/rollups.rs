//! The derived side of the store: KPI rollup cells, per-fan-per-day
//! aggregates, the processor's cursor and pause flag, and dead letters.
//! Everything here can be dropped and rebuilt from the log.

use coliseum_domain::kpi::Kpis;
use time::OffsetDateTime;

use crate::StoreError;

/// The width of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub const SECONDS_PER_HOUR: i64 = 3600;
    pub const SECONDS_PER_DAY: i64 = 86_400;

    pub fn seconds(self) -> i64 {
        match self {
            Grain::Hour => Self::SECONDS_PER_HOUR,
            Grain::Day => Self::SECONDS_PER_DAY,
        }
    }

    /// The bucket holding `at`: whole hours or days since the Unix epoch (UTC).
    pub fn bucket_of(self, at: OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.seconds())
    }

    /// The instant a bucket starts.
    pub fn start_of(self, bucket: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(bucket.saturating_mul(self.seconds())).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The code both stores keep in their `grain` column.
    pub fn code(self) -> i16 {
        match self {
            Grain::Hour => 0,
            Grain::Day => 1,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            0 => Some(Grain::Hour),
            1 => Some(Grain::Day),
            _ => None,
        }
    }
}

/// One cell of the KPI rollups: a bucket and the full combination of an
/// entry's dimensions, each `""` where the entry has none (an entry without
/// an artist counts in platform figures only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CellKey {
    pub grain: Grain,
    pub bucket: i64,
    pub artist: String,
    pub city: String,
    pub genre: String,
    pub live_event: String,
}

/// One fan's entries for one artist on one UTC day, in one city and genre:
/// what the DNA scores are computed from, so that scoring never reads the log.
/// `fan` is `""` for entries without a user (they still weigh for the artist).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FanDayKey {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub artist: String,
    pub fan: String,
    pub city: String,
    pub genre: String,
}

/// Entry counts of a fan-day: by weight tier (0.1, 1, 10, 100, 1000), and of
/// influence entries (shares, reposts, comments, mentions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FanDay {
    pub by_tier: [i64; 5],
    pub influence: i64,
}

impl FanDay {
    pub fn add(&mut self, other: &FanDay) {
        for (mine, theirs) in self.by_tier.iter_mut().zip(other.by_tier) {
            *mine += theirs;
        }
        self.influence += other.influence;
    }
}

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DeadLetterState {
    /// Failed; tried again at `next_attempt_at`.
    Retrying,
    /// Out of attempts: waits for an operator's replay.
    Dead,
    /// Processed at last; counted once.
    Replayed,
}

impl DeadLetterState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterState::Retrying => "retrying",
            DeadLetterState::Dead => "dead",
            DeadLetterState::Replayed => "replayed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Retrying, Self::Dead, Self::Replayed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An entry of the log that could not be processed, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub seq: i64,
    pub event_id: String,
    pub reason: String,
    pub attempts: i32,
    pub state: DeadLetterState,
    pub first_failed_at: OffsetDateTime,
    pub last_failed_at: OffsetDateTime,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// The processor's position and whether an operator paused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipelineState {
    /// Every entry up to this `seq` is reflected in the rollups (or is a dead letter).
    pub processed_seq: i64,
    /// Batches applied so far: the number of the last ([`Rollups::apply_batch`](crate::Rollups::apply_batch)).
    pub batches: i64,
    pub paused: bool,
    /// The sum of the absolute revenue (base minor units) of every entry
    /// counted: the processor's `RevenueCeiling` starts from it.
    pub revenue_gross: i64,
}

/// Moves the processor's cursor from `$2` to `$1` and adds `$3` to the
/// absolute revenue counted, in the transaction of a batch; the same
/// statement on both backends.
/// Numbers the batch (the count of batches applied, returned).
pub const MOVE_CURSOR: &str = "UPDATE pipeline_state SET processed_seq = $1, revenue_gross = revenue_gross + $3, \
                               batches = batches + 1 WHERE id = 1 AND processed_seq = $2 RETURNING batches";

/// The first bucket of grain `$1` holding any cell (`NULL` while none
/// does); the same statement on both backends.
pub const FIRST_BUCKET: &str = "SELECT min(bucket) FROM kpi_cells WHERE grain = $1";

/// What [`MOVE_CURSOR`] returned: the batch's number, or `Conflict` when
/// the cursor was not at `from` (another processor moved it).
pub fn cursor_moved(number: Option<i64>, from: i64) -> Result<i64, StoreError> {
    number.ok_or_else(|| StoreError::Conflict(format!("the processor's cursor is no longer at {from}")))
}

/// A batch as applied, for the nodes that follow the processor: its number
/// (one more than the batch before), what it changed, and how far the
/// figures were complete once it was applied.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AppliedBatch {
    pub number: i64,
    pub as_of: OffsetDateTime,
    pub batch: ProcessedBatch,
}

/// What a display name names (PASSPORT.md): an artist or a live event by
/// its id, a city or a genre by its normalized key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum NameKind {
    Artist,
    LiveEvent,
    City,
    Genre,
}

impl NameKind {
    pub const ALL: [Self; 4] = [Self::Artist, Self::LiveEvent, Self::City, Self::Genre];

    /// How the stores keep it.
    pub fn code(self) -> i16 {
        match self {
            Self::Artist => 0,
            Self::LiveEvent => 1,
            Self::City => 2,
            Self::Genre => 3,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// A display name as an entry of the log gave it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DisplayName {
    pub kind: NameKind,
    /// The artist's or live event's id; the city's or genre's key.
    pub id: String,
    pub name: String,
    /// The entry's timestamp.
    pub at: OffsetDateTime,
    /// The entry's place in the log.
    pub seq: i64,
}

impl DisplayName {
    /// Whether this name takes the place of `current` (PASSPORT.md): an
    /// artist's or live event's newest name by timestamp wins (ties: the
    /// higher `seq`), so a late old entry cannot rename it back; a city's
    /// or genre's first spelling in the log stays.
    pub fn replaces(&self, current: &DisplayName) -> bool {
        match self.kind {
            NameKind::Artist | NameKind::LiveEvent => (self.at, self.seq) > (current.at, current.seq),
            NameKind::City | NameKind::Genre => self.seq < current.seq,
        }
    }
}

/// The conflict clause of a display name's upsert: [`DisplayName::replaces`]
/// in SQL, the same on both backends (`at_us`: microseconds since the epoch).
pub const DISPLAY_NAME_CONFLICT: &str = " ON CONFLICT (kind, id) DO UPDATE SET \
     name = excluded.name, at_us = excluded.at_us, seq = excluded.seq \
     WHERE (display_names.kind IN (0, 1) AND (excluded.at_us > display_names.at_us \
     OR (excluded.at_us = display_names.at_us AND excluded.seq > display_names.seq))) \
     OR (display_names.kind IN (2, 3) AND excluded.seq < display_names.seq)";

/// Defines `upsert_display_names(tx, names)` in a backend, for its
/// database type: the statement and its binding are the same on both, so
/// they are written once (`sqlx` and `classify` are the backend's own).
/// Each kind and id may appear once in `names`, as PostgreSQL requires of
/// one upsert.
#[macro_export]
macro_rules! upsert_display_names_for {
    ($database:ty) => {
        /// Keeps each display name where it replaces the stored one
        /// (`DisplayName::replaces`, in SQL).
        async fn upsert_display_names(
            tx: &mut sqlx::Transaction<'_, $database>,
            names: &[$crate::DisplayName],
        ) -> Result<(), $crate::StoreError> {
            for chunk in names.chunks(1000) {
                let mut upsert = sqlx::QueryBuilder::<$database>::new($crate::rows::INSERT_DISPLAY_NAMES);
                upsert.push_values(chunk, |mut row, name| {
                    row.push_bind(name.kind.code())
                        .push_bind(&name.id)
                        .push_bind(&name.name)
                        .push_bind($crate::rows::name_micros(name.at))
                        .push_bind(name.seq);
                });
                upsert.push($crate::DISPLAY_NAME_CONFLICT);
                upsert.build().execute(&mut **tx).await.map_err(classify)?;
            }
            Ok(())
        }
    };
}

/// What one step of the processor changes, applied in one transaction with
/// the cursor's move from `from_seq` to `to_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessedBatch {
    pub from_seq: i64,
    pub to_seq: i64,
    /// Added to the cells (created where missing).
    pub cells: Vec<(CellKey, Kpis)>,
    /// Added to the fan-days (created where missing).
    pub fan_days: Vec<(FanDayKey, FanDay)>,
    /// Written as given, replacing the row with the same `seq`.
    pub dead_letters: Vec<DeadLetter>,
    /// The absolute revenue of the entries counted in this batch, added
    /// to [`PipelineState::revenue_gross`] with the cursor's move.
    pub revenue_gross: i64,
    /// The display names the batch's entries gave, at most one per kind and
    /// id: kept where they replace the stored one ([`DisplayName::replaces`]).
    pub names: Vec<DisplayName>,
}

/// A change of an artist's DNA domain score of at least the configured
/// points against the last recorded value (SCORING.md, "Mutations").
#[derive(Debug, Clone, PartialEq)]
pub struct DnaMutation {
    pub artist: String,
    /// `a`, `t`, `g` or `c`.
    pub domain: String,
    /// `7d`, `30d` or `all`.
    pub range: String,
    pub old: f64,
    pub new: f64,
    pub at: OffsetDateTime,
}

/// One part of the rows [`crate::Rollups::load_derived`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivedPart {
    Cells(Vec<(CellKey, Kpis)>),
    FanDays(Vec<(FanDayKey, FanDay)>),
    DeadLetters(Vec<DeadLetter>),
    /// At most one per kind and id.
    Names(Vec<DisplayName>),
    /// Everything was sent: commit.
    End,
}

impl ProcessedBatch {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.fan_days.is_empty() && self.dead_letters.is_empty() && self.names.is_empty()
    }
}

/// What a SQL sum of cells is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumsBy {
    Artist,
    Bucket,
}

/// Buckets one artist's per-bucket sums seek one by one at most: 26
/// months of hours, the hot retention and a margin. A custom range can be
/// far longer than any data; past this it is scanned.
pub const MAX_SEEKED_BUCKETS: i64 = 26 * 31 * 24;

/// Which cells a SQL read sums: each given dimension must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CellFilter {
    pub artist: Option<String>,
    pub city: Option<String>,
    pub genre: Option<String>,
    pub live_event: Option<String>,
}

impl CellFilter {
    /// The `WHERE` terms after `grain = $1 AND bucket >= $2 AND bucket < $3`
    /// for the dimensions given, numbered from `$4`, and the values to bind
    /// in that order. Only the given dimensions appear (an `$n IS NULL OR …`
    /// term could not use an index), and a live event also names the
    /// condition of its partial index.
    fn sql_terms(&self) -> (String, Vec<&str>) {
        let mut terms = String::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("artist", &self.artist),
            ("city", &self.city),
            ("genre", &self.genre),
            ("live_event", &self.live_event),
        ] {
            if let Some(value) = value {
                values.push(value.as_str());
                terms.push_str(&format!(" AND {column} = ${}", values.len() + 3));
            }
        }
        if self.live_event.is_some() {
            terms.push_str(" AND live_event <> ''");
        }
        (terms, values)
    }

    /// The statement summing the cells of one grain with `$2 <= bucket < $3`
    /// (grain `$1`) that match this filter, grouped `by` artist or bucket,
    /// and the values to bind after those three. `sums` is the backend's
    /// select list of the six sums and `table` how it names `kpi_cells`.
    /// `span` is the number of buckets in the range.
    pub fn sum_statement(&self, by: SumsBy, span: i64, sums: &str, table: &str) -> (String, Vec<&str>) {
        let (terms, values) = self.sql_terms();
        let range = "WHERE grain = $1 AND bucket >= $2 AND bucket < $3";
        let sql = match by {
            // One artist's series: the primary key leads with (grain,
            // bucket, artist), and a bucket range followed by an artist
            // would read every artist's cells of the range (a month of
            // hours: every cell of the month). Naming each bucket instead
            // makes it one seek per bucket, to that artist's cells only.
            // The buckets named are those between the range's first and
            // last cell of any artist (two seeks): `all` reaches back two
            // years, and most of those buckets may hold nothing.
            SumsBy::Bucket if self.seeks_by_bucket(span) => format!(
                "WITH RECURSIVE edges(first_bucket, last_bucket) AS (SELECT \
                 (SELECT min(bucket) FROM kpi_cells WHERE grain = $1 AND bucket >= $2 AND bucket < $3), \
                 (SELECT max(bucket) FROM kpi_cells WHERE grain = $1 AND bucket >= $2 AND bucket < $3)), \
                 wanted(bucket) AS (SELECT first_bucket FROM edges WHERE first_bucket IS NOT NULL \
                 UNION ALL SELECT wanted.bucket + 1 FROM wanted CROSS JOIN edges WHERE wanted.bucket < edges.last_bucket) \
                 SELECT cells.bucket, {sums} FROM wanted CROSS JOIN kpi_cells AS cells \
                 WHERE cells.grain = $1 AND cells.bucket = wanted.bucket{terms} \
                 GROUP BY cells.bucket ORDER BY cells.bucket"
            ),
            SumsBy::Artist => {
                format!("SELECT artist, {sums} FROM {table} {range} AND artist <> ''{terms} GROUP BY artist")
            }
            SumsBy::Bucket => {
                format!("SELECT bucket, {sums} FROM {table} {range}{terms} GROUP BY bucket ORDER BY bucket")
            }
        };
        (sql, values)
    }

    /// The index a read with this filter should take, when one fits better
    /// than the primary key's bucket range: a live event's cells are a small
    /// share of any range. (SQLite's planner, without statistics, takes the
    /// primary key's range instead.)
    pub fn index(&self) -> Option<&'static str> {
        self.live_event.is_some().then_some("kpi_cells_by_live_event")
    }

    /// Whether a per-bucket sum of this filter over `span` buckets seeks
    /// one artist's cells bucket by bucket (see [`Self::sum_statement`]):
    /// few cells whatever the range's length, as a live event's through its
    /// index. Past [`MAX_SEEKED_BUCKETS`] it scans the range instead, which
    /// costs what the range holds, not how long it is.
    pub fn seeks_by_bucket(&self, span: i64) -> bool {
        self.artist.is_some() && self.live_event.is_none() && span <= MAX_SEEKED_BUCKETS
    }
}
