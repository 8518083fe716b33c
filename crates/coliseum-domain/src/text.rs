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

/// Whether `text` shows nothing: only white space and characters that take
/// no room (zero-width spaces and joiners, the word joiner, the byte-order
/// mark, soft hyphens, directional marks, tag characters). A display name
/// made of them would be an empty line on a leaderboard, or one that looks
/// like another artist's when prefixed to it.
pub fn is_invisible(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{034F}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{FEFF}'
                    | '\u{E0000}'..='\u{E007F}'
            )
    })
}

/// What a field error says about such text.
pub const FORBIDDEN_CHARS: &str = "must not contain control characters, line separators or bidirectional overrides";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_of_only_zero_width_characters_is_invisible() {
        for invisible in [
            "",
            " ",
            "\u{200B}",
            "\u{FEFF}\u{2060}",
            " \u{00AD} ",
            "\u{E0041}\u{E0042}",
        ] {
            assert!(is_invisible(invisible), "{invisible:?}");
        }
        for visible in ["Tems", "\u{200B}Tems", "\u{05D0}\u{200F}", "é", "东京"] {
            assert!(!is_invisible(visible), "{visible:?}");
        }
    }

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
