//! How figures read on a page: grouped thousands, money in its currency,
//! instants in UTC, changes in percent. The API serves numbers; people read
//! these.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `public` → `Public`.
pub fn plan_title(plan: &str) -> String {
    let mut chars = plan.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A feature as a problem document names it (PLANS.md), as a person reads
/// it on an upgrade banner.
pub fn feature(name: &str) -> String {
    if let Some(letter) = name.strip_prefix("dna_domain_") {
        let domain = coliseum_domain::scoring::DnaDomain::ALL
            .iter()
            .find(|d| d.letter() == letter)
            .map_or_else(|| letter.to_owned(), |d| plan_title(d.name()));
        return format!("the {domain} DNA domain");
    }
    if let Some(metric) = name.strip_prefix("kpi_leaderboard_") {
        return format!("the {metric} leaderboard");
    }
    match name {
        "dna_explanation" => "\"why this rank\" explanations".to_owned(),
        "filters" => "city, genre and live-event filters".to_owned(),
        "custom_ranges" => "custom ranges this far back".to_owned(),
        "live_push" => "live updates".to_owned(),
        "api_keys" => "API keys".to_owned(),
        "reports" => "reports".to_owned(),
        "leaderboard_depth" => "more ranks".to_owned(),
        other => other.replace('_', " "),
    }
}

/// `1234567` → `1,234,567`.
pub fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Minor units of a currency with two decimals (`123456` → `1,234.56`).
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02}", grouped((minor / 100) as i64), minor % 100)
}

/// Points with one decimal (`1234.5` → `1,234.5`).
pub fn points(value: f64) -> String {
    let tenths = (value * 10.0).round() as i64;
    let sign = if tenths < 0 { "-" } else { "" };
    let tenths = tenths.unsigned_abs();
    format!("{sign}{}.{}", grouped((tenths / 10) as i64), tenths % 10)
}

/// A score (0–100) with one decimal.
pub fn score(value: f64) -> String {
    format!("{value:.1}")
}

/// The change from `before` to `now` in percent (`+12.5 %`); `None` when
/// there was nothing before to compare with.
pub fn change(now: f64, before: f64) -> Option<String> {
    if before == 0.0 {
        return None;
    }
    let percent = (now - before) / before * 100.0;
    Some(format!("{}{percent:.1} %", if percent >= 0.0 { "+" } else { "" }))
}

pub fn parse_instant(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// An RFC 3339 instant as a person reads it: `5 Dec 12:05 UTC`.
pub fn instant(text: &str) -> String {
    let Some(at) = parse_instant(text) else {
        return text.to_owned();
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {} {:02}:{:02} UTC",
        at.day(),
        &format!("{}", at.month())[..3],
        at.hour(),
        at.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(-1234567), "-1,234,567");
        assert_eq!(money(123456), "1,234.56");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(points(1234.5), "1,234.5");
        assert_eq!(change(150.0, 100.0).as_deref(), Some("+50.0 %"));
        assert_eq!(change(50.0, 100.0).as_deref(), Some("-50.0 %"));
        assert_eq!(change(5.0, 0.0), None);
        assert_eq!(instant("2026-12-05T12:05:00Z"), "5 Dec 12:05 UTC");
        assert_eq!(plan_title("enterprise"), "Enterprise");
        assert_eq!(feature("dna_domain_g"), "the Economic DNA domain");
        assert_eq!(feature("kpi_leaderboard_revenue"), "the revenue leaderboard");
        assert_eq!(feature("something_new"), "something new");
    }
}
