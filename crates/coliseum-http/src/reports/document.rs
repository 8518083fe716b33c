//! What a report says, gathered from the same views the API serves: each
//! section is the body of a REST read made with the report's parameters,
//! as the caller may make it, so a report's figures are the API's for the
//! same query and watermark. The JSON format is this document; the PDF
//! prints it.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::RequestId;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::RangeBody;
use crate::views::boards::{self, AroundBody, AroundRequest, BoardPage, PageRequest};
use crate::views::dna::{self, DnaBoardBody, DnaBoardRequest, ExplanationBody, ExplanationRequest, ScoringConfigBody};
use crate::views::kpis::{self, KpisBody, KpisRequest};

/// The version of the report document's shape; a change that could break a
/// reader makes a new one.
pub const SCHEMA_VERSION: u32 = 1;

/// Ranks of a leaderboard report at most (about 26 PDF pages).
pub const MAX_BOARD_ROWS: u32 = 1_000;
const DEFAULT_BOARD_ROWS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    Artist,
    LiveEvent,
    Leaderboard,
    Platform,
}

impl Template {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "artist" => Some(Self::Artist),
            "live_event" => Some(Self::LiveEvent),
            "leaderboard" => Some(Self::Leaderboard),
            "platform" => Some(Self::Platform),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Artist => "artist",
            Self::LiveEvent => "live_event",
            Self::Leaderboard => "leaderboard",
            Self::Platform => "platform",
        }
    }

    /// The parameters the template takes (API.md, "Reports and sharing").
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::Artist => &["artist_id", "range", "from", "to"],
            Self::LiveEvent => &["live_event_id", "range", "from", "to"],
            Self::Leaderboard => &[
                "metric",
                "domain",
                "range",
                "from",
                "to",
                "city",
                "genre",
                "live_event_id",
                "limit",
            ],
            Self::Platform => &["range", "from", "to", "city", "genre"],
        }
    }

    /// How the cover names the report.
    pub fn title(self) -> &'static str {
        match self {
            Self::Artist => "Artist report",
            Self::LiveEvent => "Live event report",
            Self::Leaderboard => "Leaderboard report",
            Self::Platform => "Platform report",
        }
    }
}

/// What the report is about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectBody {
    /// `artist`, `live_event`, `leaderboard` or `platform`.
    pub kind: &'static str,
    /// The artist's or live event's id, the board's metric or DNA board.
    #[schema(required = true)]
    pub id: Option<String>,
    /// The display name (the id while none is known).
    pub name: String,
}

/// A report: the bodies of the reads it is made of, each exactly as the
/// REST read serves it (`kpis` as `GET /v1/kpis`, `board` as `GET
/// /v1/leaderboards/{metric}` with its pages joined, and so on). A section
/// the caller may not read is `null`, and `notes` says why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportDocument {
    /// 1: this shape.
    pub schema_version: u32,
    pub id: String,
    pub template: Template,
    /// The parameters the report was asked with.
    #[schema(value_type = Object)]
    pub params: Value,
    pub generated_at: String,
    /// The data's freshness, from the report's main read.
    pub as_of: String,
    pub watermark: i64,
    pub subject: SubjectBody,
    pub range: RangeBody,
    /// The filters in force (city, genre, live event), as the reads state them.
    #[schema(value_type = Object)]
    pub filters: Value,
    /// The plan the report was made for (its depth, freshness and watermark).
    pub plan: &'static str,
    /// The report's share link, when it has one.
    #[schema(required = true)]
    pub share_url: Option<String>,
    /// "Coliseum Basic" on a Basic plan's reports (PLANS.md), else `null`.
    #[schema(required = true)]
    pub watermark_text: Option<String>,
    #[schema(required = true)]
    pub kpis: Option<KpisBody>,
    /// The KPIs of the period of the same length just before.
    #[schema(required = true)]
    pub previous_kpis: Option<KpisBody>,
    #[schema(required = true)]
    pub explanation: Option<ExplanationBody>,
    /// The artist's place on the plays board.
    #[schema(required = true)]
    pub around: Option<AroundBody>,
    #[schema(required = true)]
    pub board: Option<BoardPage>,
    #[schema(required = true)]
    pub dna_board: Option<DnaBoardBody>,
    /// The DNA scoring configuration the DNA figures follow.
    #[schema(required = true)]
    pub scoring: Option<ScoringConfigBody>,
    /// What is not in the report, and why.
    pub notes: Vec<String>,
}

/// A report as asked: the template and its parameters, checked.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub template: Template,
    /// As given, for the record.
    pub params_json: Value,
    params: HashMap<String, String>,
}

impl ReportRequest {
    /// `params` is a JSON object of strings and numbers; errors point into
    /// the request body.
    pub fn parse(template: &str, params: &Value) -> Result<Self, AppError> {
        let template = Template::parse(template).ok_or_else(|| {
            AppError::field(
                "/template",
                "must be one of artist, live_event, leaderboard, platform".to_owned(),
            )
        })?;
        let object = params
            .as_object()
            .ok_or_else(|| AppError::field("/params", "must be an object"))?;
        let mut map = HashMap::new();
        for (key, value) in object {
            if !template.parameters().contains(&key.as_str()) {
                return Err(AppError::field(
                    &format!("/params/{key}"),
                    format!(
                        "is not a parameter of the {} template (known: {})",
                        template.as_str(),
                        template.parameters().join(", ")
                    ),
                ));
            }
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => {
                    return Err(AppError::field(
                        &format!("/params/{key}"),
                        "must be a string or a number".to_owned(),
                    ));
                }
            };
            map.insert(key.clone(), text);
        }
        let required = match template {
            Template::Artist => Some("artist_id"),
            Template::LiveEvent => Some("live_event_id"),
            _ => None,
        };
        if let Some(name) = required
            && map.get(name).is_none_or(|v| v.trim().is_empty())
        {
            return Err(AppError::field(&format!("/params/{name}"), "is required"));
        }
        if template == Template::Leaderboard && map.contains_key("metric") == map.contains_key("domain") {
            return Err(AppError::field(
                "/params",
                "needs exactly one of `metric` (a KPI board) and `domain` (a DNA board)".to_owned(),
            ));
        }
        Ok(Self {
            template,
            params_json: params.clone(),
            params: map,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The given parameters among `names`, with `extra` added.
    fn read_params(&self, names: &[&str], extra: &[(&str, &str)]) -> Params {
        let mut map: HashMap<String, String> = names
            .iter()
            .filter_map(|name| self.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect();
        for (key, value) in extra {
            map.insert((*key).to_owned(), (*value).to_owned());
        }
        map.into()
    }
}

/// A parameter error of a read, pointed into the report's `params`.
fn in_params(error: AppError) -> AppError {
    match error {
        AppError::InvalidParameter { parameter, detail } => AppError::field(&format!("/params/{parameter}"), detail),
        other => other,
    }
}

/// The sections a report gathers, before its id and link are known.
struct Gathered {
    kpis: Option<KpisBody>,
    previous_kpis: Option<KpisBody>,
    explanation: Option<ExplanationBody>,
    around: Option<AroundBody>,
    board: Option<BoardPage>,
    dna_board: Option<DnaBoardBody>,
    notes: Vec<String>,
}

impl Gathered {
    fn empty() -> Self {
        Self {
            kpis: None,
            previous_kpis: None,
            explanation: None,
            around: None,
            board: None,
            dna_board: None,
            notes: Vec::new(),
        }
    }
}

/// A refusal a report states and goes on without: the plan or the
/// account does not include one section. Anything else stops the report.
fn note_or(notes: &mut Vec<String>, what: &str, error: AppError) -> Result<(), AppError> {
    match error {
        AppError::UpgradeRequired(upgrade) => {
            notes.push(format!("{what}: {upgrade}"));
            Ok(())
        }
        AppError::Forbidden(why) => {
            notes.push(format!("{what}: {why}"));
            Ok(())
        }
        AppError::NotFound(why) => {
            notes.push(format!("{what}: {why}"));
            Ok(())
        }
        other => Err(other),
    }
}

/// Gathers the report `request` asks for, as `caller` may read it.
pub async fn gather(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    request: &ReportRequest,
    id: &str,
    share_url: Option<String>,
) -> Result<ReportDocument, AppError> {
    let audience = caller.audience();
    let mut gathered = Gathered::empty();
    let (subject, first_refusal) = match request.template {
        Template::Artist => {
            let artist = request.get("artist_id").unwrap_or_default().to_owned();
            let scope = format!("artist:{artist}");
            let refusal = kpis_with_previous(state, caller, request_id, request, &scope, &[], &mut gathered).await?;
            // DNA scores are kept for 7 days, 30 days and all time.
            let dna_range = request
                .get("range")
                .filter(|range| matches!(*range, "7d" | "all"))
                .unwrap_or("30d");
            let explanation_params: Params = HashMap::from([("range".to_owned(), dna_range.to_owned())]).into();
            match ExplanationRequest::read(caller, &artist, &explanation_params) {
                Ok(read) => match dna::explanation(state, audience, &read).await {
                    Ok(body) => gathered.explanation = Some(body),
                    Err(error) => note_or(&mut gathered.notes, "DNA", error)?,
                },
                Err(error) => note_or(&mut gathered.notes, "DNA", in_params(error))?,
            }
            let around_params = request.read_params(&["range", "from", "to"], &[("n", "5")]);
            match AroundRequest::read(state, caller, "plays", &artist, &around_params) {
                Ok(read) => match boards::around(state, audience, &read).await {
                    Ok(body) => gathered.around = Some(body),
                    Err(error) => note_or(&mut gathered.notes, "Place on the plays board", error)?,
                },
                Err(error) => note_or(&mut gathered.notes, "Place on the plays board", in_params(error))?,
            }
            let name = state
                .names
                .name(coliseum_store::NameKind::Artist, &artist)
                .unwrap_or_else(|| artist.clone());
            let subject = SubjectBody {
                kind: "artist",
                id: Some(artist),
                name,
            };
            (subject, refusal)
        }
        Template::LiveEvent => {
            let live_event = request.get("live_event_id").unwrap_or_default().to_owned();
            let scope = format!("live_event:{live_event}");
            let refusal = kpis_with_previous(state, caller, request_id, request, &scope, &[], &mut gathered).await?;
            let board_params = request.read_params(&["range", "from", "to"], &[("live_event_id", &live_event)]);
            board_pages(state, caller, "plays", &board_params, 25, Required::No, &mut gathered).await?;
            let name = state
                .names
                .name(coliseum_store::NameKind::LiveEvent, &live_event)
                .unwrap_or_else(|| live_event.clone());
            let subject = SubjectBody {
                kind: "live_event",
                id: Some(live_event),
                name,
            };
            (subject, refusal)
        }
        Template::Platform => {
            let refusal = kpis_with_previous(
                state,
                caller,
                request_id,
                request,
                "platform",
                &["city", "genre"],
                &mut gathered,
            )
            .await?;
            let board_params = request.read_params(&["range", "from", "to", "city", "genre"], &[]);
            board_pages(state, caller, "plays", &board_params, 10, Required::No, &mut gathered).await?;
            let subject = SubjectBody {
                kind: "platform",
                id: None,
                name: "The platform".to_owned(),
            };
            (subject, refusal)
        }
        Template::Leaderboard => {
            let rows = match request.get("limit") {
                None => DEFAULT_BOARD_ROWS,
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_BOARD_ROWS).contains(n))
                    .ok_or_else(|| {
                        AppError::field(
                            "/params/limit",
                            format!("must be a whole number from 1 to {MAX_BOARD_ROWS}"),
                        )
                    })?,
            };
            if let Some(metric) = request.get("metric") {
                let params = request.read_params(&["range", "from", "to", "city", "genre", "live_event_id"], &[]);
                // The board is the report: a refusal of it is the answer.
                board_pages(state, caller, metric, &params, rows, Required::Yes, &mut gathered).await?;
                let subject = SubjectBody {
                    kind: "leaderboard",
                    id: Some(metric.to_owned()),
                    name: format!("{} leaderboard", title_case(metric)),
                };
                (subject, None)
            } else {
                let domain = request.get("domain").unwrap_or("overall");
                let body = dna_board_pages(caller, state, domain, request, rows).await?;
                let subject = SubjectBody {
                    kind: "leaderboard",
                    id: Some(domain.to_owned()),
                    name: format!("DNA {} board", dna_board_name(domain)),
                };
                gathered.dna_board = Some(body);
                (subject, None)
            }
        }
    };
    let nothing = gathered.kpis.is_none()
        && gathered.explanation.is_none()
        && gathered.around.is_none()
        && gathered.board.is_none()
        && gathered.dna_board.is_none();
    if nothing {
        return Err(first_refusal.unwrap_or_else(|| AppError::NotFound(gathered.notes.join("; "))));
    }
    let (as_of, watermark, range, filters) = freshness_of(&gathered, state)?;
    let scoring = gathered
        .explanation
        .as_ref()
        .map(|e| e.config.clone())
        .or_else(|| gathered.dna_board.as_ref().map(|b| b.config.clone()));
    Ok(ReportDocument {
        schema_version: SCHEMA_VERSION,
        id: id.to_owned(),
        template: request.template,
        params: request.params_json.clone(),
        generated_at: crate::views::rfc3339(state.clock.now()),
        as_of,
        watermark,
        subject,
        range,
        filters,
        plan: audience.plan.as_str(),
        share_url,
        watermark_text: None,
        kpis: gathered.kpis,
        previous_kpis: gathered.previous_kpis,
        explanation: gathered.explanation,
        around: gathered.around,
        board: gathered.board,
        dna_board: gathered.dna_board,
        scoring,
        notes: gathered.notes,
    })
}

fn title_case(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn dna_board_name(domain: &str) -> &'static str {
    match domain {
        "a" => "Cultural",
        "t" => "Behavioral",
        "g" => "Economic",
        "c" => "Spatial",
        _ => "Overall",
    }
}

/// The main read's freshness, range and filters.
fn freshness_of(gathered: &Gathered, state: &AppState) -> Result<(String, i64, RangeBody, Value), AppError> {
    if let Some(kpis) = &gathered.kpis {
        return Ok((
            kpis.as_of.clone(),
            kpis.watermark,
            kpis.range.clone(),
            json_of(&kpis.filters)?,
        ));
    }
    if let Some(board) = &gathered.board {
        return Ok((
            board.head.as_of.clone(),
            board.head.watermark,
            board.head.range.clone(),
            json_of(&board.head.filters)?,
        ));
    }
    if let Some(around) = &gathered.around {
        return Ok((
            around.head.as_of.clone(),
            around.head.watermark,
            around.head.range.clone(),
            json_of(&around.head.filters)?,
        ));
    }
    let (as_of, watermark, range_name, filters) = if let Some(board) = &gathered.dna_board {
        (
            board.as_of.clone(),
            board.watermark,
            board.range,
            json_of(&board.filters)?,
        )
    } else if let Some(explanation) = &gathered.explanation {
        (
            explanation.as_of.clone(),
            explanation.watermark,
            explanation.range,
            serde_json::json!({}),
        )
    } else {
        return Err(AppError::Internal("a report with no section".to_owned()));
    };
    // DNA ranges end at the data's as_of and span their days (`all`: from the start).
    let to = crate::web::format::parse_instant(&as_of).unwrap_or_else(|| state.clock.now());
    let from = match range_name {
        "7d" => to - time::Duration::days(7),
        "30d" => to - time::Duration::days(30),
        _ => time::OffsetDateTime::UNIX_EPOCH,
    };
    use coliseum_domain::range::Range;
    let range = match range_name {
        "7d" => Range::Week,
        "30d" => Range::Month,
        _ => Range::All,
    };
    Ok((as_of, watermark, RangeBody::new(range, from, to), filters))
}

fn json_of(value: &impl Serialize) -> Result<Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(format!("a body did not serialize: {e}")))
}

/// The scope's KPIs and those of the period just before; the refusal of
/// the KPIs, when refused (the report may still have other sections).
async fn kpis_with_previous(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    request: &ReportRequest,
    scope: &str,
    filters: &[&str],
    gathered: &mut Gathered,
) -> Result<Option<AppError>, AppError> {
    let names: Vec<&str> = ["range", "from", "to"].iter().chain(filters).copied().collect();
    let params = request.read_params(&names, &[("scope", scope)]);
    let read = match KpisRequest::read(state, caller, &params) {
        Ok(read) => read,
        Err(error @ (AppError::Forbidden(_) | AppError::UpgradeRequired(_))) => {
            gathered.notes.push(format!("Key figures: {error}"));
            return Ok(Some(error));
        }
        Err(error) => return Err(in_params(error)),
    };
    kpis::audit_tenant_read(state, caller, request_id, &read).await?;
    let body = kpis::kpis(state, caller.audience(), &read).await?;
    gathered.previous_kpis = previous_period(state, caller, &body, &names, request, scope).await?;
    if gathered.previous_kpis.is_none() && body.range.name != "all" {
        gathered
            .notes
            .push("Previous period: not within the custom ranges of your plan".to_owned());
    }
    gathered.kpis = Some(body);
    Ok(None)
}

/// The KPIs of the whole hours just before `body`'s range, as many as it
/// spans (as the dashboard compares them); `None` for `all`, or when the
/// plan's custom ranges do not reach that far back.
async fn previous_period(
    state: &AppState,
    caller: &Caller,
    body: &KpisBody,
    names: &[&str],
    request: &ReportRequest,
    scope: &str,
) -> Result<Option<KpisBody>, AppError> {
    let parse = crate::web::format::parse_instant;
    let (Some(from), Some(to)) = (parse(&body.range.from), parse(&body.range.to)) else {
        return Ok(None);
    };
    if body.range.name == "all" || to <= from {
        return Ok(None);
    }
    let hours = ((to - from).whole_seconds() + 3_599) / 3_600;
    let prior_to = from.unix_timestamp().div_euclid(3_600) * 3_600;
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).map_err(|e| AppError::Internal(e.to_string()));
    let (prior_from, prior_to) = (
        crate::views::rfc3339(at(prior_to - hours * 3_600)?),
        crate::views::rfc3339(at(prior_to)?),
    );
    let kept: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !matches!(*n, "range" | "from" | "to"))
        .collect();
    let params = request.read_params(
        &kept,
        &[
            ("scope", scope),
            ("range", "custom"),
            ("from", &prior_from),
            ("to", &prior_to),
            ("bucket", body.bucket),
        ],
    );
    match KpisRequest::read(state, caller, &params) {
        Ok(read) => Ok(Some(kpis::kpis(state, caller.audience(), &read).await?)),
        Err(AppError::UpgradeRequired(_) | AppError::Forbidden(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Whether a section is the report (its refusal is the answer) or one of
/// its parts (a refusal is noted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Required {
    Yes,
    No,
}

/// Up to `rows` ranks of a KPI board, its pages joined.
async fn board_pages(
    state: &AppState,
    caller: &Caller,
    metric: &str,
    params: &Params,
    rows: u32,
    required: Required,
    gathered: &mut Gathered,
) -> Result<(), AppError> {
    let mut joined: Option<BoardPage> = None;
    let mut cursor: Option<String> = None;
    loop {
        let have = joined.as_ref().map_or(0, |b| b.entries.len()) as u32;
        let mut page_params = params.clone().into_inner();
        page_params.insert("limit".to_owned(), (rows - have).min(100).to_string());
        if let Some(cursor) = &cursor {
            page_params.insert("cursor".to_owned(), cursor.clone());
        }
        let read = match PageRequest::read(state, caller, metric, &page_params.into()) {
            Ok(read) => read,
            Err(error) if required == Required::Yes => return Err(in_params(error)),
            Err(error) => return note_or(&mut gathered.notes, "Leaderboard", in_params(error)),
        };
        let page = boards::page(state, caller.audience(), &read).await?;
        cursor = page.next_cursor.clone();
        match &mut joined {
            None => joined = Some(page),
            Some(board) => {
                board.entries.extend(page.entries);
                board.next_cursor = page.next_cursor;
                board.upgrade_required = page.upgrade_required;
            }
        }
        let have = joined.as_ref().map_or(0, |b| b.entries.len()) as u32;
        if cursor.is_none() || have >= rows {
            break;
        }
    }
    gathered.board = joined;
    Ok(())
}

/// Up to `rows` ranks of a DNA board, its pages joined.
async fn dna_board_pages(
    caller: &Caller,
    state: &AppState,
    domain: &str,
    request: &ReportRequest,
    rows: u32,
) -> Result<DnaBoardBody, AppError> {
    let mut joined: Option<DnaBoardBody> = None;
    let mut cursor: Option<String> = None;
    loop {
        let have = joined.as_ref().map_or(0, |b| b.entries.len()) as u32;
        let limit = (rows - have).min(100).to_string();
        let mut extra = vec![("limit", limit.as_str())];
        if let Some(cursor) = &cursor {
            extra.push(("cursor", cursor.as_str()));
        }
        let params = request.read_params(&["range", "genre"], &extra);
        let read = DnaBoardRequest::read(caller, domain, &params).map_err(in_params)?;
        let page = dna::board(state, caller.audience(), &read).await?;
        cursor = page.next_cursor.clone();
        match &mut joined {
            None => joined = Some(page),
            Some(board) => {
                board.entries.extend(page.entries);
                board.next_cursor = page.next_cursor;
                board.upgrade_required = page.upgrade_required;
            }
        }
        let have = joined.as_ref().map_or(0, |b| b.entries.len()) as u32;
        if cursor.is_none() || have >= rows {
            break;
        }
    }
    joined.ok_or_else(|| AppError::Internal("a DNA board without a page".to_owned()))
}
