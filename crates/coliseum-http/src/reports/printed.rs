//! A report document worded for print: figures in full with thousands
//! separated (API.md), instants as people read them, the change against
//! the previous period, and the plan's watermark and branding. Every
//! figure comes from the document; nothing is computed again here.

use coliseum_reports::{Brand, Chart, Column, KpiRow, Report, ScoreBar, Section, ShareLink, Table};

use super::document::{ReportDocument, dna_board_name};
use crate::views::boards::{Amount, BoardEntry};
use crate::views::dna::ScoringConfigBody;
use crate::views::kpis::{Figures, KpisBody};
use crate::web::format::{self, grouped, money, points};

/// How a report is dressed: by whom, with which words across its pages,
/// and the link it is shared at.
#[derive(Debug, Clone)]
pub struct Dress {
    pub brand: Brand,
    pub watermark_text: Option<String>,
    pub share: Option<ShareLink>,
}

/// The five KPIs: label, the figure of a `Figures`, and how it reads.
const KPIS: [(&str, &str); 5] = [
    ("plays", "Plays"),
    ("votes", "Votes"),
    ("attendance", "Attendance"),
    ("revenue", "Revenue"),
    ("engagement", "Engagement (points)"),
];

fn figure(figures: &Figures, key: &str) -> f64 {
    match key {
        "plays" => figures.plays as f64,
        "votes" => figures.votes as f64,
        "attendance" => figures.attendance as f64,
        "revenue" => figures.revenue_minor as f64,
        _ => figures.engagement,
    }
}

fn show(key: &str, value: f64, currency: &str) -> String {
    match key {
        "revenue" => format!("{} {currency}", money(value as i64)),
        "engagement" => points(value),
        _ => grouped(value as i64),
    }
}

fn instant(text: &str) -> String {
    match format::parse_instant(text) {
        Some(at) => {
            let at = at.to_offset(time::UtcOffset::UTC);
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute()
            )
        }
        None => text.to_owned(),
    }
}

fn range_words(name: &str) -> &'static str {
    match name {
        "1h" => "This hour",
        "24h" => "Last 24 hours",
        "7d" => "Last 7 days",
        "30d" => "Last 30 days",
        "all" => "All time",
        _ => "Custom range",
    }
}

fn scoring_words(config: Option<&ScoringConfigBody>) -> String {
    let Some(config) = config else {
        return "Key figures follow PASSPORT.md's KPI definitions; revenue in the base currency's minor units."
            .to_owned();
    };
    let tiers: Vec<String> = config
        .tier_tenths
        .iter()
        .map(|t| format!("{}", *t as f64 / 10.0))
        .collect();
    format!(
        "DNA scoring (SCORING.md): tier weights {} (passive to patron); recency decay {} a day to a floor of {}; \
         touring needs {} fans; scores are percentiles within the range.",
        tiers.join(" · "),
        config.decay_per_day_hundredths as f64 / 100.0,
        config.decay_floor_hundredths as f64 / 100.0,
        config.touring_min_fans,
    )
}

fn kpi_rows(now: &KpisBody, before: Option<&KpisBody>) -> Vec<KpiRow> {
    KPIS.iter()
        .map(|&(key, label)| {
            let value = figure(&now.totals, key);
            let (previous, change) = match before {
                Some(before) => {
                    let prior = figure(&before.totals, key);
                    (
                        show(key, prior, &before.currency),
                        format::change(value, prior)
                            .unwrap_or_else(|| if value > 0.0 { "new" } else { "–" }.to_owned()),
                    )
                }
                None => ("–".to_owned(), "–".to_owned()),
            };
            KpiRow {
                label: label.to_owned(),
                value: show(key, value, &now.currency),
                previous,
                change,
            }
        })
        .collect()
}

/// Plays per bucket across the range (buckets without entries are zero),
/// the previous period aligned bucket by bucket.
fn plays_chart(now: &KpisBody, before: Option<&KpisBody>) -> Option<Chart> {
    let step = if now.bucket == "hour" { 3_600 } else { 86_400 };
    let series = |body: &KpisBody| -> Option<Vec<f64>> {
        let from = format::parse_instant(&body.range.from)?
            .unix_timestamp()
            .div_euclid(step)
            * step;
        let to = format::parse_instant(&body.range.to)?.unix_timestamp();
        let buckets = ((to - from + step - 1) / step).clamp(1, 2_000) as usize;
        let mut values = vec![0.0; buckets];
        for point in &body.series {
            let Some(t) = format::parse_instant(&point.t) else {
                continue;
            };
            let index = (t.unix_timestamp() - from).div_euclid(step);
            if let Some(slot) = usize::try_from(index).ok().and_then(|i| values.get_mut(i)) {
                *slot = point.figures.plays as f64;
            }
        }
        Some(values)
    };
    let values = series(now)?;
    if values.len() < 2 {
        return None;
    }
    let previous = before.and_then(series).unwrap_or_default();
    let max = values.iter().chain(&previous).copied().fold(0.0, f64::max);
    let total: f64 = values.iter().sum();
    Some(Chart {
        heading: format!("Plays per {}", now.bucket),
        description: format!(
            "Line chart of plays per {} from {} to {}: {} in all, at most {} in one {}.",
            now.bucket,
            instant(&now.range.from),
            instant(&now.range.to),
            grouped(total as i64),
            grouped(max as i64),
            now.bucket
        ),
        first_label: instant(&now.range.from),
        last_label: instant(&now.range.to),
        max_label: grouped(max as i64),
        values,
        previous,
    })
}

fn board_value(entry: &BoardEntry, metric: &str, currency: &str) -> String {
    match entry.value {
        Amount::Whole(value) if metric == "revenue" => format!("{} {currency}", money(value)),
        Amount::Whole(value) => grouped(value),
        Amount::Points(value) => points(value),
    }
}

fn board_rows(entries: &[BoardEntry], metric: &str, currency: &str) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            vec![
                grouped(e.rank as i64),
                e.artist_name.clone().unwrap_or_else(|| e.artist_id.clone()),
                board_value(e, metric, currency),
            ]
        })
        .collect()
}

fn board_columns(value: &str) -> Vec<Column> {
    vec![
        Column::number("Rank", 0.12),
        Column::text("Artist", 0.6),
        Column::number(value, 0.28),
    ]
}

fn upgrade_note(marker: Option<&crate::views::UpgradeRequired>) -> Option<String> {
    marker.map(|m| {
        format!(
            "Your plan shows the top {} ranks; {} shows more.",
            grouped(m.visible_ranks as i64),
            format::plan_title(m.cheapest_plan)
        )
    })
}

pub fn printed(document: &ReportDocument, dress: Dress) -> Report {
    let currency = document.kpis.as_ref().map_or("USD", |k| k.currency.as_str()).to_owned();
    let mut sections = Vec::new();
    if let Some(kpis) = &document.kpis {
        sections.push(Section::Kpis {
            heading: "Key figures".to_owned(),
            rows: kpi_rows(kpis, document.previous_kpis.as_ref()),
        });
        if let Some(chart) = plays_chart(kpis, document.previous_kpis.as_ref()) {
            sections.push(Section::Chart(chart));
        }
    }
    if let Some(explanation) = &document.explanation {
        let bars = ["a", "t", "g", "c"]
            .iter()
            .filter_map(|letter| explanation.domains.get(letter))
            .map(|domain| ScoreBar {
                name: title(domain.name),
                score: domain.score,
                label: format::score(domain.score),
            })
            .collect();
        sections.push(Section::Scores {
            heading: format!("DNA, {}", range_words(explanation.range).to_lowercase()),
            overall: format!(
                "Overall {} among {} artists scored",
                format::score(explanation.overall.score),
                grouped(explanation.population as i64)
            ),
            bars,
        });
        let mut rows = Vec::new();
        for letter in ["a", "t", "g", "c"] {
            let Some(domain) = explanation.domains.get(letter) else {
                continue;
            };
            for (name, component) in &domain.components {
                rows.push(vec![
                    title(domain.name),
                    name.replace('_', " "),
                    points(component.raw),
                    format!("{:.0}", component.percentile),
                ]);
            }
        }
        sections.push(Section::Table(Table {
            heading: "Why this rank".to_owned(),
            columns: vec![
                Column::text("Domain", 0.2),
                Column::text("Component", 0.4),
                Column::number("Raw value", 0.2),
                Column::number("Percentile", 0.2),
            ],
            rows,
            note: Some(
                "Each component's percentile among the artists scored in the range; a domain's score is the \
                 mean of its components' percentiles."
                    .to_owned(),
            ),
        }));
        let tiers = &explanation.entries_by_tier;
        sections.push(Section::Table(Table {
            heading: "Entries by weight tier".to_owned(),
            columns: vec![Column::text("Tier", 0.5), Column::number("Entries", 0.5)],
            rows: [
                ("Passive", tiers.passive),
                ("Light", tiers.light),
                ("Active", tiers.active),
                ("Committed", tiers.committed),
                ("Patron", tiers.patron),
            ]
            .iter()
            .map(|(tier, count)| vec![(*tier).to_owned(), grouped(*count)])
            .collect(),
            note: None,
        }));
    }
    if let Some(around) = &document.around {
        sections.push(Section::Table(Table {
            heading: format!("Place on the plays board: rank {}", grouped(around.rank as i64)),
            columns: board_columns("Plays"),
            rows: board_rows(&around.entries, "plays", &currency),
            note: upgrade_note(around.upgrade_required.as_ref()),
        }));
    }
    if let Some(board) = &document.board {
        let metric = board.head.metric;
        sections.push(Section::Table(Table {
            heading: format!(
                "{} leaderboard: {} artists ranked",
                title(metric),
                grouped(board.head.total_ranked as i64)
            ),
            columns: board_columns(&title(metric)),
            rows: board_rows(&board.entries, metric, &currency),
            note: upgrade_note(board.upgrade_required.as_ref()),
        }));
    }
    if let Some(board) = &document.dna_board {
        sections.push(Section::Table(Table {
            heading: format!(
                "DNA {} board: {} artists scored",
                dna_board_name(board.domain),
                grouped(board.total_ranked as i64)
            ),
            columns: board_columns("Score"),
            rows: board
                .entries
                .iter()
                .map(|e| {
                    vec![
                        grouped(e.rank as i64),
                        e.artist_name.clone().unwrap_or_else(|| e.artist_id.clone()),
                        format::score(e.score),
                    ]
                })
                .collect(),
            note: upgrade_note(board.upgrade_required.as_ref()),
        }));
    }
    if !document.notes.is_empty() {
        sections.push(Section::Text {
            heading: Some("Not in this report".to_owned()),
            text: document.notes.join(" "),
        });
    }
    let mut filters = Vec::new();
    for (key, label) in [("city", "City"), ("genre", "Genre"), ("live_event_name", "Live event")] {
        if let Some(value) = document.filters.get(key).and_then(serde_json::Value::as_str) {
            filters.push((label.to_owned(), value.to_owned()));
        }
    }
    Report {
        title: document.template.title().to_owned(),
        subject: document.subject.name.clone(),
        period: format!(
            "{} · {} – {}",
            range_words(document.range.name),
            instant(&document.range.from),
            instant(&document.range.to)
        ),
        filters,
        as_of: instant(&document.as_of),
        watermark: document.watermark,
        generated_at: instant(&document.generated_at),
        scoring: scoring_words(document.scoring.as_ref()),
        brand: dress.brand,
        watermark_text: dress.watermark_text,
        share: dress.share,
        sections,
    }
}

fn title(metric: &str) -> String {
    let mut chars = metric.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
