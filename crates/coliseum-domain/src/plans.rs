//! Roles and plans: who a user is and what they pay for. The entitlement
//! matrix of PLANS.md grows here as the server enforces it.

use std::fmt;
use std::str::FromStr;

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

/// Something a plan may or may not include (PLANS.md's matrix, as far as
/// the server enforces it so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// One DNA domain's scores, boards and movers ("DNA domains visible").
    DnaDomain(DnaDomain),
    /// The "why this rank" explanation of an artist's DNA.
    DnaExplanation,
}

impl Feature {
    /// How a problem document names it.
    pub fn name(self) -> String {
        match self {
            Self::DnaDomain(domain) => format!("dna_domain_{}", domain.letter()),
            Self::DnaExplanation => "dna_explanation".to_owned(),
        }
    }
}

/// A feature the caller's plan does not include, and the cheapest plan that does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} is not included in the {plan} plan; the {cheapest} plan includes it", feature.name())]
pub struct UpgradeRequired {
    pub feature: Feature,
    pub plan: Plan,
    pub cheapest: Plan,
}

/// Whether `plan` includes `feature`.
pub fn includes(plan: Plan, feature: Feature) -> bool {
    match feature {
        Feature::DnaDomain(DnaDomain::Cultural) => true,
        Feature::DnaDomain(_) | Feature::DnaExplanation => plan >= Plan::Pro,
    }
}

/// The one check every entitlement goes through: `Ok` when `plan` includes
/// `feature`, else what to upgrade to.
pub fn entitlement(plan: Plan, feature: Feature) -> Result<(), UpgradeRequired> {
    if includes(plan, feature) {
        return Ok(());
    }
    let cheapest = Plan::ALL
        .iter()
        .copied()
        .find(|&p| includes(p, feature))
        .unwrap_or(Plan::Enterprise);
    Err(UpgradeRequired {
        feature,
        plan,
        cheapest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dna_entitlements_follow_the_matrix() {
        for plan in [Plan::Public, Plan::Free, Plan::Basic] {
            assert_eq!(entitlement(plan, Feature::DnaDomain(DnaDomain::Cultural)), Ok(()));
            let refused = entitlement(plan, Feature::DnaDomain(DnaDomain::Economic)).expect_err("G needs Pro");
            assert_eq!(refused.cheapest, Plan::Pro);
            assert_eq!(refused.plan, plan);
            assert!(entitlement(plan, Feature::DnaExplanation).is_err());
        }
        for plan in [Plan::Pro, Plan::Enterprise] {
            for domain in DnaDomain::ALL {
                assert_eq!(entitlement(plan, Feature::DnaDomain(domain)), Ok(()));
            }
            assert_eq!(entitlement(plan, Feature::DnaExplanation), Ok(()));
        }
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
