//! What a page shows, made from the body the API serves for the same read
//! (never computed again here): boards, tiles and the series chart. The
//! page script redraws the same parts from the same bodies when an update
//! arrives, so both follow one shape.

use serde_json::Value;

use super::format::{self, grouped, money, plan_title, points};

/// How a value of a board or a tile reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// Minor units of the base currency.
    Money,
    /// Engagement points (one decimal).
    Points,
    /// A DNA score (0–100).
    Score,
}

impl Unit {
    pub fn of_metric(metric: &str) -> Self {
        match metric {
            "revenue" => Self::Money,
            "engagement" => Self::Points,
            _ => Self::Count,
        }
    }

    pub fn show(self, value: f64) -> String {
        match self {
            Self::Count => grouped(value as i64),
            Self::Money => money(value as i64),
            Self::Points => points(value),
            Self::Score => format::score(value),
        }
    }

    /// The name the page script knows the unit by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Money => "money",
            Self::Points => "points",
            Self::Score => "score",
        }
    }
}

fn text(value: &Value, name: &str) -> String {
    value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn number(value: &Value, name: &str) -> f64 {
    value.get(name).and_then(Value::as_f64).unwrap_or_default()
}

/// What a plan does not show, and which plan does (PLANS.md).
pub struct Locked {
    pub feature: String,
    pub plan: String,
    pub cheapest: String,
    pub visible_ranks: Option<u64>,
}

impl Locked {
    /// From a body's `upgrade_required` marker or an `upgrade-required`
    /// problem: both name the feature, the plan and the cheapest plan.
    pub fn from_json(value: &Value) -> Option<Self> {
        let cheapest = value.get("cheapest_plan")?.as_str()?;
        Some(Self {
            feature: format::feature(&text(value, "feature")),
            plan: plan_title(&text(value, "plan")),
            cheapest: plan_title(cheapest),
            visible_ranks: value.get("visible_ranks").and_then(Value::as_u64),
        })
    }
}

pub struct Row {
    pub rank: u64,
    pub artist_id: String,
    pub name: String,
    pub value: String,
    /// The value as served, for the script to compare with an update's.
    pub raw: f64,
    /// The artist the board was opened around.
    pub mine: bool,
    /// The artist's page.
    pub href: String,
}

/// A board as a page shows it: a page of a KPI or DNA board, or an
/// artist's place and neighbours.
pub struct Board {
    pub heading: String,
    pub unit: Unit,
    /// The value column's header.
    pub value_label: String,
    pub rows: Vec<Row>,
    pub total_ranked: u64,
    pub as_of: String,
    pub watermark: i64,
    pub upgrade: Option<Locked>,
    /// The live topic the board follows (JSON), when it is a first page.
    pub topic: Option<String>,
    /// The next page's URL.
    pub next: Option<String>,
    /// The same board as CSV.
    pub csv: Option<String>,
}

impl Board {
    /// From the body of a KPI board (a page or an around), a DNA board.
    pub fn from_body(heading: String, unit: Unit, value_label: String, body: &Value) -> Self {
        // KPI boards keep their freshness in `head`; DNA boards at the top.
        let head = body.get("head").unwrap_or(body);
        let value_name = if unit == Unit::Score { "score" } else { "value" };
        let around = body.get("artist_id").and_then(Value::as_str);
        let rows = body
            .get("entries")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        let artist_id = text(entry, "artist_id");
                        let raw = number(entry, value_name);
                        Row {
                            rank: entry.get("rank").and_then(Value::as_u64).unwrap_or_default(),
                            name: entry
                                .get("artist_name")
                                .and_then(Value::as_str)
                                .map_or_else(|| artist_id.clone(), str::to_owned),
                            mine: around == Some(artist_id.as_str()),
                            href: crate::web::pages::leaderboards::artist_href(&artist_id),
                            artist_id,
                            value: unit.show(raw),
                            raw,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            heading,
            unit,
            value_label,
            rows,
            total_ranked: head.get("total_ranked").and_then(Value::as_u64).unwrap_or_default(),
            as_of: text(head, "as_of"),
            watermark: head.get("watermark").and_then(Value::as_i64).unwrap_or_default(),
            upgrade: body.get("upgrade_required").and_then(Locked::from_json),
            topic: None,
            next: None,
            csv: None,
        }
    }

    pub fn as_of_text(&self) -> String {
        format::instant(&self.as_of)
    }
}

/// The five KPI tiles' names, in the order shown, with their field in a
/// body's figures.
pub const KPIS: [(&str, &str, &str); 5] = [
    ("plays", "Plays", "plays"),
    ("votes", "Votes", "votes"),
    ("attendance", "Attendance", "attendance"),
    ("revenue", "Revenue", "revenue_minor"),
    ("engagement", "Engagement", "engagement"),
];

pub struct Tile {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub raw: f64,
    /// The change from the previous period, when it is known.
    pub change: Option<String>,
    /// Whether the page compares with a previous period at all.
    pub compared: bool,
    /// `up`, `down` or `flat`.
    pub trend: &'static str,
    pub unit: Unit,
    /// Whether the chart shows this KPI.
    pub charted: bool,
    /// The page with this KPI charted.
    pub href: String,
}

/// The tiles of a KPI body, compared with the previous period's body.
pub fn tiles(body: &Value, previous: Option<&Value>, charted: &str, href: impl Fn(&str) -> String) -> Vec<Tile> {
    let totals = body.get("totals").cloned().unwrap_or_default();
    let before = previous.and_then(|p| p.get("totals"));
    KPIS.iter()
        .map(|&(key, label, field)| {
            let unit = Unit::of_metric(key);
            let raw = number(&totals, field);
            let prior = before.map(|b| number(b, field));
            let change = prior.and_then(|p| format::change(raw, p));
            let trend = match prior {
                Some(p) if raw > p => "up",
                Some(p) if raw < p => "down",
                _ => "flat",
            };
            Tile {
                key,
                label,
                value: unit.show(raw),
                raw,
                change,
                compared: previous.is_some(),
                trend,
                unit,
                charted: key == charted,
                href: href(key),
            }
        })
        .collect()
}

/// Buckets drawn at most: an `all` range by hour is cut to its newest.
const MAX_BUCKETS: i64 = 1_000;
pub const CHART_WIDTH: f64 = 720.0;
pub const CHART_HEIGHT: f64 = 200.0;

/// The series of one KPI as a line, the previous period's as a second line
/// over the same buckets, and the table behind both.
pub struct Chart {
    pub label: String,
    pub unit: Unit,
    /// The field charted in each point of the series.
    pub field: &'static str,
    pub current: Vec<f64>,
    pub previous: Option<Vec<f64>>,
    /// Bucket starts (RFC 3339) and their labels.
    pub starts: Vec<(String, String)>,
    pub step_s: i64,
}

impl Chart {
    pub fn new(body: &Value, previous: Option<&Value>, metric: &str) -> Self {
        let (key, label, field) = KPIS.iter().copied().find(|k| k.0 == metric).unwrap_or(KPIS[0]);
        let step_s = if text(body, "bucket") == "day" { 86_400 } else { 3_600 };
        let range = body.get("range").cloned().unwrap_or_default();
        let (from, n) = buckets(&range, step_s);
        let current = series(body, field, from, step_s, n);
        let previous = previous.map(|p| {
            let (prior_from, _) = buckets(&p.get("range").cloned().unwrap_or_default(), step_s);
            series(p, field, prior_from, step_s, n)
        });
        let starts = (0..n)
            .map(|i| {
                let at = time::OffsetDateTime::from_unix_timestamp(from + i * step_s)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                let rfc = crate::views::reads::rfc3339(at);
                let label = format::instant(&rfc);
                (rfc, label)
            })
            .collect();
        Self {
            label: label.to_owned(),
            unit: Unit::of_metric(key),
            field,
            current,
            previous,
            starts,
            step_s,
        }
    }

    fn max(&self) -> f64 {
        self.current
            .iter()
            .chain(self.previous.iter().flatten())
            .copied()
            .fold(0.0, f64::max)
            .max(1.0)
    }

    fn path(&self, values: &[f64]) -> String {
        path(values, self.max())
    }

    pub fn current_path(&self) -> String {
        self.path(&self.current)
    }

    pub fn previous_path(&self) -> Option<String> {
        self.previous.as_ref().map(|values| self.path(values))
    }

    pub fn max_text(&self) -> String {
        self.unit.show(self.max())
    }

    /// The table behind the chart: bucket, value, previous value.
    pub fn rows(&self) -> Vec<(String, String, String)> {
        self.starts
            .iter()
            .enumerate()
            .map(|(i, (_, label))| {
                let now = self.unit.show(self.current[i]);
                let before = self
                    .previous
                    .as_ref()
                    .map_or_else(String::new, |p| self.unit.show(p[i]));
                (label.clone(), now, before)
            })
            .collect()
    }

    /// The previous period's values, for the script to redraw against.
    pub fn previous_json(&self) -> String {
        serde_json::to_string(&self.previous).unwrap_or_else(|_| "null".to_owned())
    }

    /// One sentence for screen readers.
    pub fn summary(&self) -> String {
        let total: f64 = self.current.iter().sum();
        let peak = self.current.iter().copied().fold(0.0, f64::max);
        format!(
            "{} over {} buckets: {} in all, at most {} in one bucket.",
            self.label,
            self.current.len(),
            self.unit.show(total),
            self.unit.show(peak)
        )
    }
}

/// The first bucket's start and the number of buckets of a range.
fn buckets(range: &Value, step_s: i64) -> (i64, i64) {
    let at = |name: &str| {
        range
            .get(name)
            .and_then(Value::as_str)
            .and_then(format::parse_instant)
            .map_or(0, |t| t.unix_timestamp())
    };
    let (from, to) = (at("from"), at("to"));
    let first = from.div_euclid(step_s) * step_s;
    let n = ((to - first) + step_s - 1).div_euclid(step_s).max(1);
    if n > MAX_BUCKETS {
        (first + (n - MAX_BUCKETS) * step_s, MAX_BUCKETS)
    } else {
        (first, n)
    }
}

/// A series' values by bucket (0 where the body has no point).
fn series(body: &Value, field: &str, from: i64, step_s: i64, n: i64) -> Vec<f64> {
    let mut values = vec![0.0; n as usize];
    for point in body.get("series").and_then(Value::as_array).into_iter().flatten() {
        let Some(t) = point.get("t").and_then(Value::as_str).and_then(format::parse_instant) else {
            continue;
        };
        let i = (t.unix_timestamp() - from).div_euclid(step_s);
        if (0..n).contains(&i) {
            values[i as usize] += number(point, field);
        }
    }
    values
}

/// An SVG path through `values`, scaled to the chart (the script draws
/// updates with the same arithmetic).
fn path(values: &[f64], max: f64) -> String {
    let n = values.len().max(2) - 1;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = i as f64 * CHART_WIDTH / n as f64;
            let y = CHART_HEIGHT - v / max * (CHART_HEIGHT - 10.0);
            format!("{}{x:.1},{y:.1}", if i == 0 { 'M' } else { 'L' })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_series_is_laid_over_every_bucket_of_its_range_with_gaps_as_zero() {
        let body = json!({
            "bucket": "hour",
            "range": {"from": "2026-12-05T10:30:00Z", "to": "2026-12-05T13:30:00Z"},
            "series": [
                {"t": "2026-12-05T10:00:00Z", "plays": 4},
                {"t": "2026-12-05T12:00:00Z", "plays": 9}
            ]
        });
        let previous = json!({
            "bucket": "hour",
            "range": {"from": "2026-12-05T07:30:00Z", "to": "2026-12-05T10:30:00Z"},
            "series": [{"t": "2026-12-05T08:00:00Z", "plays": 2}]
        });
        let chart = Chart::new(&body, Some(&previous), "plays");
        assert_eq!(chart.current, vec![4.0, 0.0, 9.0, 0.0]);
        assert_eq!(chart.previous, Some(vec![0.0, 2.0, 0.0, 0.0]));
        assert_eq!(
            chart.rows()[2],
            ("5 Dec 12:00 UTC".to_owned(), "9".to_owned(), "0".to_owned())
        );
        assert!(chart.current_path().starts_with("M0.0,"));
    }

    #[test]
    fn tiles_compare_with_the_previous_period() {
        let now =
            json!({"totals": {"plays": 150, "votes": 0, "attendance": 3, "revenue_minor": 1999, "engagement": 2.5}});
        let before =
            json!({"totals": {"plays": 100, "votes": 0, "attendance": 4, "revenue_minor": 0, "engagement": 2.5}});
        let tiles = tiles(&now, Some(&before), "plays", |k| format!("?metric={k}"));
        assert_eq!(tiles[0].change.as_deref(), Some("+50.0 %"));
        assert_eq!(tiles[0].trend, "up");
        assert_eq!(tiles[2].trend, "down");
        assert_eq!(tiles[3].value, "19.99");
        assert_eq!(tiles[3].change, None);
        assert!(tiles[0].charted && !tiles[1].charted);
    }
}
