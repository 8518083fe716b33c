//! The report's fonts, embedded in the binary: Cinzel (the dashboard's
//! Roman-inscription display face, SIL Open Font License) for headings,
//! DejaVu Sans (free licence, wide script coverage: names arrive from the
//! event log in any language) for everything else. The PDF embeds only
//! the glyphs a report uses.

use std::sync::OnceLock;

use krilla::text::Font;

static CINZEL: &[u8] = include_bytes!("../fonts/cinzel-700.ttf");
static SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Display,
    Sans,
    SansBold,
}

impl Face {
    fn data(self) -> &'static [u8] {
        match self {
            Self::Display => CINZEL,
            Self::Sans => SANS,
            Self::SansBold => SANS_BOLD,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Display => 0,
            Self::Sans => 1,
            Self::SansBold => 2,
        }
    }

    /// The face for krilla to draw with.
    pub fn font(self) -> Font {
        static FONTS: OnceLock<[Font; 3]> = OnceLock::new();
        let fonts = FONTS.get_or_init(|| {
            [Face::Display, Face::Sans, Face::SansBold].map(|face| {
                #[allow(clippy::expect_used)]
                Font::new(face.data().into(), 0).expect("an embedded font parses")
            })
        });
        fonts[self.index()].clone()
    }

    /// The width of `text` set in this face at `size` points: the sum of
    /// its glyphs' advances (kerning aside, a fraction of a point).
    pub fn width(self, text: &str, size: f32) -> f32 {
        static FACES: OnceLock<[ttf_parser::Face<'static>; 3]> = OnceLock::new();
        let faces = FACES.get_or_init(|| {
            [Face::Display, Face::Sans, Face::SansBold].map(|face| {
                #[allow(clippy::expect_used)]
                ttf_parser::Face::parse(face.data(), 0).expect("an embedded font parses")
            })
        });
        let face = &faces[self.index()];
        let units: f32 = text
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|glyph| face.glyph_hor_advance(glyph))
                    .map_or(0.0, f32::from)
            })
            .sum();
        units * size / f32::from(face.units_per_em())
    }

    /// `text` cut to fit `width` points at `size`, ending in "…" when cut.
    pub fn fit(self, text: &str, size: f32, width: f32) -> String {
        if self.width(text, size) <= width {
            return text.to_owned();
        }
        let mut kept: String = text.to_owned();
        while !kept.is_empty() && self.width(&format!("{kept}…"), size) > width {
            kept.pop();
        }
        format!("{}…", kept.trim_end())
    }
}
