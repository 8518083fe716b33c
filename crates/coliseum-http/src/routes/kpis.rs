//! `GET /v1/kpis`: the KPI tiles (plays, votes, attendance, revenue,
//! engagement) of the platform, an artist or a live event, with an hourly or
//! daily series, over a range, optionally by city and genre.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use coliseum_domain::kpi::Kpis;
use coliseum_domain::plans::Feature;
use coliseum_domain::range::Range;
use coliseum_engine::reads::{Filters, KpiQuery};
use coliseum_store::Grain;
use serde_json::{Value, json};

use super::access::Caller;
use super::analytics::{check_read, freshness, range_json, read_range, rfc3339};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::params::Params;
use crate::problem::AppError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/kpis", get(kpis))
}

/// The five KPIs as served: revenue in minor units of the base currency,
/// engagement in points (one decimal).
fn kpis_json(kpis: &Kpis) -> serde_json::Map<String, Value> {
    serde_json::Map::from_iter([
        ("plays".to_owned(), json!(kpis.plays)),
        ("votes".to_owned(), json!(kpis.votes)),
        ("attendance".to_owned(), json!(kpis.attendance)),
        ("revenue_minor".to_owned(), json!(kpis.revenue_minor)),
        ("engagement".to_owned(), json!(kpis.engagement_tenths as f64 / 10.0)),
    ])
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

/// An admin reading a tenant's full KPIs without being linked to it is
/// reading another subject's data: audited (PLANS.md, "Roles").
async fn audit_tenant_read(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    artist: Option<&str>,
    live_event: Option<&str>,
) -> Result<(), AppError> {
    let Some(user) = &caller.user else { return Ok(()) };
    let subject = match (artist, live_event) {
        (Some(artist), _) if !user.artists.iter().any(|a| a == artist) => format!("artist:{artist}"),
        (_, Some(event)) if !user.live_events.iter().any(|e| e == event) => format!("live_event:{event}"),
        _ => return Ok(()),
    };
    let event = audit::Event {
        actor: caller.actor(),
        action: "tenant_data.read",
        subject,
        detail: json!({"endpoint": "/v1/kpis"}),
    };
    audit::record(state, request, event).await
}

async fn kpis(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    params: Params,
) -> Result<Json<Value>, AppError> {
    params.only(&["scope", "range", "from", "to", "bucket", "city", "genre"])?;
    let scope = params.get("scope").unwrap_or("platform");
    let (artist, live_event) = read_scope(scope)?;
    if let Some(artist) = &artist {
        caller.may(Feature::ArtistKpis { artist })?;
    }
    if let Some(live_event) = &live_event {
        caller.may(Feature::LiveEventKpis { live_event })?;
    }
    audit_tenant_read(&state, &caller, &request, artist.as_deref(), live_event.as_deref()).await?;
    let range = read_range(&params)?;
    let filtered = params.get("city").is_some() || params.get("genre").is_some();
    check_read(&caller, range, filtered, state.clock.now())?;
    let bucket = match params.get("bucket") {
        None if matches!(range, Range::Hour | Range::Day) => Grain::Hour,
        None | Some("day") => Grain::Day,
        Some("hour") => Grain::Hour,
        Some(_) => return Err(AppError::parameter("bucket", "must be hour or day")),
    };
    let query = KpiQuery {
        artist,
        range,
        bucket,
        filters: Filters {
            city: params.dimension("city")?,
            genre: params.dimension("genre")?,
            live_event,
        },
    };
    let report = state.served.kpis(&query, caller.freshness_s()).await?;
    let mut body = serde_json::Map::new();
    body.insert("scope".into(), json!(scope));
    body.insert("range".into(), range_json(range, report.from, report.to));
    body.insert(
        "filters".into(),
        json!({"city": query.filters.city, "genre": query.filters.genre}),
    );
    body.extend(freshness(report.watermark));
    body.insert(
        "bucket".into(),
        json!(if bucket == Grain::Hour { "hour" } else { "day" }),
    );
    body.insert("currency".into(), json!(state.settings.fx.base().as_str()));
    body.insert("totals".into(), Value::Object(kpis_json(&report.totals)));
    body.insert(
        "series".into(),
        json!(
            report
                .series
                .iter()
                .map(|(t, k)| {
                    let mut point = kpis_json(k);
                    point.insert("t".to_owned(), json!(rfc3339(*t)));
                    Value::Object(point)
                })
                .collect::<Vec<_>>()
        ),
    );
    Ok(Json(Value::Object(body)))
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
}
