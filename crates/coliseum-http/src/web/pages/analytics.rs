//! Event Analytics: the five KPI tiles over a range, each with its change
//! from the previous period of the same length; the series of one KPI
//! with the previous period drawn under it; scope (the platform, or one of
//! the user's artists or live events), city and genre; the board below.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::leaderboards::{Choice, KPI_RANGES, kpi_board, range_choices, topic_of};
use super::{PageQuery, body_of, locked_or, render, user_or_login};
use coliseum_domain::plans::Feature;
use coliseum_store::NameKind;

use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::kpis::{KpisRequest, PARAMETERS};
use crate::views::shared::Read;
use crate::web::format;
use crate::web::models::{self, Board, Chart, Locked, Tile};
use crate::web::shell::Shell;

pub const PATH: &str = "/app/analytics";

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    shell: Shell,
    /// The "Generate report" form: this scope, range and filters.
    report: Option<super::reports::Generate>,
    scopes: Vec<Choice>,
    ranges: Vec<Choice>,
    buckets: Vec<Choice>,
    range: String,
    from: String,
    to: String,
    city: String,
    genre: String,
    scope: String,
    metric: String,
    bucket: String,
    scope_name: String,
    tiles: Vec<Tile>,
    chart: Chart,
    /// Why the previous period is not shown, when the plan does not reach it.
    previous_locked: Option<Locked>,
    as_of: String,
    as_of_text: String,
    watermark: i64,
    currency: String,
    topic: String,
    csv: String,
    board: Option<Board>,
    board_locked: Option<Locked>,
}

/// The KPI body of the period just before `body`'s range, as long as it,
/// if the caller's plan reaches that far back.
async fn previous_period(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    query: &PageQuery,
    body: &Value,
) -> Result<Option<Result<Value, Locked>>, AppError> {
    let range = &body["range"];
    let (Some(from), Some(to)) = (
        range["from"].as_str().and_then(format::parse_instant),
        range["to"].as_str().and_then(format::parse_instant),
    ) else {
        return Ok(None);
    };
    if range["name"] == "all" || to <= from {
        return Ok(None);
    }
    let mut params = query.params(&["scope", "bucket", "city", "genre"]).into_inner();
    params.insert("range".to_owned(), "custom".to_owned());
    // Custom ranges are whole UTC hours: the period of as many whole hours
    // as the range spans, ending at the hour the range starts in.
    let hours = ((to - from).whole_seconds() + 3_599) / 3_600;
    let prior_to = from.unix_timestamp().div_euclid(3_600) * 3_600;
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).map_err(|e| AppError::Internal(e.to_string()));
    params.insert(
        "from".to_owned(),
        crate::views::reads::rfc3339(at(prior_to - hours * 3_600)?),
    );
    params.insert("to".to_owned(), crate::views::reads::rfc3339(at(prior_to)?));
    params.insert(
        "bucket".to_owned(),
        body["bucket"].as_str().unwrap_or("hour").to_owned(),
    );
    let read = match locked_or(KpisRequest::read(state, caller, &params.into()))? {
        Ok(read) => read,
        Err(locked) => return Ok(Some(Err(locked))),
    };
    Ok(Some(Ok(body_of(state, caller, request, Read::Kpis(read)).await?)))
}

/// `GET /app/analytics`.
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    query: Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    let user = match user_or_login(&caller, &query.href(PATH, &[])) {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let read = KpisRequest::read(&state, &caller, &query.params(PARAMETERS))?;
    // The page makes three reads: the series, the previous period, the board.
    super::charge(&state, &caller, 2).await?;
    let body = body_of(&state, &caller, &request, Read::Kpis(read)).await?;
    let (previous, previous_locked) = match previous_period(&state, &caller, &request, &query, &body).await? {
        Some(Ok(previous)) => (Some(previous), None),
        Some(Err(locked)) => (None, Some(locked)),
        None => (None, None),
    };
    let metric = query
        .get("metric")
        .filter(|m| models::KPIS.iter().any(|k| k.0 == *m))
        .unwrap_or("plays")
        .to_owned();
    let tiles = models::tiles(&body, previous.as_ref(), &metric, |key| {
        query.href(PATH, &[("metric", key)])
    });
    let chart = Chart::new(&body, previous.as_ref(), &metric);

    let scope = query.get("scope").unwrap_or("platform").to_owned();
    let scopes = {
        let names = state.names.read();
        let mut scopes = vec![("platform".to_owned(), "Platform".to_owned())];
        for artist in &user.artists {
            let name = names.name(NameKind::Artist, artist).unwrap_or_else(|| artist.clone());
            scopes.push((format!("artist:{artist}"), format!("Artist · {name}")));
        }
        for event in &user.live_events {
            let name = names.name(NameKind::LiveEvent, event).unwrap_or_else(|| event.clone());
            scopes.push((format!("live_event:{event}"), format!("Live event · {name}")));
        }
        scopes
    };

    let topic = topic_of(json!({"kind": "kpis"}), &query, PARAMETERS);
    // The board under the tiles ranks the artists of the same range and
    // filters (a live event's scope is its filter), by the KPI charted
    // when the plan has that board.
    let charted = coliseum_domain::kpi::Metric::parse(&metric).unwrap_or(coliseum_domain::kpi::Metric::Plays);
    let board_metric = if caller.may(Feature::KpiLeaderboard(charted)).is_ok() {
        metric.clone()
    } else {
        "plays".to_owned()
    };
    let mut fields: HashMap<String, String> = ["range", "from", "to", "city", "genre"]
        .iter()
        .filter_map(|name| query.get(name).map(|value| ((*name).to_owned(), value.to_owned())))
        .collect();
    if let Some(event) = scope.strip_prefix("live_event:") {
        fields.insert("live_event_id".to_owned(), event.to_owned());
    }
    fields.insert("board".to_owned(), board_metric.clone());
    let board_params = PageQuery::from(fields);
    let (board, board_locked) = match kpi_board(&state, &caller, &request, &board_metric, &board_params, 10).await? {
        Ok(mut board) => {
            board.next = Some(board_params.href(super::leaderboards::PATH, &[]));
            board.csv = Some(board_params.href(&format!("{}.csv", super::leaderboards::PATH), &[]));
            (Some(board), None)
        }
        Err(locked) => (None, Some(locked)),
    };

    let range = body["range"]["name"].as_str().unwrap_or("24h").to_owned();
    let bucket = body["bucket"].as_str().unwrap_or("hour").to_owned();
    let as_of = body["as_of"].as_str().unwrap_or_default().to_owned();
    let report = caller.may(Feature::Reports).is_ok().then(|| {
        use crate::reports::document::Template;
        let dates = ["range", "from", "to"].map(|n| (n, query.get(n)));
        match (scope.strip_prefix("artist:"), scope.strip_prefix("live_event:")) {
            (Some(artist), _) => super::reports::Generate::new(
                Template::Artist,
                &[&[("artist_id", Some(artist))][..], &dates[..]].concat(),
            ),
            (_, Some(event)) => super::reports::Generate::new(
                Template::LiveEvent,
                &[&[("live_event_id", Some(event))][..], &dates[..]].concat(),
            ),
            _ => super::reports::Generate::new(
                Template::Platform,
                &[
                    &dates[..],
                    &[("city", query.get("city")), ("genre", query.get("genre"))][..],
                ]
                .concat(),
            ),
        }
    });
    let page = AnalyticsPage {
        shell: Shell::of(&caller, "analytics", "Event Analytics"),
        report,
        scopes: scopes
            .into_iter()
            .map(|(value, label)| Choice {
                href: query.href(PATH, &[("scope", &value)]),
                current: value == scope,
                label,
            })
            .collect(),
        ranges: range_choices(&state, &query, PATH, &KPI_RANGES, &range),
        buckets: [("hour", "Hourly"), ("day", "Daily")]
            .iter()
            .map(|(b, label)| Choice {
                label: (*label).to_owned(),
                href: query.href(PATH, &[("bucket", b)]),
                current: *b == bucket,
            })
            .collect(),
        from: query.get("from").unwrap_or_default().to_owned(),
        to: query.get("to").unwrap_or_default().to_owned(),
        city: query.get("city").unwrap_or_default().to_owned(),
        genre: query.get("genre").unwrap_or_default().to_owned(),
        scope_name: body["scope_name"].as_str().unwrap_or("Platform").to_owned(),
        scope,
        metric,
        bucket,
        range,
        tiles,
        chart,
        previous_locked,
        as_of_text: format::instant(&as_of),
        as_of,
        watermark: body["watermark"].as_i64().unwrap_or_default(),
        currency: body["currency"].as_str().unwrap_or("USD").to_owned(),
        topic,
        csv: query.href(&format!("{PATH}.csv"), &[("metric", "")]),
        board,
        board_locked,
    };
    render(&page)
}
