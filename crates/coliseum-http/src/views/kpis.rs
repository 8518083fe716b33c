//! The KPI tiles (plays, votes, attendance, revenue, engagement) of the
//! platform, an artist or a live event, with an hourly or daily series.

use coliseum_domain::kpi::Kpis;
use coliseum_domain::plans::Feature;
use coliseum_domain::range::Range;
use coliseum_engine::reads::{Filters, KpiQuery};
use coliseum_store::Grain;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::RangeBody;
use super::reads::{check_read, read_range, rfc3339};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::names::{BucketName, RangeName};
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};

/// A KPI read as asked and allowed: the scope as written, and the query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KpisRequest {
    /// `platform`, `artist:{id}` or `live_event:{id}`.
    pub scope: String,
    pub query: KpiQuery,
}

/// The query parameters of a KPI read, as documented.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct KpisParams {
    /// `platform` (default), `artist:{id}` or `live_event:{id}`.
    scope: Option<String>,
    /// `24h` when absent; `custom` needs `from` and `to`.
    range: Option<RangeName>,
    /// The start of a `custom` range (RFC 3339).
    from: Option<String>,
    /// The end of a `custom` range (RFC 3339).
    to: Option<String>,
    /// Hourly by default for `1h` and `24h`, else daily.
    bucket: Option<BucketName>,
    /// Only entries in this city (any spelling; compared trimmed and lower-cased).
    city: Option<String>,
    /// Only entries of this genre.
    genre: Option<String>,
}

/// The parameters a KPI read takes.
pub const PARAMETERS: &[&str] = &["scope", "range", "from", "to", "bucket", "city", "genre"];

impl KpisRequest {
    /// The request `params` make, if `caller` may make it: the scope's
    /// entitlement, filters and custom ranges by plan.
    pub fn read(state: &AppState, caller: &Caller, params: &Params) -> Result<Self, AppError> {
        params.only(PARAMETERS)?;
        let scope = params.get("scope").unwrap_or("platform");
        let (artist, live_event) = read_scope(scope)?;
        if let Some(artist) = &artist {
            caller.may(Feature::ArtistKpis { artist })?;
        }
        if let Some(live_event) = &live_event {
            caller.may(Feature::LiveEventKpis { live_event })?;
        }
        let range = read_range(params)?;
        let filtered = params.get("city").is_some() || params.get("genre").is_some();
        check_read(caller, range, filtered, state.clock.now())?;
        let bucket = match params.get("bucket") {
            None if matches!(range, Range::Hour | Range::Day) => Grain::Hour,
            None | Some("day") => Grain::Day,
            Some("hour") => Grain::Hour,
            Some(_) => return Err(AppError::parameter("bucket", "must be hour or day")),
        };
        Ok(Self {
            scope: scope.to_owned(),
            query: KpiQuery {
                artist,
                range,
                bucket,
                filters: Filters {
                    city: params.dimension("city")?,
                    genre: params.dimension("genre")?,
                    live_event,
                },
            },
        })
    }

    /// The artist or live event the read is about, if not the platform.
    pub fn tenant(&self) -> (Option<&str>, Option<&str>) {
        (self.query.artist.as_deref(), self.query.filters.live_event.as_deref())
    }
}

/// `platform`, `artist:{id}` or `live_event:{id}`.
fn read_scope(scope: &str) -> Result<(Option<String>, Option<String>), AppError> {
    let bad = || AppError::parameter("scope", "must be platform, artist:{id} or live_event:{id}");
    match scope.split_once(':') {
        None if scope == "platform" => Ok((None, None)),
        Some(("artist", id)) if !id.is_empty() => Ok((Some(id.to_owned()), None)),
        Some(("live_event", id)) if !id.is_empty() => Ok((None, Some(id.to_owned()))),
        _ => Err(bad()),
    }
}

/// The body of a KPI read.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpisBody {
    pub scope: String,
    /// The display name of the scope's artist or live event; `null` for
    /// the platform or while none is known.
    #[schema(required = true)]
    pub scope_name: Option<String>,
    pub range: RangeBody,
    pub filters: DimensionFilters,
    pub as_of: String,
    pub watermark: i64,
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// The base currency of `revenue_minor`.
    pub currency: String,
    pub totals: Figures,
    /// One point per bucket with any figure, oldest first.
    pub series: Vec<Point>,
}

/// The filters in force, in their first spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DimensionFilters {
    #[schema(required = true)]
    pub city: Option<String>,
    #[schema(required = true)]
    pub genre: Option<String>,
}

/// The five KPIs as served: revenue in minor units of the base currency,
/// engagement in points (one decimal).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    pub plays: i64,
    pub votes: i64,
    pub attendance: i64,
    pub revenue_minor: i64,
    pub engagement: f64,
}

impl From<&Kpis> for Figures {
    fn from(kpis: &Kpis) -> Self {
        Self {
            plays: kpis.plays,
            votes: kpis.votes,
            attendance: kpis.attendance,
            revenue_minor: kpis.revenue_minor,
            engagement: kpis.engagement_tenths as f64 / 10.0,
        }
    }
}

/// One bucket of the series: its start and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Point {
    pub t: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// An admin reading a tenant's full KPIs without being linked to it is
/// reading another subject's data: audited (PLANS.md, "Roles"), whatever
/// serves the read ([`super::shared::serve`]), before its body is served.
pub async fn audit_tenant_read(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    request: &KpisRequest,
) -> Result<(), AppError> {
    let Some(user) = &caller.user else { return Ok(()) };
    let subject = match request.tenant() {
        (Some(artist), _) if !user.artists.iter().any(|a| a == artist) => format!("artist:{artist}"),
        (_, Some(event)) if !user.live_events.iter().any(|e| e == event) => format!("live_event:{event}"),
        _ => return Ok(()),
    };
    let event = audit::Event {
        actor: caller.actor(),
        action: "tenant_data.read",
        subject,
        detail: serde_json::json!({"endpoint": "/v1/kpis"}),
    };
    audit::record(state, request_id, event).await
}

/// The body of `request` as `audience` is served it (live, or as of the
/// last boundary of the plan's period).
pub async fn kpis(state: &AppState, audience: Audience, request: &KpisRequest) -> Result<KpisBody, AppError> {
    let query = &request.query;
    let report = state.served.kpis(query, audience.freshness_s()).await?;
    let names = &state.names.read();
    let scope_name = match request.tenant() {
        (Some(artist), _) => super::artist_name(names, artist),
        (_, Some(live_event)) => super::live_event_name(names, live_event),
        (None, None) => None,
    };
    Ok(KpisBody {
        scope: request.scope.clone(),
        scope_name,
        range: RangeBody::new(query.range, report.from, report.to),
        filters: DimensionFilters {
            city: super::city_spelling(names, query.filters.city.as_ref()),
            genre: super::genre_spelling(names, query.filters.genre.as_ref()),
        },
        as_of: rfc3339(report.watermark.as_of),
        watermark: report.watermark.seq,
        bucket: if query.bucket == Grain::Hour { "hour" } else { "day" },
        currency: state.settings.fx.base().as_str().to_owned(),
        totals: Figures::from(&report.totals),
        series: report
            .series
            .iter()
            .map(|(t, kpis)| Point {
                t: rfc3339(*t),
                figures: Figures::from(kpis),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_the_platform_an_artist_or_a_live_event() {
        assert_eq!(read_scope("platform").ok(), Some((None, None)));
        assert_eq!(read_scope("artist:art_1").ok(), Some((Some("art_1".into()), None)));
        assert_eq!(read_scope("live_event:l1").ok(), Some((None, Some("l1".into()))));
        for bad in ["artist:", "artist", "user:1", "", "platform:x"] {
            assert!(read_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_point_is_its_instant_and_its_figures_side_by_side() {
        let kpis = Kpis {
            plays: 3,
            engagement_tenths: 25,
            ..Kpis::default()
        };
        let point = Point {
            t: "2026-12-04T10:00:00Z".to_owned(),
            figures: Figures::from(&kpis),
        };
        assert_eq!(
            serde_json::to_value(&point).expect("json"),
            serde_json::json!({"t": "2026-12-04T10:00:00Z", "plays": 3, "votes": 0, "attendance": 0,
                "revenue_minor": 0, "engagement": 2.5})
        );
    }
}
