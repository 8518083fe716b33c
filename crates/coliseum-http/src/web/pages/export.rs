//! CSV of what is on screen: a board (every page of it the plan shows) or
//! a KPI series, exactly as filtered, made from the same bodies as the API
//! serves, so a download equals the API's figures.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::leaderboards::BoardName;
use super::{PageQuery, body_of, user_or_login};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::params::MAX_LIMIT;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::boards::{BOARD_PARAMETERS, PageRequest};
use crate::views::dna::DnaBoardRequest;
use crate::views::kpis::{KpisRequest, PARAMETERS};
use crate::views::shared::Read;

/// Rows of one download at most: a board deeper than this (Enterprise sees
/// every rank) is cut, and the file says so in its last line.
const MAX_ROWS: usize = 10_000;

/// A CSV field: quoted when it must be, and never read as a formula by a
/// spreadsheet (names come from the event log, which anyone can write to).
fn field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// A part of a download's file name: letters, digits, `-` and `_` only
/// (a scope or range is the caller's text; in a header it could add
/// parameters).
fn file_name_part(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
        .take(80)
        .collect()
}

fn number(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn csv(name: &str, text: String) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// `GET /app/leaderboards.csv`: every rank of the board the plan shows.
pub async fn board(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    query: Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    if let Err(redirect) = user_or_login(&caller, &query.href("/app/leaderboards", &[])) {
        return Ok(redirect.into_response());
    }
    let name = query.get("board").unwrap_or("plays").to_owned();
    let board = BoardName::parse(&name)?;
    let mut out = String::new();
    let mut rows = 0;
    let mut cursor: Option<String> = None;
    let value_name = match board {
        BoardName::Kpi(metric) => metric,
        BoardName::Dna(_) => "score",
    };
    let _ = writeln!(out, "rank,artist_id,artist_name,{value_name},as_of,watermark");
    loop {
        let mut params = match board {
            BoardName::Kpi(_) => query.params(BOARD_PARAMETERS).into_inner(),
            BoardName::Dna(_) => query.params(&["range", "genre"]).into_inner(),
        };
        params.insert("limit".to_owned(), MAX_LIMIT.to_string());
        if let Some(cursor) = &cursor {
            params.insert("cursor".to_owned(), cursor.clone());
        }
        let read = match board {
            BoardName::Kpi(metric) => Read::Board(PageRequest::read(&state, &caller, metric, &params.into())?),
            BoardName::Dna(domain) => Read::DnaBoard(DnaBoardRequest::read(&caller, domain, &params.into())?),
        };
        let body = body_of(&state, &caller, &request, read).await?;
        let head = body.get("head").unwrap_or(&body);
        let (as_of, watermark) = (head["as_of"].as_str().unwrap_or_default(), number(&head["watermark"]));
        let value_field = if matches!(board, BoardName::Dna(_)) {
            "score"
        } else {
            "value"
        };
        for entry in body["entries"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                number(&entry["rank"]),
                field(entry["artist_id"].as_str().unwrap_or_default()),
                field(entry["artist_name"].as_str().unwrap_or_default()),
                number(&entry[value_field]),
                as_of,
                watermark
            );
            rows += 1;
        }
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        // Each further page is a read the API would have counted.
        super::charge(&state, &caller, 1).await?;
        if rows >= MAX_ROWS {
            let _ = writeln!(out, "# cut at {MAX_ROWS} rows; the API pages through the rest");
            break;
        }
    }
    let range = file_name_part(query.get("range").unwrap_or("default"));
    Ok(csv(&format!("coliseum-{name}-{range}.csv"), out))
}

/// `GET /app/analytics.csv`: the KPI series (and totals) of the page.
pub async fn kpis(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    query: Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    if let Err(redirect) = user_or_login(&caller, &query.href("/app/analytics", &[])) {
        return Ok(redirect.into_response());
    }
    let read = KpisRequest::read(&state, &caller, &query.params(PARAMETERS))?;
    let body = body_of(&state, &caller, &request, Read::Kpis(read)).await?;
    let fields = ["plays", "votes", "attendance", "revenue_minor", "engagement"];
    let mut out = format!("t,{},as_of,watermark\n", fields.join(","));
    let (as_of, watermark) = (body["as_of"].as_str().unwrap_or_default(), number(&body["watermark"]));
    for point in body["series"].as_array().into_iter().flatten() {
        let values: Vec<String> = fields.iter().map(|f| number(&point[*f])).collect();
        let _ = writeln!(
            out,
            "{},{},{as_of},{watermark}",
            point["t"].as_str().unwrap_or_default(),
            values.join(",")
        );
    }
    let scope = file_name_part(body["scope"].as_str().unwrap_or("platform"));
    let range = file_name_part(body["range"]["name"].as_str().unwrap_or("range"));
    Ok(csv(&format!("coliseum-kpis-{scope}-{range}.csv"), out))
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_never_formulas() {
        assert_eq!(field("Tems"), "Tems");
        assert_eq!(field("Earth, Wind & Fire"), "\"Earth, Wind & Fire\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-2"), "'-2");
    }
}
