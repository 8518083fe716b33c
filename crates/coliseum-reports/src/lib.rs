//! Reports as documents: a [`Report`] (what to say, already worded and
//! formatted by the server from the API's own bodies) laid out on A4 pages
//! and written as a tagged PDF, and QR codes as SVG, PNG or PDF vectors.
//!
//! Invariant: no I/O and no knowledge of the engine. The server decides
//! every figure and every word; this crate decides only where they go, so
//! a report's figures are the API's by construction.

mod draw;
mod fonts;
mod layout;
pub mod qr;

/// A report as it is to be printed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The kind of report, as the cover names it ("Artist report").
    pub title: String,
    /// What the report is about: an artist's or live event's display name,
    /// a board's name, or the platform.
    pub subject: String,
    /// The period in words, with its instants.
    pub period: String,
    /// Filters in force, as (name, value).
    pub filters: Vec<(String, String)>,
    /// The instant the data is complete up to, and the log position.
    pub as_of: String,
    pub watermark: i64,
    /// When the report was made.
    pub generated_at: String,
    /// The scoring configuration the DNA figures follow.
    pub scoring: String,
    pub brand: Brand,
    /// Words printed across every page (Basic's "Coliseum Basic").
    pub watermark_text: Option<String>,
    /// The report's share link, printed with its QR code.
    pub share: Option<ShareLink>,
    pub sections: Vec<Section>,
}

/// Whose report it is: Coliseum's, or an Enterprise account's own.
#[derive(Debug, Clone)]
pub struct Brand {
    /// The name on the cover and in the footer.
    pub name: String,
    /// The accent colour (RGB).
    pub accent: [u8; 3],
    /// Whether the Coliseum mark is drawn (a custom brand replaces it).
    pub coliseum_mark: bool,
    /// The brand's logo (PNG), drawn in the mark's place.
    pub logo_png: Option<Vec<u8>>,
}

impl Brand {
    /// Coliseum's own: the mark and Coliseum orange.
    pub fn coliseum() -> Self {
        Self {
            name: "Coliseum".to_owned(),
            accent: ORANGE,
            coliseum_mark: true,
            logo_png: None,
        }
    }
}

/// Logos at most this large, in bytes and in pixels a side.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
pub const MAX_LOGO_PIXELS: u32 = 2_048;

/// The size in pixels of a PNG logo that reports can draw; an error that
/// says why not otherwise.
pub fn check_logo(png: &[u8]) -> Result<(u32, u32), ReportError> {
    if png.len() > MAX_LOGO_BYTES {
        return Err(ReportError::Logo(format!(
            "is larger than {} KB",
            MAX_LOGO_BYTES / 1024
        )));
    }
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(ReportError::Logo("is not a PNG image".to_owned()));
    }
    // Decoded whole here: a PNG whose header reads but whose data does not
    // would otherwise fail every report drawn with it.
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .map_err(|e| ReportError::Logo(format!("cannot be read: {e}")))?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width == 0 || height == 0 || width > MAX_LOGO_PIXELS || height > MAX_LOGO_PIXELS {
        return Err(ReportError::Logo(format!(
            "must be 1 to {MAX_LOGO_PIXELS} pixels a side (it is {width} × {height})"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ReportError::Logo("is too large to decode".to_owned()))?;
    let mut pixels = vec![0; size];
    reader
        .next_frame(&mut pixels)
        .map_err(|e| ReportError::Logo(format!("cannot be read: {e}")))?;
    krilla::image::Image::from_png(png.to_vec().into(), true)
        .map_err(|e| ReportError::Logo(format!("cannot be read: {e}")))?;
    Ok((width, height))
}

/// Coliseum orange.
pub const ORANGE: [u8; 3] = [0xff, 0x7a, 0x1a];

#[derive(Debug, Clone)]
pub struct ShareLink {
    pub url: String,
    /// When the link stops working, in words ("until 2026-12-12 08:00 UTC").
    pub expiry: String,
}

/// One part of a report, in reading order.
#[derive(Debug, Clone)]
pub enum Section {
    /// Key figures against the previous period of the same length.
    Kpis { heading: String, rows: Vec<KpiRow> },
    /// A series as a line chart, with the previous period under it.
    Chart(Chart),
    /// DNA domain scores (0–100) as bars.
    Scores {
        heading: String,
        /// The overall score, in words ("Overall 71.4").
        overall: String,
        bars: Vec<ScoreBar>,
    },
    /// A table that continues across pages, its header repeated.
    Table(Table),
    /// A paragraph of running text.
    Text { heading: Option<String>, text: String },
}

#[derive(Debug, Clone)]
pub struct KpiRow {
    pub label: String,
    pub value: String,
    pub previous: String,
    /// The change in words ("+12.5 %", "new", "–").
    pub change: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub heading: String,
    /// The chart in words, for readers who cannot see it.
    pub description: String,
    /// Labels of the first and last points.
    pub first_label: String,
    pub last_label: String,
    /// The largest value, formatted, for the axis.
    pub max_label: String,
    pub values: Vec<f64>,
    pub previous: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct ScoreBar {
    pub name: String,
    /// 0–100.
    pub score: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub heading: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    /// A line under the table (why it stops where it does).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    /// Share of the table's width.
    pub width: f32,
    pub numeric: bool,
}

impl Column {
    pub fn text(title: &str, width: f32) -> Self {
        Self {
            title: title.to_owned(),
            width,
            numeric: false,
        }
    }

    pub fn number(title: &str, width: f32) -> Self {
        Self {
            title: title.to_owned(),
            width,
            numeric: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
    #[error("the QR code could not be made: {0}")]
    Qr(String),
    #[error("the logo {0}")]
    Logo(String),
}

/// The report as a tagged PDF: A4 pages, embedded subset fonts, text that
/// can be selected and searched, a footer with page numbers and the
/// data's `as_of` and watermark on every page.
pub fn pdf(report: &Report) -> Result<Vec<u8>, ReportError> {
    let pages = layout::lay_out(report)?;
    draw::pdf(report, &pages)
}
