//! Dimension values (city, genre): senders disagree on case and spacing, so
//! values are compared by a normalized key while the original spelling is kept
//! for display.

/// A dimension value as the engine compares it, with the spelling it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// Trimmed and lower-cased: the form stored, compared and filtered on.
    pub key: String,
    /// The value as the sender wrote it, trimmed.
    pub display: String,
}

impl Dimension {
    /// `None` when nothing is left after trimming.
    pub fn parse(raw: &str) -> Option<Self> {
        let display = raw.trim();
        if display.is_empty() {
            return None;
        }
        Some(Self {
            key: normalize(display),
            display: display.to_owned(),
        })
    }
}

/// The comparison key of a dimension value: trimmed and lower-cased.
pub fn normalize(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_city_share_a_key() {
        let keys: Vec<String> = ["Lagos", "lagos ", " LAGOS"]
            .iter()
            .map(|s| Dimension::parse(s).map(|d| d.key).unwrap_or_default())
            .collect();
        assert_eq!(keys, ["lagos", "lagos", "lagos"]);
        assert_eq!(Dimension::parse("lagos ").map(|d| d.display).as_deref(), Some("lagos"));
        assert_eq!(Dimension::parse("   "), None);
    }

    #[test]
    fn non_ascii_is_lower_cased_too() {
        assert_eq!(normalize(" SÃO PAULO "), "são paulo");
    }
}
