//! The published DNA scores (SCORING.md): a board of one domain or of the
//! overall score, one artist's "why this rank" explanation, and the movers
//! (the recorded mutations), within the caller's plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use coliseum_domain::plans::Feature;
use coliseum_domain::scoring::{COMPONENTS, DnaBoard, DnaDomain, ScoreRange, ScoringConfig, reported};
use coliseum_engine::dna::{MOVERS_WINDOW, Publication, RangeScores, movers};
use coliseum_engine::served::boundary;
use coliseum_store::NameKind;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::UpgradeRequired;
use super::reads::{decode_cursor, encode_cursor, rfc3339, visible_page};
use crate::app::AppState;
use crate::openapi::names::{DnaDomainName, ScoreRangeName};
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};

/// The query parameters of a DNA board, as documented.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DnaBoardParams {
    /// `30d` when absent.
    range: Option<ScoreRangeName>,
    /// Only artists whose primary genre this is.
    genre: Option<String>,
    /// The scores as of this past instant (RFC 3339) instead of the newest.
    as_of: Option<String>,
    /// Entries per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The query parameters of an explanation.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExplanationParams {
    /// `30d` when absent.
    range: Option<ScoreRangeName>,
    /// The scores as of this past instant (RFC 3339) instead of the newest.
    as_of: Option<String>,
}

/// The query parameters of the movers.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MoversParams {
    domain: DnaDomainName,
    /// `30d` when absent.
    range: Option<ScoreRangeName>,
    /// Entries, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

pub const BOARD_PARAMETERS: &[&str] = &["range", "genre", "as_of", "limit", "cursor"];
pub const EXPLANATION_PARAMETERS: &[&str] = &["range", "as_of"];
pub const MOVERS_PARAMETERS: &[&str] = &["domain", "range", "limit"];

fn read_score_range(params: &Params) -> Result<ScoreRange, AppError> {
    let raw = params.get("range").unwrap_or("30d");
    ScoreRange::parse(raw).ok_or_else(|| AppError::parameter("range", "must be 7d, 30d or all"))
}

/// A past instant asked for with `as_of`.
fn read_as_of(params: &Params) -> Result<Option<OffsetDateTime>, AppError> {
    params
        .get("as_of")
        .map(|raw| {
            OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|_| AppError::parameter("as_of", "must be an RFC 3339 instant"))
        })
        .transpose()
}

/// A domain board needs its domain in the plan; the overall board is open to every plan.
fn check_board(caller: &Caller, board: DnaBoard) -> Result<(), AppError> {
    match board {
        DnaBoard::Overall => Ok(()),
        DnaBoard::Domain(domain) => caller.may(Feature::DnaDomain(domain)),
    }
}

/// The publication to read: the one the audience's plan is served (live,
/// or frozen at its freshness boundary), or one computed for `as_of`, which
/// may not be newer than that.
async fn publication(
    state: &AppState,
    audience: Audience,
    as_of: Option<OffsetDateTime>,
    range: ScoreRange,
) -> Result<Arc<Publication>, AppError> {
    let Some(as_of) = as_of else {
        return Ok(state.served.publication(audience.freshness_s()));
    };
    let now = state.clock.now();
    if as_of > now {
        return Err(AppError::parameter("as_of", "must not be in the future"));
    }
    let freshness = audience.freshness_s();
    if freshness > 0 && as_of.unix_timestamp() > boundary(now, freshness) {
        return Err(AppError::parameter(
            "as_of",
            format!("must not be after the last {freshness}-second boundary: the newest state this plan is served"),
        ));
    }
    // Scores for an instant are computed from whole days of the
    // aggregates as they are now: for the day of the boundary they
    // would hold what arrived after it. A plan served as of a
    // boundary asks for past days; today's scores come without `as_of`.
    let today = now.replace_time(time::Time::MIDNIGHT);
    if freshness > 0 && as_of >= today {
        return Err(AppError::parameter(
            "as_of",
            "must be before today (UTC) on this plan: today's scores are served without `as_of`",
        ));
    }
    Ok(state.dna.at(as_of, range).await?)
}

fn scores_of(publication: &Publication, range: ScoreRange) -> Result<&RangeScores, AppError> {
    publication
        .range(range)
        .ok_or_else(|| AppError::Internal(format!("a publication without the {} range", range.as_str())))
}

/// The numbers of SCORING.md this deployment scores with: the domain's
/// `ScoringConfig` as served, so that the domain crate needs no OpenAPI.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoringConfigBody {
    /// Passive, light, active, committed, patron, in tenths of a point.
    pub tier_tenths: [i64; 5],
    /// The decay lost per day of age, in hundredths.
    pub decay_per_day_hundredths: i64,
    /// The decay never goes below this, in hundredths.
    pub decay_floor_hundredths: i64,
    /// Touring viability counts cities with at least this many distinct fans.
    pub touring_min_fans: usize,
    /// Touring viability adds attendance divided by this.
    pub touring_attendance_divisor: i64,
    /// A change of a domain score of at least this many points is a mutation.
    pub mutation_points: f64,
}

impl From<&ScoringConfig> for ScoringConfigBody {
    fn from(config: &ScoringConfig) -> Self {
        Self {
            tier_tenths: config.tier_tenths,
            decay_per_day_hundredths: config.decay_per_day_hundredths,
            decay_floor_hundredths: config.decay_floor_hundredths,
            touring_min_fans: config.touring_min_fans,
            touring_attendance_divisor: config.touring_attendance_divisor,
            mutation_points: config.mutation_points,
        }
    }
}

/// A DNA board as asked and allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnaBoardRequest {
    pub board: DnaBoard,
    pub range: ScoreRange,
    pub genre: Option<String>,
    pub as_of: Option<OffsetDateTime>,
    pub limit: usize,
    /// A publication and the offset of the page in it.
    pub cursor: Option<(u64, usize)>,
}

impl DnaBoardRequest {
    pub fn read(caller: &Caller, board: &str, params: &Params) -> Result<Self, AppError> {
        params.only(BOARD_PARAMETERS)?;
        let board = DnaBoard::parse(board)
            .ok_or_else(|| AppError::NotFound(format!("there is no `{board}` DNA board (overall, a, t, g, c)")))?;
        check_board(caller, board)?;
        let range = read_score_range(params)?;
        let genre = params.dimension("genre")?;
        if genre.is_some() {
            caller.may(Feature::Filters)?;
        }
        let limit = params.limit()? as usize;
        let cursor = params
            .get("cursor")
            .map(|cursor| {
                decode_cursor(cursor)
                    .ok_or_else(|| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))
            })
            .transpose()?;
        Ok(Self {
            board,
            range,
            genre,
            as_of: read_as_of(params)?,
            limit,
            cursor,
        })
    }
}

/// One artist's place on a DNA board.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DnaEntry {
    pub rank: u64,
    pub artist_id: String,
    /// `null` while no name is known.
    #[schema(required = true)]
    pub artist_name: Option<String>,
    /// The reported score, 0–100, one decimal.
    pub score: f64,
}

/// The genre filter in force, in its first spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GenreFilter {
    #[schema(required = true)]
    pub genre: Option<String>,
}

/// A page of a DNA board.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DnaBoardBody {
    /// `overall`, `a`, `t`, `g` or `c`.
    pub domain: &'static str,
    /// `7d`, `30d` or `all`.
    pub range: &'static str,
    pub filters: GenreFilter,
    pub as_of: String,
    pub watermark: i64,
    pub total_ranked: usize,
    pub entries: Vec<DnaEntry>,
    /// The next page; `null` on the last page the plan shows.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    pub config: ScoringConfigBody,
    /// Present when the page reaches the last rank the plan shows and more exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_required: Option<UpgradeRequired>,
}

/// The page `request` asks for, as `audience` is served it.
pub async fn board(state: &AppState, audience: Audience, request: &DnaBoardRequest) -> Result<DnaBoardBody, AppError> {
    let (publication, offset) = match request.cursor {
        None => (publication(state, audience, request.as_of, request.range).await?, 0),
        Some((id, offset)) => {
            let publication = state
                .served
                .publication_by_id(id, audience.freshness_s())
                .ok_or_else(|| AppError::Gone {
                    detail: "the scores this cursor pages through are no longer kept; start again without a cursor"
                        .to_owned(),
                })?;
            (publication, offset)
        }
    };
    let entries = scores_of(&publication, request.range)?.board(request.board, request.genre.as_deref());
    let page = visible_page(audience, entries.len(), offset, request.limit);
    let names = state.names.read();
    Ok(DnaBoardBody {
        domain: request.board.as_str(),
        range: request.range.as_str(),
        filters: GenreFilter {
            genre: super::genre_spelling(&names, request.genre.as_ref()),
        },
        as_of: rfc3339(publication.as_of),
        watermark: publication.watermark.seq,
        total_ranked: entries.len(),
        entries: entries
            .page(page.positions)
            .iter()
            .map(|e| DnaEntry {
                rank: e.rank,
                artist_id: e.artist.to_string(),
                artist_name: super::artist_name(&names, &e.artist),
                score: e.score,
            })
            .collect(),
        next_cursor: page.next.map(|next| encode_cursor(publication.id, next)),
        config: ScoringConfigBody::from(&publication.config),
        upgrade_required: page.upgrade_required,
    })
}

/// An explanation as asked and allowed: needs the explanation in the plan,
/// or an artist account speaking for this artist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExplanationRequest {
    pub artist: String,
    pub range: ScoreRange,
    pub as_of: Option<OffsetDateTime>,
}

impl ExplanationRequest {
    pub fn read(caller: &Caller, artist: &str, params: &Params) -> Result<Self, AppError> {
        params.only(EXPLANATION_PARAMETERS)?;
        caller.may(Feature::DnaExplanation { artist })?;
        Ok(Self {
            artist: artist.to_owned(),
            range: read_score_range(params)?,
            as_of: read_as_of(params)?,
        })
    }
}

/// One component of a domain: its raw value and its percentile in the population.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ComponentBody {
    pub raw: f64,
    /// 0–100.
    pub percentile: f64,
}

/// One of the four domains of an artist's score.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DomainBody {
    pub name: &'static str,
    /// 0–100, one decimal.
    pub score: f64,
    pub unrounded: f64,
    /// By component name (SCORING.md).
    pub components: BTreeMap<&'static str, ComponentBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OverallBody {
    /// 0–100, one decimal.
    pub score: f64,
    pub unrounded: f64,
}

/// Counted entries by weight tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TiersBody {
    pub passive: i64,
    pub light: i64,
    pub active: i64,
    pub committed: i64,
    pub patron: i64,
}

/// The units of the raw values that are not plain counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UnitsBody {
    pub revenue_per_fan: &'static str,
    pub average_transaction_value: &'static str,
    pub monetization_efficiency: &'static str,
    pub repeat_engagement: &'static str,
    pub cultural_influence: &'static str,
}

const UNITS: UnitsBody = UnitsBody {
    revenue_per_fan: "minor units of the base currency",
    average_transaction_value: "minor units of the base currency",
    monetization_efficiency: "minor units of the base currency per 1,000 plays",
    repeat_engagement: "thousandths of a decayed point per fan",
    cultural_influence: "thousandths of a decayed point",
};

/// "Why this rank": an artist's score, domain by domain and component by component.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExplanationBody {
    pub artist_id: String,
    /// `null` while no name is known.
    #[schema(required = true)]
    pub artist_name: Option<String>,
    /// `7d`, `30d` or `all`.
    pub range: &'static str,
    pub as_of: String,
    pub watermark: i64,
    /// The artists scored in the range.
    pub population: usize,
    /// In its first spelling.
    #[schema(required = true)]
    pub primary_genre: Option<String>,
    pub overall: OverallBody,
    /// By domain letter: `a`, `t`, `g`, `c`.
    pub domains: BTreeMap<&'static str, DomainBody>,
    pub entries_by_tier: TiersBody,
    pub units: UnitsBody,
    pub config: ScoringConfigBody,
}

/// The explanation `request` asks for, as `audience` is served it.
pub async fn explanation(
    state: &AppState,
    audience: Audience,
    request: &ExplanationRequest,
) -> Result<ExplanationBody, AppError> {
    let range = request.range;
    let publication = publication(state, audience, request.as_of, range).await?;
    let scores = scores_of(&publication, range)?;
    let scored = scores.artist(&request.artist).ok_or_else(|| {
        AppError::NotFound(format!(
            "artist `{}` has no counted entry in the {} range, so no DNA score",
            request.artist,
            range.as_str()
        ))
    })?;
    let score = &scored.score;
    let domains = DnaDomain::ALL
        .iter()
        .enumerate()
        .map(|(d, domain)| {
            let components = (3 * d..3 * d + 3)
                .map(|c| {
                    let component = ComponentBody {
                        raw: score.raw[c],
                        percentile: score.percentile[c],
                    };
                    (COMPONENTS[c], component)
                })
                .collect();
            let body = DomainBody {
                name: domain.name(),
                score: reported(score.domains[d]),
                unrounded: score.domains[d],
                components,
            };
            (domain.letter(), body)
        })
        .collect();
    let [passive, light, active, committed, patron] = score.entries_by_tier;
    Ok(ExplanationBody {
        artist_id: request.artist.clone(),
        artist_name: state.names.name(NameKind::Artist, &request.artist),
        range: range.as_str(),
        as_of: rfc3339(publication.as_of),
        watermark: publication.watermark.seq,
        population: scores.artists.len(),
        primary_genre: scored
            .primary_genre
            .as_deref()
            .map(|genre| state.names.spelling(NameKind::Genre, genre)),
        overall: OverallBody {
            score: reported(score.overall),
            unrounded: score.overall,
        },
        domains,
        entries_by_tier: TiersBody {
            passive,
            light,
            active,
            committed,
            patron,
        },
        units: UNITS,
        config: ScoringConfigBody::from(&publication.config),
    })
}

/// The movers as asked and allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoversRequest {
    pub domain: DnaDomain,
    pub range: ScoreRange,
    pub limit: usize,
}

impl MoversRequest {
    pub fn read(caller: &Caller, params: &Params) -> Result<Self, AppError> {
        params.only(MOVERS_PARAMETERS)?;
        let domain = match params.get("domain").map(DnaBoard::parse) {
            None => return Err(AppError::parameter("domain", "is required: a, t, g or c")),
            Some(Some(DnaBoard::Domain(domain))) => domain,
            Some(_) => return Err(AppError::parameter("domain", "must be a, t, g or c")),
        };
        check_board(caller, DnaBoard::Domain(domain))?;
        Ok(Self {
            domain,
            range: read_score_range(params)?,
            limit: params.limit()? as usize,
        })
    }
}

/// An artist whose domain score rose most.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MoverBody {
    pub artist_id: String,
    /// `null` while no name is known.
    #[schema(required = true)]
    pub artist_name: Option<String>,
    pub from: f64,
    pub to: f64,
    /// `to - from`, one decimal.
    pub gain: f64,
}

/// The artists whose domain score rose most over the last 7 days.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MoversBody {
    /// `a`, `t`, `g` or `c`.
    pub domain: &'static str,
    pub range: &'static str,
    pub since: String,
    pub entries: Vec<MoverBody>,
}

/// The movers `request` asks for, never newer than what `audience`'s plan is served.
pub async fn movers_of(state: &AppState, audience: Audience, request: &MoversRequest) -> Result<MoversBody, AppError> {
    let since = state.clock.now() - MOVERS_WINDOW;
    let newest = state.served.publication(audience.freshness_s()).as_of;
    let mutations = state
        .store
        .mutations_of(request.domain.letter(), request.range.as_str(), since, newest)
        .await?;
    let gains = movers(&mutations, request.domain, request.range);
    let names = state.names.read();
    Ok(MoversBody {
        domain: request.domain.letter(),
        range: request.range.as_str(),
        since: rfc3339(since),
        entries: gains
            .into_iter()
            .take(request.limit)
            .map(|(artist_id, from, to)| MoverBody {
                gain: reported(to - from),
                artist_name: super::artist_name(&names, &artist_id),
                artist_id,
                from,
                to,
            })
            .collect(),
    })
}
