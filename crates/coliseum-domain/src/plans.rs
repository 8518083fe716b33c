//! Roles and plans: who a user is and what they pay for. The entitlement
//! matrix of PLANS.md grows here as the server enforces it.

use std::fmt;
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
