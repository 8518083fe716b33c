//! Rules for text people name things with (ids, dimension values, display
//! names, API key names), shared by every place that accepts one.

/// Whether `text` holds a character that no id or name may contain
/// (PASSPORT.md): a control character (U+0000–U+001F, U+007F–U+009F), which
/// corrupts logs and terminals, a line or paragraph separator (U+2028,
/// U+2029), which ends a line in logs and scripts as a newline does, or a
/// bidirectional override (U+202A–U+202E, U+2066–U+2069), which makes a
/// name display as something it is not. Directional marks (U+200E, U+200F)
/// are allowed: right-to-left names need them, and they override nothing.
pub fn has_forbidden_chars(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

/// What a field error says about such text.
pub const FORBIDDEN_CHARS: &str = "must not contain control characters, line separators or bidirectional overrides";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_forbidden_and_the_rest_of_unicode_is_not() {
        for bad in [
            "a\0b",
            "tab\there",
            "line\n",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
            "evil\u{202E}gpj.exe",
            "\u{2066}x",
            "one\u{2028}two",
            "\u{2029}",
        ] {
            assert!(has_forbidden_chars(bad), "{bad:?}");
        }
        for good in [
            "Burna Boy",
            "Beyoncé",
            "宇多田ヒカル",
            "مدينة",
            "Zoë ‎",
            "\u{200F}שלום",
            "a-b_c:d.e",
            "",
        ] {
            assert!(!has_forbidden_chars(good), "{good:?}");
        }
    }
}
