//! An artist's page: its KPIs over 30 days (for the accounts that may see
//! them), its place on the plays board, its four DNA domains with the
//! overall score and "why this rank" laid out component by component, and
//! this week's movers.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::leaderboards::around;
use super::{PageQuery, body_of, locked_or, render, user_or_login};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::dna::{ExplanationRequest, MoversRequest};
use crate::views::kpis::KpisRequest;
use crate::views::shared::Read;
use crate::web::format;
use crate::web::models::{self, Board, Chart, Locked, Tile, Unit};
use crate::web::shell::Shell;

pub struct Component {
    pub name: String,
    pub raw: String,
    pub percentile: String,
}

pub struct Domain {
    pub name: String,
    pub score: String,
    pub score_value: f64,
    pub components: Vec<Component>,
}

pub struct Explanation {
    pub overall: String,
    pub range: String,
    pub population: u64,
    pub genre: Option<String>,
    pub domains: Vec<Domain>,
    pub tiers: Vec<(String, String)>,
    pub as_of_text: String,
}

pub struct Mover {
    pub artist_id: String,
    pub name: String,
    pub from: String,
    pub to: String,
    pub gain: String,
}

#[derive(Template)]
#[template(path = "artist.html")]
struct ArtistPage {
    shell: Shell,
    /// The "Generate report" form: this artist over 30 days.
    report: Option<super::reports::Generate>,
    artist_id: String,
    name: String,
    tiles: Vec<Tile>,
    chart: Option<Chart>,
    /// Why the KPIs are not shown: another account's artist.
    kpis_note: Option<String>,
    kpis_locked: Option<Locked>,
    topic: String,
    explanation: Option<Explanation>,
    explanation_locked: Option<Locked>,
    board: Option<Board>,
    movers: Vec<Mover>,
    movers_domain: String,
}

fn explanation_of(body: &Value) -> Explanation {
    let mut domains = Vec::new();
    if let Some(map) = body["domains"].as_object() {
        for letter in ["a", "t", "g", "c"] {
            let Some(domain) = map.get(letter) else { continue };
            let components = domain["components"]
                .as_object()
                .map(|components| {
                    components
                        .iter()
                        .map(|(name, c)| Component {
                            name: name.replace('_', " "),
                            raw: c["raw"].as_f64().map_or_else(String::new, format::points),
                            percentile: format!("{:.0}", c["percentile"].as_f64().unwrap_or_default()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let score = domain["score"].as_f64().unwrap_or_default();
            domains.push(Domain {
                name: domain["name"].as_str().unwrap_or(letter).to_owned(),
                score: format::score(score),
                score_value: score.clamp(0.0, 100.0),
                components,
            });
        }
    }
    let tiers = body["entries_by_tier"]
        .as_object()
        .map(|tiers| {
            ["passive", "light", "active", "committed", "patron"]
                .iter()
                .map(|t| {
                    (
                        format::plan_title(t),
                        format::grouped(tiers.get(*t).and_then(Value::as_i64).unwrap_or_default()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Explanation {
        overall: format::score(body["overall"]["score"].as_f64().unwrap_or_default()),
        range: body["range"].as_str().unwrap_or("30d").to_owned(),
        population: body["population"].as_u64().unwrap_or_default(),
        genre: body["primary_genre"].as_str().map(str::to_owned),
        domains,
        tiers,
        as_of_text: format::instant(body["as_of"].as_str().unwrap_or_default()),
    }
}

/// `GET /app/artists/{artist_id}`.
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(artist_id): Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    let back = format!("/app/artists/{}", super::leaderboards::urlencoded(&artist_id));
    if let Err(redirect) = user_or_login(&caller, &back) {
        return Ok(redirect.into_response());
    }
    let name = state
        .names
        .name(coliseum_store::NameKind::Artist, &artist_id)
        .unwrap_or_else(|| artist_id.clone());
    let scope = format!("artist:{artist_id}");
    // The page makes four reads: KPIs, explanation, place on the board, movers.
    super::charge(&state, &caller, 3).await?;

    let kpi_params = HashMap::from([
        ("scope".to_owned(), scope.clone()),
        ("range".to_owned(), "30d".to_owned()),
        ("bucket".to_owned(), "day".to_owned()),
    ]);
    let (mut tiles, mut chart, mut kpis_note, mut kpis_locked) = (Vec::new(), None, None, None);
    match KpisRequest::read(&state, &caller, &kpi_params.clone().into()) {
        Ok(read) => {
            let body = body_of(&state, &caller, &request, Read::Kpis(read)).await?;
            let metric = query.get("metric").unwrap_or("plays");
            tiles = models::tiles(&body, None, metric, |key| format!("{back}?metric={key}"));
            chart = Some(Chart::new(&body, None, metric));
        }
        Err(AppError::UpgradeRequired(upgrade)) => {
            kpis_locked = locked_or::<()>(Err(AppError::UpgradeRequired(upgrade)))?.err();
        }
        Err(AppError::Forbidden(why)) => kpis_note = Some(why),
        Err(other) => return Err(other),
    }
    let topic = serde_json::json!({"kind": "kpis", "scope": scope, "range": "30d", "bucket": "day"}).to_string();

    let range = query.get("range").unwrap_or("30d");
    let explanation_params = HashMap::from([("range".to_owned(), range.to_owned())]);
    let (explanation, explanation_locked) = match locked_or(ExplanationRequest::read(
        &caller,
        &artist_id,
        &explanation_params.into(),
    ))? {
        Ok(read) => match body_of(&state, &caller, &request, Read::Explanation(read)).await {
            Ok(body) => (Some(explanation_of(&body)), None),
            // Not scored in the range yet: the page says so.
            Err(AppError::NotFound(_)) => (None, None),
            Err(other) => return Err(other),
        },
        Err(locked) => (None, Some(locked)),
    };

    let board = match around(&state, &caller, &request, "plays", &artist_id, &PageQuery::default()).await {
        Ok(Ok(board)) => Some(board),
        Ok(Err(_)) | Err(AppError::NotFound(_)) => None,
        Err(other) => return Err(other),
    };

    let movers_params = HashMap::from([
        ("domain".to_owned(), "a".to_owned()),
        ("limit".to_owned(), "5".to_owned()),
    ]);
    let movers = match MoversRequest::read(&caller, &movers_params.into()) {
        Ok(read) => match body_of(&state, &caller, &request, Read::Movers(read)).await {
            Ok(body) => body["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let id = m["artist_id"].as_str().unwrap_or_default().to_owned();
                    Mover {
                        name: m["artist_name"].as_str().map_or_else(|| id.clone(), str::to_owned),
                        artist_id: id,
                        from: Unit::Score.show(m["from"].as_f64().unwrap_or_default()),
                        to: Unit::Score.show(m["to"].as_f64().unwrap_or_default()),
                        gain: format!("{:+.1}", m["gain"].as_f64().unwrap_or_default()),
                    }
                })
                .collect(),
            Err(AppError::NotFound(_)) => Vec::new(),
            Err(other) => return Err(other),
        },
        Err(_) => Vec::new(),
    };

    let report = caller.may(coliseum_domain::plans::Feature::Reports).is_ok().then(|| {
        super::reports::Generate::new(
            crate::reports::document::Template::Artist,
            &[("artist_id", Some(artist_id.as_str())), ("range", Some("30d"))],
        )
    });
    render(&ArtistPage {
        shell: Shell::of(&caller, "leaderboards", &name),
        report,
        artist_id,
        name,
        tiles,
        chart,
        kpis_note,
        kpis_locked,
        topic,
        explanation,
        explanation_locked,
        board,
        movers,
        movers_domain: "Cultural".to_owned(),
    })
}
