//! Roles and plans: who a user is and what they pay for, and PLANS.md's
//! entitlement matrix as one pure function of plan, role and links.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::kpi::Metric;
use crate::scoring::DnaDomain;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        kind: stringify!($name),
                        given: text.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A name that is not one of the known roles or plans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a {kind}; expected one of: {expected}")]
pub struct UnknownName {
    kind: &'static str,
    given: String,
    expected: String,
}

named_enum! {
    /// Whose data a user may see (PLANS.md, "Roles").
    Role { Fan => "fan", Artist => "artist", Host => "host", Brand => "brand", Developer => "developer", Admin => "admin" }
}

named_enum! {
    /// What a user pays for (PLANS.md). `Public` is the plan of a request with no login.
    Plan { Public => "public", Free => "free", Basic => "basic", Pro => "pro", Enterprise => "enterprise" }
}

/// Who asks: the plan paid for, the role, and the artists and live events
/// the user is linked to. A request without credentials is a Public fan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub plan: Plan,
    pub role: Role,
    pub artists: &'a [String],
    pub live_events: &'a [String],
}

impl Subject<'_> {
    pub const PUBLIC: Subject<'static> = Subject {
        plan: Plan::Public,
        role: Role::Fan,
        artists: &[],
        live_events: &[],
    };

    fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the subject is an artist account linked to `artist`.
    pub fn speaks_for_artist(&self, artist: &str) -> bool {
        self.role == Role::Artist && self.artists.iter().any(|a| a == artist)
    }

    /// Whether the subject is a host account linked to `live_event`.
    pub fn hosts(&self, live_event: &str) -> bool {
        self.role == Role::Host && self.live_events.iter().any(|e| e == live_event)
    }
}

/// Something a request may or may not be allowed to see or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature<'a> {
    /// One DNA domain's scores, boards and movers ("DNA domains visible").
    DnaDomain(DnaDomain),
    /// The "why this rank" explanation of an artist's DNA.
    DnaExplanation { artist: &'a str },
    /// A KPI leaderboard other than by plays.
    KpiLeaderboard(Metric),
    /// City, genre and live-event filters.
    Filters,
    /// A custom range starting this many whole days before now.
    CustomRange { days_back: i64 },
    /// The full KPIs of one artist (its own dashboard).
    ArtistKpis { artist: &'a str },
    /// The full KPIs of one live event.
    LiveEventKpis { live_event: &'a str },
    /// Creating and using API keys.
    ApiKeys,
    /// Updates pushed over a WebSocket or Server-Sent Events.
    LivePush,
    /// PDF and JSON reports and their share links.
    Reports,
}

impl Feature<'_> {
    /// How a problem document names it.
    pub fn name(self) -> String {
        match self {
            Self::DnaDomain(domain) => format!("dna_domain_{}", domain.letter()),
            Self::DnaExplanation { .. } => "dna_explanation".to_owned(),
            Self::KpiLeaderboard(metric) => format!("kpi_leaderboard_{}", metric.as_str()),
            Self::Filters => "filters".to_owned(),
            Self::CustomRange { .. } => "custom_ranges".to_owned(),
            Self::ArtistKpis { .. } => "artist_kpis".to_owned(),
            Self::LiveEventKpis { .. } => "live_event_kpis".to_owned(),
            Self::ApiKeys => "api_keys".to_owned(),
            Self::LivePush => "live_push".to_owned(),
            Self::Reports => "reports".to_owned(),
        }
    }
}

/// Why a request may not have a feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A higher plan includes it.
    #[error(transparent)]
    UpgradeRequired(#[from] UpgradeRequired),
    /// No plan does: it is another tenant's data.
    #[error("{0}")]
    Forbidden(String),
}

/// A feature the caller's plan does not include, and the cheapest plan that does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{feature} is not included in the {plan} plan; the {cheapest} plan includes it")]
pub struct UpgradeRequired {
    /// The feature's name ([`Feature::name`]).
    pub feature: String,
    pub plan: Plan,
    pub cheapest: Plan,
}

/// How custom ranges reach back ("custom time ranges").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomRanges {
    None,
    /// Starting at most this many days before now.
    LastDays(u32),
    /// Over everything kept.
    Everything,
}

/// How live pushes arrive ("live push").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePush {
    None,
    Every60s,
    OnEveryChange,
}

impl LivePush {
    /// The least time between two updates of one topic (API.md: Enterprise
    /// on every change, coalesced to at most every 250 ms); `None`: no push.
    pub fn cadence(self) -> Option<std::time::Duration> {
        match self {
            Self::None => None,
            Self::Every60s => Some(std::time::Duration::from_secs(60)),
            Self::OnEveryChange => Some(std::time::Duration::from_millis(250)),
        }
    }
}

/// A plan's column of PLANS.md's matrix. `None` in a limit means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entitlements {
    /// Ranks visible on any leaderboard.
    pub leaderboard_depth: Option<usize>,
    pub dna_domains: Vec<&'static str>,
    pub kpi_leaderboards: Vec<&'static str>,
    /// City, genre and live-event filters.
    pub filters: bool,
    /// The newest data a response may show is this many seconds old.
    pub freshness_s: u32,
    pub live_push: LivePush,
    pub custom_ranges: CustomRanges,
    pub api_keys: bool,
    /// Requests a minute, per API key or session (per IP without a login).
    pub rate_limit_per_minute: u32,
    pub reports_per_month: Option<u32>,
    pub reports_watermarked: bool,
    pub reports_custom_branding: bool,
    /// The longest share-link lifetime, in days; `Some(0)`: no share links.
    pub share_link_max_days: Option<u32>,
    pub explanation: bool,
    pub ocr_calls_per_month: u32,
}

/// 24 months, in days, for "custom time ranges: last 24 months".
const TWO_YEARS_DAYS: u32 = 731;

impl Entitlements {
    /// What `plan` includes, whatever the role.
    pub fn of(plan: Plan) -> Self {
        use Plan::*;
        let all_domains = DnaDomain::ALL.iter().map(|d| d.letter()).collect();
        let all_metrics = Metric::ALL.iter().map(|m| m.as_str()).collect();
        let pro = plan >= Pro;
        Self {
            leaderboard_depth: match plan {
                Public => Some(50),
                Free => Some(10),
                Basic => Some(25),
                Pro => Some(100),
                Enterprise => None,
            },
            dna_domains: if pro {
                all_domains
            } else {
                vec![DnaDomain::Cultural.letter()]
            },
            kpi_leaderboards: if plan >= Basic {
                all_metrics
            } else {
                vec![Metric::Plays.as_str()]
            },
            filters: plan >= Free,
            freshness_s: match plan {
                Public | Free | Basic => 300,
                Pro => 60,
                Enterprise => 0,
            },
            live_push: match plan {
                Public | Free | Basic => LivePush::None,
                Pro => LivePush::Every60s,
                Enterprise => LivePush::OnEveryChange,
            },
            custom_ranges: match plan {
                Public | Free => CustomRanges::None,
                Basic => CustomRanges::LastDays(90),
                Pro => CustomRanges::LastDays(TWO_YEARS_DAYS),
                Enterprise => CustomRanges::Everything,
            },
            api_keys: pro,
            rate_limit_per_minute: match plan {
                Public => 30,
                Free => 60,
                Basic => 120,
                Pro => 600,
                Enterprise => 6_000,
            },
            reports_per_month: match plan {
                Public | Free => Some(0),
                Basic => Some(10),
                Pro => Some(100),
                Enterprise => None,
            },
            reports_watermarked: plan == Basic,
            reports_custom_branding: plan == Enterprise,
            share_link_max_days: match plan {
                Public | Free => Some(0),
                Basic => Some(7),
                Pro => Some(30),
                Enterprise => None,
            },
            explanation: pro,
            ocr_calls_per_month: match plan {
                Public | Free | Basic => 0,
                Pro => 100,
                Enterprise => 1_000,
            },
        }
    }

    /// Whether these entitlements include `feature`, tenancy aside.
    fn include(&self, feature: Feature<'_>) -> bool {
        match feature {
            Feature::DnaDomain(domain) => self.dna_domains.contains(&domain.letter()),
            Feature::DnaExplanation { .. } => self.explanation,
            Feature::KpiLeaderboard(metric) => self.kpi_leaderboards.contains(&metric.as_str()),
            Feature::Filters => self.filters,
            Feature::CustomRange { days_back } => match self.custom_ranges {
                CustomRanges::None => false,
                CustomRanges::LastDays(days) => days_back <= i64::from(days),
                CustomRanges::Everything => true,
            },
            Feature::ArtistKpis { .. } | Feature::LiveEventKpis { .. } => false,
            Feature::ApiKeys => self.api_keys,
            Feature::LivePush => self.live_push != LivePush::None,
            Feature::Reports => self.reports_per_month != Some(0),
        }
    }
}

/// API keys in force per account at most, whatever the plan (PLANS.md):
/// every key shares the account's one allowance, so more keys buy nothing
/// but more secrets to leak. The stores enforce it as they insert a key.
pub const MAX_API_KEYS: usize = 25;

/// The one check every read and action goes through: `Ok` when `subject`
/// may have `feature`; else what to upgrade to, or that no plan allows it.
///
/// Admins have everything. Links widen what a role sees whatever the plan:
/// an artist their artists' full KPIs and explanations, a host their live
/// events' KPIs.
pub fn entitlement(subject: &Subject<'_>, feature: Feature<'_>) -> Result<(), Denied> {
    if subject.is_admin() {
        return Ok(());
    }
    match feature {
        Feature::ArtistKpis { artist } if subject.speaks_for_artist(artist) => return Ok(()),
        Feature::ArtistKpis { artist } => {
            return Err(Denied::Forbidden(format!(
                "the full KPIs of artist `{artist}` are for the accounts linked to it"
            )));
        }
        Feature::LiveEventKpis { live_event } if subject.hosts(live_event) => return Ok(()),
        Feature::LiveEventKpis { live_event } => {
            return Err(Denied::Forbidden(format!(
                "the full KPIs of live event `{live_event}` are for its hosts"
            )));
        }
        Feature::DnaExplanation { artist } if subject.speaks_for_artist(artist) => return Ok(()),
        _ => {}
    }
    if Entitlements::of(subject.plan).include(feature) {
        return Ok(());
    }
    let cheapest = Plan::ALL
        .iter()
        .copied()
        .find(|&p| Entitlements::of(p).include(feature))
        .unwrap_or(Plan::Enterprise);
    Err(UpgradeRequired {
        feature: feature.name(),
        plan: subject.plan,
        cheapest,
    }
    .into())
}

/// The entitlements in force for `subject`: its plan's, or for an admin
/// (who has everything) the widest.
pub fn entitlements(subject: &Subject<'_>) -> Entitlements {
    Entitlements::of(if subject.is_admin() {
        Plan::Enterprise
    } else {
        subject.plan
    })
}

/// The ranks `subject` may see on any leaderboard; `None` for all.
pub fn leaderboard_depth(subject: &Subject<'_>) -> Option<usize> {
    if subject.is_admin() {
        None
    } else {
        Entitlements::of(subject.plan).leaderboard_depth
    }
}

/// The [`UpgradeRequired`] marker of a leaderboard cut at `subject`'s depth.
pub fn depth_upgrade(subject: &Subject<'_>) -> UpgradeRequired {
    let depth = leaderboard_depth(subject);
    let cheapest = Plan::ALL
        .iter()
        .copied()
        .filter(|&p| p > subject.plan)
        .find(|&p| match (Entitlements::of(p).leaderboard_depth, depth) {
            (None, _) => true,
            (Some(more), Some(now)) => more > now,
            (Some(_), None) => false,
        })
        .unwrap_or(Plan::Enterprise);
    UpgradeRequired {
        feature: "leaderboard_depth".to_owned(),
        plan: subject.plan,
        cheapest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(plan: Plan, role: Role) -> Subject<'static> {
        Subject {
            plan,
            role,
            ..Subject::PUBLIC
        }
    }

    fn cheapest(subject: &Subject<'_>, feature: Feature<'_>) -> Option<Plan> {
        match entitlement(subject, feature) {
            Ok(()) => None,
            Err(Denied::UpgradeRequired(upgrade)) => Some(upgrade.cheapest),
            Err(Denied::Forbidden(why)) => panic!("forbidden, not an upgrade: {why}"),
        }
    }

    #[test]
    fn dna_entitlements_follow_the_matrix() {
        let explanation = Feature::DnaExplanation { artist: "a-1" };
        for plan in [Plan::Public, Plan::Free, Plan::Basic] {
            let fan = subject(plan, Role::Fan);
            assert_eq!(cheapest(&fan, Feature::DnaDomain(DnaDomain::Cultural)), None);
            assert_eq!(cheapest(&fan, Feature::DnaDomain(DnaDomain::Economic)), Some(Plan::Pro));
            assert_eq!(cheapest(&fan, explanation), Some(Plan::Pro));
        }
        for plan in [Plan::Pro, Plan::Enterprise] {
            for domain in DnaDomain::ALL {
                assert_eq!(
                    entitlement(&subject(plan, Role::Fan), Feature::DnaDomain(domain)),
                    Ok(())
                );
            }
            assert_eq!(entitlement(&subject(plan, Role::Fan), explanation), Ok(()));
        }
    }

    #[test]
    fn kpi_boards_filters_and_custom_ranges_follow_the_matrix() {
        let revenue = Feature::KpiLeaderboard(Metric::Revenue);
        assert_eq!(cheapest(&Subject::PUBLIC, Feature::KpiLeaderboard(Metric::Plays)), None);
        assert_eq!(cheapest(&subject(Plan::Free, Role::Fan), revenue), Some(Plan::Basic));
        assert_eq!(cheapest(&subject(Plan::Basic, Role::Fan), revenue), None);
        assert_eq!(cheapest(&Subject::PUBLIC, Feature::Filters), Some(Plan::Free));
        assert_eq!(cheapest(&subject(Plan::Free, Role::Fan), Feature::Filters), None);
        let days = |days_back| Feature::CustomRange { days_back };
        assert_eq!(cheapest(&subject(Plan::Free, Role::Fan), days(1)), Some(Plan::Basic));
        assert_eq!(cheapest(&subject(Plan::Basic, Role::Fan), days(90)), None);
        assert_eq!(cheapest(&subject(Plan::Basic, Role::Fan), days(91)), Some(Plan::Pro));
        assert_eq!(cheapest(&subject(Plan::Pro, Role::Fan), days(731)), None);
        assert_eq!(
            cheapest(&subject(Plan::Pro, Role::Fan), days(732)),
            Some(Plan::Enterprise)
        );
        assert_eq!(cheapest(&subject(Plan::Enterprise, Role::Fan), days(10_000)), None);
        assert_eq!(
            cheapest(&subject(Plan::Basic, Role::Developer), Feature::ApiKeys),
            Some(Plan::Pro)
        );
    }

    #[test]
    fn links_widen_what_a_role_sees_and_admins_see_everything() {
        let linked = ["a-1".to_owned()];
        let events = ["show-9".to_owned()];
        let artist = Subject {
            plan: Plan::Free,
            role: Role::Artist,
            artists: &linked,
            live_events: &[],
        };
        let host = Subject {
            plan: Plan::Free,
            role: Role::Host,
            artists: &[],
            live_events: &events,
        };
        assert_eq!(entitlement(&artist, Feature::ArtistKpis { artist: "a-1" }), Ok(()));
        assert_eq!(entitlement(&artist, Feature::DnaExplanation { artist: "a-1" }), Ok(()));
        assert!(matches!(
            entitlement(&artist, Feature::ArtistKpis { artist: "a-2" }),
            Err(Denied::Forbidden(_))
        ));
        assert_eq!(
            cheapest(&artist, Feature::DnaExplanation { artist: "a-2" }),
            Some(Plan::Pro)
        );
        assert_eq!(
            entitlement(&host, Feature::LiveEventKpis { live_event: "show-9" }),
            Ok(())
        );
        assert!(entitlement(&host, Feature::LiveEventKpis { live_event: "show-1" }).is_err());
        // A host linked to an artist's id is still no artist account.
        let host_named_like_artist = Subject {
            artists: &linked,
            ..host
        };
        assert!(entitlement(&host_named_like_artist, Feature::ArtistKpis { artist: "a-1" }).is_err());
        let admin = subject(Plan::Free, Role::Admin);
        for feature in [
            Feature::ArtistKpis { artist: "a-2" },
            Feature::LiveEventKpis { live_event: "show-1" },
            Feature::DnaDomain(DnaDomain::Spatial),
            Feature::CustomRange { days_back: 5_000 },
        ] {
            assert_eq!(entitlement(&admin, feature), Ok(()));
        }
        assert_eq!(leaderboard_depth(&admin), None);
    }

    #[test]
    fn depth_and_its_upgrade_follow_the_matrix() {
        let depths: Vec<_> = Plan::ALL
            .iter()
            .map(|&plan| leaderboard_depth(&subject(plan, Role::Fan)))
            .collect();
        assert_eq!(depths, [Some(50), Some(10), Some(25), Some(100), None]);
        assert_eq!(depth_upgrade(&Subject::PUBLIC).cheapest, Plan::Pro);
        assert_eq!(depth_upgrade(&subject(Plan::Free, Role::Fan)).cheapest, Plan::Basic);
        assert_eq!(depth_upgrade(&subject(Plan::Basic, Role::Fan)).cheapest, Plan::Pro);
        assert_eq!(depth_upgrade(&subject(Plan::Pro, Role::Fan)).cheapest, Plan::Enterprise);
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(*plan));
        }
        let err = "root".parse::<Role>().expect_err("not a role");
        assert!(err.to_string().contains("fan, artist, host, brand, developer, admin"));
    }
}
