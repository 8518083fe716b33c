//! Writes a sample report to the path given (a look at the layout while
//! it changes; the server's tests check real reports).
use coliseum_reports::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "sample.pdf".to_owned());
    let rows: Vec<Vec<String>> = (1..=120)
        .map(|i| vec![i.to_string(), format!("Artist number {i}"), format!("{}", 100_000 / i)])
        .collect();
    let report = Report {
        title: "Leaderboard report".into(),
        subject: "Björk & the Ünïcode Ensemble".into(),
        period: "Last 30 days · 2026-11-05 00:00 – 2026-12-05 00:00 UTC".into(),
        filters: vec![("City".into(), "Berlin".into())],
        as_of: "2026-12-05 07:59:58 UTC".into(),
        watermark: 1_234_567,
        generated_at: "2026-12-05 08:00 UTC".into(),
        scoring: "DNA scoring v1: percentiles within the range, 14-day recency half-life.".into(),
        brand: Brand::coliseum(),
        watermark_text: Some("Coliseum Basic".into()),
        share: Some(ShareLink {
            url: "https://coliseum.example/s/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789".into(),
            expiry: "Works until 2026-12-12 08:00 UTC".into(),
        }),
        sections: vec![
            Section::Kpis {
                heading: "Key figures".into(),
                rows: vec![KpiRow {
                    label: "Plays".into(),
                    value: "1,234,567".into(),
                    previous: "1,000,000".into(),
                    change: "+23.5 %".into(),
                }],
            },
            Section::Chart(Chart {
                heading: "Plays per day".into(),
                description: "Plays per day".into(),
                first_label: "Nov 5".into(),
                last_label: "Dec 4".into(),
                max_label: "52,000".into(),
                values: (0..30).map(|i| 30_000.0 + 700.0 * f64::from(i)).collect(),
                previous: (0..30).map(|i| 28_000.0 + 300.0 * f64::from(i)).collect(),
            }),
            Section::Scores {
                heading: "DNA".into(),
                overall: "Overall 71.4".into(),
                bars: vec![ScoreBar {
                    name: "Cultural".into(),
                    score: 71.4,
                    label: "71.4".into(),
                }],
            },
            Section::Table(Table {
                heading: "Plays board".into(),
                columns: vec![
                    Column::number("Rank", 0.12),
                    Column::text("Artist", 0.6),
                    Column::number("Plays", 0.28),
                ],
                rows,
                note: Some("Top 120 shown.".into()),
            }),
        ],
    };
    let started = std::time::Instant::now();
    let bytes = pdf(&report)?;
    eprintln!("{} bytes in {:?}", bytes.len(), started.elapsed());
    std::fs::write(path, bytes)?;
    Ok(())
}
