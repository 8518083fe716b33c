//! Views: the body of every read, built by one function from its request.
//! The REST handler serves it, and so will everything else that serves the
//! same data (the live push, reports): "the same body as the REST read"
//! holds by construction. A view's request is read and checked against the
//! caller once; its body is a typed, serializable value, and the same type
//! is the body's schema in the OpenAPI document. A body is built for an
//! [`Audience`](crate::routes::access::Audience) (plan, and whether an admin), never for
//! one caller, so that [`shared`] can serve it to everyone of that audience
//! making the same read.

pub mod audit;
pub mod boards;
pub mod dna;
pub mod kpis;
pub mod pipeline;
pub mod reads;
pub mod shared;

use coliseum_domain::range::Range;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

pub use reads::rfc3339;

use coliseum_engine::names::NamesRead;
use coliseum_store::NameKind;

/// The display name of an artist, `None` while none is known.
pub fn artist_name(names: &NamesRead<'_>, artist: &str) -> Option<String> {
    names.name(NameKind::Artist, artist)
}

/// The display name of a live event, `None` while none is known.
pub fn live_event_name(names: &NamesRead<'_>, live_event: &str) -> Option<String> {
    names.name(NameKind::LiveEvent, live_event)
}

/// A city filter as people wrote it first (its key while none is known).
pub fn city_spelling(names: &NamesRead<'_>, city: Option<&String>) -> Option<String> {
    city.map(|key| names.spelling(NameKind::City, key))
}

/// A genre as people wrote it first (its key while none is known).
pub fn genre_spelling(names: &NamesRead<'_>, genre: Option<&String>) -> Option<String> {
    genre.map(|key| names.spelling(NameKind::Genre, key))
}

/// A range as served: its name and the instants it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RangeBody {
    /// `1h`, `24h`, `7d`, `30d`, `all` or `custom`.
    pub name: &'static str,
    pub from: String,
    pub to: String,
}

impl RangeBody {
    pub fn new(range: Range, from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            name: range.as_str(),
            from: rfc3339(from),
            to: rfc3339(to),
        }
    }
}

/// The marker of a board cut at the ranks the caller's plan shows
/// (PLANS.md): what it would take to see more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UpgradeRequired {
    pub feature: String,
    /// The caller's plan.
    pub plan: &'static str,
    /// The cheapest plan that shows more ranks.
    pub cheapest_plan: &'static str,
    pub visible_ranks: usize,
}
