//! Where everything goes: a report laid out as A4 pages of drawing
//! operations, and the document's logical structure (headings, paragraphs,
//! tables, figures) pointing at the operations that show it, for the PDF's
//! tag tree. Laying out first, drawing after, is what lets every page's
//! footer say "page 3 of 7".

use crate::fonts::Face;
use crate::{Chart, Column, KpiRow, Report, ReportError, Section, Table};

pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;
pub const MARGIN: f32 = 48.0;
/// Content stops here; the footer lives below.
const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - 66.0;
pub const FOOTER_BASELINE: f32 = PAGE_HEIGHT - 34.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

pub const INK: [u8; 3] = [0x1c, 0x17, 0x13];
pub const SAND: [u8; 3] = [0xf3, 0xe9, 0xdc];
pub const MUTED: [u8; 3] = [0x6b, 0x61, 0x58];
const RULE: [u8; 3] = [0xe3, 0xda, 0xd0];
const STRIPE: [u8; 3] = [0xfa, 0xf6, 0xf1];

const TABLE_TEXT: f32 = 9.0;
const ROW_HEIGHT: f32 = 18.0;
const HEADER_HEIGHT: f32 = 20.0;

/// One drawing operation, in points from the page's top left.
#[derive(Debug, Clone)]
pub enum Op {
    Text {
        x: f32,
        /// The baseline.
        y: f32,
        size: f32,
        face: Face,
        color: [u8; 3],
        text: String,
        /// Part of the document (tagged), or decoration and pagination
        /// (an artifact: a repeated header, a cover band's label).
        content: bool,
    },
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        color: [u8; 3],
    },
    Line {
        points: Vec<(f32, f32)>,
        color: [u8; 3],
        width: f32,
        dashed: bool,
    },
    /// The Coliseum mark, `size` points square.
    Mark { x: f32, y: f32, size: f32 },
    /// A brand's logo (PNG), `width` × `height` points.
    Logo {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        png: Vec<u8>,
    },
    /// A QR code's dark modules, `size` points square.
    Qr {
        x: f32,
        y: f32,
        size: f32,
        modules: Vec<bool>,
        width: usize,
    },
    /// Operations read as one image (its description is in the structure).
    Figure { ops: Vec<Op> },
}

/// An operation by page and position: a leaf of the structure.
pub type Leaf = (usize, usize);

/// The document's logical structure, in reading order.
#[derive(Debug, Clone)]
pub enum Node {
    Heading {
        level: u16,
        title: String,
        leaves: Vec<Leaf>,
    },
    Paragraph(Vec<Leaf>),
    Figure {
        alt: String,
        leaf: Leaf,
    },
    Table {
        header: Vec<Leaf>,
        rows: Vec<Vec<Leaf>>,
    },
}

#[derive(Debug, Default)]
pub struct Pages {
    pub pages: Vec<Vec<Op>>,
    pub structure: Vec<Node>,
}

struct Layout {
    out: Pages,
    /// Where the next block starts on the current page.
    y: f32,
    accent: [u8; 3],
}

pub fn lay_out(report: &Report) -> Result<Pages, ReportError> {
    let mut layout = Layout {
        out: Pages::default(),
        y: MARGIN,
        accent: report.brand.accent,
    };
    layout.new_page();
    layout.cover(report);
    for section in &report.sections {
        match section {
            Section::Kpis { heading, rows } => layout.table(&kpi_table(heading, rows)),
            Section::Chart(chart) => layout.chart(chart),
            Section::Scores { heading, overall, bars } => layout.scores(heading, overall, bars),
            Section::Table(table) => layout.table(table),
            Section::Text { heading, text } => {
                if let Some(heading) = heading {
                    layout.heading(heading, 40.0);
                }
                layout.paragraph(text, Face::Sans, 10.0, MUTED);
                layout.y += 8.0;
            }
        }
    }
    if let Some(share) = &report.share {
        layout.share(&share.url, &share.expiry)?;
    }
    Ok(layout.out)
}

fn kpi_table(heading: &str, rows: &[KpiRow]) -> Table {
    Table {
        heading: heading.to_owned(),
        columns: vec![
            Column::text("Metric", 0.34),
            Column::number("This period", 0.24),
            Column::number("Previous period", 0.24),
            Column::number("Change", 0.18),
        ],
        rows: rows
            .iter()
            .map(|r| vec![r.label.clone(), r.value.clone(), r.previous.clone(), r.change.clone()])
            .collect(),
        note: None,
    }
}

/// `text` broken into lines of at most `width` points: at spaces, and
/// within a word only when the word alone is too long (a URL).
pub fn wrap(text: &str, face: Face, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if face.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            line.push(c);
            if face.width(&line, size) > width {
                line.pop();
                lines.push(std::mem::take(&mut line));
                line.push(c);
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

impl Layout {
    fn page_index(&self) -> usize {
        self.out.pages.len() - 1
    }

    fn new_page(&mut self) {
        self.out.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn room(&mut self, height: f32) -> bool {
        if self.y + height > CONTENT_BOTTOM {
            self.new_page();
            true
        } else {
            false
        }
    }

    fn push(&mut self, op: Op) -> Leaf {
        let page = self.page_index();
        self.out.pages[page].push(op);
        (page, self.out.pages[page].len() - 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f32, y: f32, size: f32, face: Face, color: [u8; 3], text: &str, content: bool) -> Leaf {
        self.push(Op::Text {
            x,
            y,
            size,
            face,
            color,
            text: clean(text),
            content,
        })
    }

    fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, color: [u8; 3]) {
        self.push(Op::Rect {
            x,
            y,
            width,
            height,
            color,
        });
    }

    fn cover(&mut self, report: &Report) {
        let band = 176.0;
        self.rect(0.0, 0.0, PAGE_WIDTH, band, INK);
        self.rect(0.0, band, PAGE_WIDTH, 4.0, self.accent);
        let logo = report
            .brand
            .logo_png
            .as_ref()
            .and_then(|png| crate::check_logo(png).ok().map(|size| (png, size)));
        let brand_x = if let Some((png, (width, height))) = logo {
            // 40 points tall, at most 160 wide.
            let scale = (40.0 / height as f32).min(160.0 / width as f32);
            let (width, height) = (width as f32 * scale, height as f32 * scale);
            let alt = format!("{} logo", report.brand.name);
            let leaf = self.push(Op::Figure {
                ops: vec![Op::Logo {
                    x: MARGIN,
                    y: 34.0 + (40.0 - height) / 2.0,
                    width,
                    height,
                    png: png.clone(),
                }],
            });
            self.out.structure.push(Node::Figure { alt, leaf });
            MARGIN + width + 12.0
        } else if report.brand.coliseum_mark {
            self.push(Op::Mark {
                x: MARGIN,
                y: 34.0,
                size: 40.0,
            });
            MARGIN + 52.0
        } else {
            self.rect(MARGIN, 34.0, 8.0, 40.0, self.accent);
            MARGIN + 20.0
        };
        let brand = self.text(brand_x, 61.0, 16.0, Face::Display, SAND, &report.brand.name, true);
        self.out.structure.push(Node::Paragraph(vec![brand]));
        let title = self.text(MARGIN, 104.0, 12.0, Face::Display, self.accent, &report.title, true);
        let subject_text = Face::SansBold.fit(&report.subject, 24.0, CONTENT_WIDTH);
        let subject = self.text(MARGIN, 134.0, 24.0, Face::SansBold, [0xff; 3], &subject_text, true);
        self.out.structure.push(Node::Heading {
            level: 1,
            title: format!("{}: {}", report.title, report.subject),
            leaves: vec![title, subject],
        });
        let period = self.text(MARGIN, 158.0, 10.0, Face::Sans, SAND, &report.period, true);
        self.out.structure.push(Node::Paragraph(vec![period]));
        self.y = band + 30.0;
        let mut facts = Vec::new();
        if !report.filters.is_empty() {
            let filters: Vec<String> = report.filters.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            facts.push(format!("Filters: {}", filters.join(" · ")));
        }
        facts.push(format!(
            "Data as of {} (watermark {}). Generated {}.",
            report.as_of, report.watermark, report.generated_at
        ));
        facts.push(report.scoring.clone());
        for fact in facts {
            self.paragraph(&fact, Face::Sans, 9.0, MUTED);
        }
        self.y += 10.0;
    }

    /// Running text, wrapped to the content width, one paragraph.
    fn paragraph(&mut self, text: &str, face: Face, size: f32, color: [u8; 3]) {
        let mut leaves = Vec::new();
        for line in wrap(&clean(text), face, size, CONTENT_WIDTH) {
            self.room(size * 1.5);
            self.y += size * 1.2;
            leaves.push(self.text(MARGIN, self.y, size, face, color, &line, true));
            self.y += size * 0.3;
        }
        if !leaves.is_empty() {
            self.out.structure.push(Node::Paragraph(leaves));
        }
    }

    /// A section's heading, kept on one page with `keep_with` points of
    /// what follows it.
    fn heading(&mut self, text: &str, keep_with: f32) {
        self.room(34.0 + keep_with);
        self.y += 20.0;
        let leaf = self.text(MARGIN, self.y, 13.0, Face::Display, self.accent, text, true);
        self.y += 6.0;
        self.push(Op::Line {
            points: vec![(MARGIN, self.y), (PAGE_WIDTH - MARGIN, self.y)],
            color: RULE,
            width: 0.75,
            dashed: false,
        });
        self.y += 8.0;
        self.out.structure.push(Node::Heading {
            level: 2,
            title: text.to_owned(),
            leaves: vec![leaf],
        });
    }

    fn table(&mut self, table: &Table) {
        self.heading(&table.heading, HEADER_HEIGHT + ROW_HEIGHT * 2.0);
        let total: f32 = table.columns.iter().map(|c| c.width).sum::<f32>().max(f32::EPSILON);
        let mut x = MARGIN;
        let columns: Vec<(f32, f32, bool)> = table
            .columns
            .iter()
            .map(|c| {
                let width = c.width / total * CONTENT_WIDTH;
                let at = (x, width, c.numeric);
                x += width;
                at
            })
            .collect();
        let header = self.table_header(table, &columns, true);
        let mut rows = Vec::new();
        for (i, row) in table.rows.iter().enumerate() {
            // A row never splits: a page break repeats the header instead.
            if self.room(ROW_HEIGHT) {
                self.table_header(table, &columns, false);
            }
            if i % 2 == 1 {
                self.rect(MARGIN, self.y, CONTENT_WIDTH, ROW_HEIGHT, STRIPE);
            }
            let baseline = self.y + ROW_HEIGHT - 5.5;
            let mut cells = Vec::new();
            for (&(x, width, numeric), cell) in columns.iter().zip(row) {
                let text = if cell.trim().is_empty() { "–" } else { cell.as_str() };
                cells.push(self.cell(x, width, numeric, baseline, Face::Sans, INK, text, true));
            }
            rows.push(cells);
            self.y += ROW_HEIGHT;
        }
        self.push(Op::Line {
            points: vec![(MARGIN, self.y), (PAGE_WIDTH - MARGIN, self.y)],
            color: RULE,
            width: 0.75,
            dashed: false,
        });
        self.out.structure.push(Node::Table { header, rows });
        self.y += 6.0;
        if let Some(note) = &table.note {
            self.paragraph(note, Face::Sans, 8.0, MUTED);
        }
        self.y += 6.0;
    }

    /// The header row; `content` for its first showing (a repeat on a later
    /// page is pagination, not more of the table).
    fn table_header(&mut self, table: &Table, columns: &[(f32, f32, bool)], content: bool) -> Vec<Leaf> {
        self.rect(MARGIN, self.y, CONTENT_WIDTH, HEADER_HEIGHT, INK);
        let baseline = self.y + HEADER_HEIGHT - 6.5;
        let mut leaves = Vec::new();
        for (&(x, width, numeric), column) in columns.iter().zip(&table.columns) {
            leaves.push(self.cell(
                x,
                width,
                numeric,
                baseline,
                Face::SansBold,
                SAND,
                &column.title,
                content,
            ));
        }
        self.y += HEADER_HEIGHT;
        leaves
    }

    #[allow(clippy::too_many_arguments)]
    fn cell(
        &mut self,
        x: f32,
        width: f32,
        numeric: bool,
        baseline: f32,
        face: Face,
        color: [u8; 3],
        text: &str,
        content: bool,
    ) -> Leaf {
        let padding = 6.0;
        let text = face.fit(&clean(text), TABLE_TEXT, width - 2.0 * padding);
        let at = if numeric {
            x + width - padding - face.width(&text, TABLE_TEXT)
        } else {
            x + padding
        };
        self.text(at, baseline, TABLE_TEXT, face, color, &text, content)
    }

    fn chart(&mut self, chart: &Chart) {
        let height = 150.0;
        self.heading(&chart.heading, height + 30.0);
        let top = self.y + 10.0;
        let (left, right) = (MARGIN + 40.0, PAGE_WIDTH - MARGIN);
        let bottom = top + height;
        let max = chart
            .values
            .iter()
            .chain(&chart.previous)
            .copied()
            .fold(0.0_f64, f64::max)
            .max(1.0);
        let line_of = |values: &[f64]| -> Vec<(f32, f32)> {
            let steps = values.len().saturating_sub(1).max(1) as f32;
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let x = left + (right - left) * i as f32 / steps;
                    let y = bottom - (height * (v / max) as f32);
                    (x, y)
                })
                .collect()
        };
        let mut ops = vec![
            Op::Line {
                points: vec![(left, top), (left, bottom), (right, bottom)],
                color: RULE,
                width: 1.0,
                dashed: false,
            },
            Op::Line {
                points: vec![(left, top), (right, top)],
                color: RULE,
                width: 0.5,
                dashed: true,
            },
        ];
        if chart.previous.len() > 1 {
            ops.push(Op::Line {
                points: line_of(&chart.previous),
                color: MUTED,
                width: 1.0,
                dashed: true,
            });
        }
        if chart.values.len() > 1 {
            ops.push(Op::Line {
                points: line_of(&chart.values),
                color: self.accent,
                width: 2.0,
                dashed: false,
            });
        }
        let label = |x: f32, y: f32, text: &str| Op::Text {
            x,
            y,
            size: 8.0,
            face: Face::Sans,
            color: MUTED,
            text: clean(text),
            content: false,
        };
        ops.push(label(MARGIN, top + 3.0, &chart.max_label));
        ops.push(label(MARGIN, bottom + 3.0, "0"));
        ops.push(label(left, bottom + 14.0, &chart.first_label));
        let last_width = Face::Sans.width(&chart.last_label, 8.0);
        ops.push(label(right - last_width, bottom + 14.0, &chart.last_label));
        ops.push(label(
            left + (right - left) / 2.0 - 60.0,
            bottom + 14.0,
            "— this period   - - previous",
        ));
        let alt = clean(&chart.description);
        let leaf = self.push(Op::Figure { ops });
        self.out.structure.push(Node::Figure { alt, leaf });
        self.y = bottom + 30.0;
    }

    fn scores(&mut self, heading: &str, overall: &str, bars: &[crate::ScoreBar]) {
        self.heading(heading, 24.0 * bars.len() as f32 + 24.0);
        self.y += 14.0;
        let leaf = self.text(MARGIN, self.y, 12.0, Face::SansBold, INK, overall, true);
        self.out.structure.push(Node::Paragraph(vec![leaf]));
        self.y += 10.0;
        let (bar_x, bar_width) = (MARGIN + 130.0, CONTENT_WIDTH - 130.0 - 60.0);
        for bar in bars {
            self.room(24.0);
            let baseline = self.y + 15.0;
            let name = self.text(MARGIN, baseline, 10.0, Face::Sans, INK, &bar.name, true);
            self.rect(bar_x, self.y + 5.0, bar_width, 12.0, RULE);
            let filled = bar_width * (bar.score.clamp(0.0, 100.0) / 100.0) as f32;
            if filled > 0.0 {
                self.rect(bar_x, self.y + 5.0, filled, 12.0, self.accent);
            }
            let label_width = Face::SansBold.width(&bar.label, 10.0);
            let label = self.text(
                PAGE_WIDTH - MARGIN - label_width,
                baseline,
                10.0,
                Face::SansBold,
                INK,
                &bar.label,
                true,
            );
            self.out.structure.push(Node::Paragraph(vec![name, label]));
            self.y += 24.0;
        }
        self.y += 8.0;
    }

    /// The link's panel: its QR code beside the address and its expiry.
    fn share(&mut self, url: &str, expiry: &str) -> Result<(), ReportError> {
        let size = 120.0;
        self.heading("Open this report online", size + 20.0);
        let top = self.y + 8.0;
        let (modules, width) = crate::qr::modules(url)?;
        let alt = format!("QR code of the link {url}");
        let qr = self.push(Op::Figure {
            ops: vec![
                Op::Rect {
                    x: MARGIN,
                    y: top,
                    width: size,
                    height: size,
                    color: [0xff; 3],
                },
                Op::Qr {
                    x: MARGIN,
                    y: top,
                    size,
                    modules,
                    width,
                },
            ],
        });
        self.out.structure.push(Node::Figure { alt, leaf: qr });
        let text_x = MARGIN + size + 18.0;
        let text_width = PAGE_WIDTH - MARGIN - text_x;
        let mut leaves = Vec::new();
        let mut y = top + 18.0;
        leaves.push(self.text(text_x, y, 10.0, Face::Sans, INK, "Scan the code or open:", true));
        for line in wrap(url, Face::SansBold, 9.0, text_width) {
            y += 14.0;
            leaves.push(self.text(text_x, y, 9.0, Face::SansBold, self.accent, &line, true));
        }
        y += 18.0;
        leaves.push(self.text(text_x, y, 9.0, Face::Sans, MUTED, expiry, true));
        self.out.structure.push(Node::Paragraph(leaves));
        self.y = top + size + 12.0;
        Ok(())
    }
}

/// Text as it may be printed: no control characters (names come from the
/// event log, which anyone with the webhook secret writes to).
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
