//! Laid-out pages written as a PDF with krilla: every piece of the
//! document tagged into a structure tree (headings, paragraphs, tables
//! with header cells, figures with descriptions), decoration and
//! pagination marked as artifacts, so that screen readers and text
//! extraction read the report in order (PDF/UA-1, checked by krilla's
//! validator as the document is written).

use std::collections::HashMap;
use std::num::NonZeroU16;

use krilla::Document;
use krilla::color::rgb;
use krilla::configure::{Accessibility, ConfigurationBuilder, PdfVersion};
use krilla::destination::XyzDestination;
use krilla::geom::{PathBuilder, Point, Rect, Transform};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke, StrokeDash};
use krilla::surface::Surface;
use krilla::tagging::{
    Artifact, ArtifactType, ContentTag, Identifier, Node as TagNode, SpanTag, TableHeaderScope, Tag, TagGroup, TagTree,
};
use krilla::text::TextDirection;

use crate::fonts::Face;
use crate::layout::{FOOTER_BASELINE, Leaf, MARGIN, MUTED, Node, Op, PAGE_HEIGHT, PAGE_WIDTH, Pages, clean};
use crate::{Report, ReportError};

pub fn pdf(report: &Report, pages: &Pages) -> Result<Vec<u8>, ReportError> {
    let configuration = ConfigurationBuilder::new()
        .with_version(PdfVersion::Pdf17)
        .with_accessibility_validator(Accessibility::UA1)
        .finish()
        .map_err(|e| ReportError::Pdf(format!("{e:?}")))?;
    let settings = krilla::SerializeSettings {
        configuration,
        enable_tagging: true,
        ..krilla::SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    let mut ids: HashMap<Leaf, Identifier> = HashMap::new();
    let total = pages.pages.len();
    for (index, ops) in pages.pages.iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
            .ok_or_else(|| ReportError::Pdf("the page size is invalid".to_owned()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for (at, op) in ops.iter().enumerate() {
            let tag = match op {
                Op::Text { content: true, .. } => Some(ContentTag::Span(SpanTag::empty())),
                Op::Figure { .. } => Some(ContentTag::Other),
                _ => None,
            };
            match tag {
                Some(tag) => {
                    let id = surface.start_tagged(tag);
                    draw(&mut surface, op);
                    surface.end_tagged();
                    ids.insert((index, at), id);
                }
                None => {
                    surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(ArtifactType::Layout)));
                    draw(&mut surface, op);
                    surface.end_tagged();
                }
            }
        }
        footer(&mut surface, report, index + 1, total);
        if let Some(text) = &report.watermark_text {
            watermark(&mut surface, text, report.brand.accent);
        }
        surface.finish();
        page.finish();
    }
    document.set_outline(outline(&pages.structure));
    document.set_tag_tree(tag_tree(&pages.structure, &mut ids)?);
    document.set_metadata(
        Metadata::new()
            .title(clean(&format!("{}: {}", report.title, report.subject)))
            .description(clean(&report.period))
            .creator(clean(&report.brand.name))
            .producer("Coliseum".to_owned())
            .language("en".to_owned()),
    );
    document.finish().map_err(|e| ReportError::Pdf(format!("{e:?}")))
}

fn fill(color: [u8; 3], opacity: f32) -> Fill {
    Fill {
        paint: rgb::Color::new(color[0], color[1], color[2]).into(),
        opacity: NormalizedF32::new(opacity).unwrap_or(NormalizedF32::ONE),
        rule: FillRule::NonZero,
    }
}

fn text(surface: &mut Surface<'_>, x: f32, y: f32, size: f32, face: Face, text: &str) {
    surface.draw_text(
        Point::from_xy(x, y),
        face.font(),
        size,
        text,
        false,
        TextDirection::Auto,
    );
}

fn rect(surface: &mut Surface<'_>, x: f32, y: f32, width: f32, height: f32) {
    if let Some(rect) = Rect::from_xywh(x, y, width, height) {
        let mut path = PathBuilder::new();
        path.push_rect(rect);
        if let Some(path) = path.finish() {
            surface.draw_path(&path);
        }
    }
}

fn draw(surface: &mut Surface<'_>, op: &Op) {
    match op {
        Op::Text {
            x,
            y,
            size,
            face,
            color,
            text: words,
            ..
        } => {
            surface.set_fill(Some(fill(*color, 1.0)));
            text(surface, *x, *y, *size, *face, words);
        }
        Op::Rect {
            x,
            y,
            width,
            height,
            color,
        } => {
            surface.set_fill(Some(fill(*color, 1.0)));
            surface.set_stroke(None);
            rect(surface, *x, *y, *width, *height);
        }
        Op::Line {
            points,
            color,
            width,
            dashed,
        } => {
            let mut path = PathBuilder::new();
            for (i, (x, y)) in points.iter().enumerate() {
                if i == 0 {
                    path.move_to(*x, *y);
                } else {
                    path.line_to(*x, *y);
                }
            }
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(color[0], color[1], color[2]).into(),
                    width: *width,
                    dash: dashed.then(|| StrokeDash {
                        array: vec![3.0, 2.0],
                        offset: 0.0,
                    }),
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Mark { x, y, size } => mark(surface, *x, *y, *size),
        Op::Logo {
            x,
            y,
            width,
            height,
            png,
        } => {
            // Checked when it was set; a logo that fails now is left out.
            if let (Ok(image), Some(size)) = (
                krilla::image::Image::from_png(png.clone().into(), true),
                krilla::geom::Size::from_wh(*width, *height),
            ) {
                surface.push_transform(&Transform::from_translate(*x, *y));
                surface.draw_image(image, size);
                surface.pop();
            }
        }
        Op::Qr {
            x,
            y,
            size,
            modules,
            width,
        } => {
            // The quiet zone is the white square's margin: 4 modules a side.
            let module = size / (*width as f32 + 8.0);
            surface.set_fill(Some(fill([0, 0, 0], 1.0)));
            surface.set_stroke(None);
            let mut path = PathBuilder::new();
            for (i, dark) in modules.iter().enumerate() {
                if *dark {
                    let (column, row) = ((i % width) as f32 + 4.0, (i / width) as f32 + 4.0);
                    if let Some(r) = Rect::from_xywh(x + column * module, y + row * module, module, module) {
                        path.push_rect(r);
                    }
                }
            }
            if let Some(path) = path.finish() {
                surface.draw_path(&path);
            }
        }
        Op::Figure { ops, .. } => {
            for op in ops {
                draw(surface, op);
            }
        }
    }
}

/// The Coliseum mark (the dashboard's `mark.svg`): an arena's arches on a
/// dark tile, drawn in a 64-unit square.
fn mark(surface: &mut Surface<'_>, x: f32, y: f32, size: f32) {
    let unit = size / 64.0;
    surface.push_transform(&Transform::from_row(unit, 0.0, 0.0, unit, x, y));
    surface.set_stroke(None);
    surface.set_fill(Some(fill(crate::layout::INK, 1.0)));
    rect(surface, 0.0, 0.0, 64.0, 64.0);
    surface.set_fill(Some(fill(crate::ORANGE, 1.0)));
    rect(surface, 8.0, 50.0, 48.0, 4.0);
    rect(surface, 10.0, 44.0, 44.0, 3.0);
    let mut vault = PathBuilder::new();
    vault.move_to(10.0, 18.0);
    vault.cubic_to(16.0, 12.0, 48.0, 12.0, 54.0, 18.0);
    vault.line_to(54.0, 42.0);
    vault.line_to(10.0, 42.0);
    vault.close();
    if let Some(path) = vault.finish() {
        surface.draw_path(&path);
    }
    surface.set_fill(Some(fill(crate::layout::INK, 1.0)));
    for (left, width) in [(14.0, 6.0), (25.0, 6.0), (36.0, 6.0), (47.0, 3.0)] {
        rect(surface, left, 24.0, width, 16.0);
        if width > 3.0 {
            let mut arch = PathBuilder::new();
            arch.move_to(left, 24.0);
            arch.cubic_to(left, 20.0, left + width, 20.0, left + width, 24.0);
            arch.close();
            if let Some(path) = arch.finish() {
                surface.draw_path(&path);
            }
        }
    }
    surface.pop();
}

fn footer(surface: &mut Surface<'_>, report: &Report, page: usize, total: usize) {
    surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(ArtifactType::PaginationOther)));
    surface.set_fill(Some(fill(MUTED, 1.0)));
    let mut left = format!(
        "{} · as of {} · watermark {}",
        report.brand.name, report.as_of, report.watermark
    );
    if let Some(words) = &report.watermark_text {
        left = format!("{words} · {left}");
    }
    let left = Face::Sans.fit(&clean(&left), 7.5, PAGE_WIDTH - 2.0 * MARGIN - 80.0);
    text(surface, MARGIN, FOOTER_BASELINE, 7.5, Face::Sans, &left);
    let number = format!("Page {page} of {total}");
    let width = Face::Sans.width(&number, 7.5);
    text(
        surface,
        PAGE_WIDTH - MARGIN - width,
        FOOTER_BASELINE,
        7.5,
        Face::Sans,
        &number,
    );
    surface.end_tagged();
}

/// Words across the page's middle, faint: on paper and in the text layer.
fn watermark(surface: &mut Surface<'_>, words: &str, accent: [u8; 3]) {
    surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(ArtifactType::Watermark)));
    let size = 54.0;
    let width = Face::Display.width(words, size);
    let (cx, cy) = (PAGE_WIDTH / 2.0, PAGE_HEIGHT / 2.0);
    surface.push_transform(&Transform::from_rotate_at(-35.0, cx, cy));
    surface.set_fill(Some(fill(accent, 0.14)));
    text(surface, cx - width / 2.0, cy + size / 3.0, size, Face::Display, words);
    surface.pop();
    surface.end_tagged();
}

/// Bookmarks: the report's title, its sections beneath.
fn outline(structure: &[Node]) -> Outline {
    let mut outline = Outline::new();
    let mut top: Option<OutlineNode> = None;
    for node in structure {
        let Node::Heading { level, title, leaves } = node else {
            continue;
        };
        let page = leaves.first().map_or(0, |(page, _)| *page);
        let entry = OutlineNode::new(clean(title), XyzDestination::new(page, Point::from_xy(0.0, 0.0)));
        match (level, top.as_mut()) {
            (1, _) | (_, None) => {
                if let Some(done) = top.replace(entry) {
                    outline.push_child(done);
                }
            }
            (_, Some(parent)) => parent.push_child(entry),
        }
    }
    if let Some(done) = top {
        outline.push_child(done);
    }
    outline
}

fn leaf(ids: &mut HashMap<Leaf, Identifier>, at: &Leaf) -> Result<Identifier, ReportError> {
    ids.remove(at)
        .ok_or_else(|| ReportError::Pdf(format!("the structure names an untagged operation {at:?}")))
}

fn group_of(tag: impl Into<krilla::tagging::TagKind>, children: Vec<TagNode>) -> TagNode {
    TagGroup::with_children(tag, children).into()
}

fn tag_tree(structure: &[Node], ids: &mut HashMap<Leaf, Identifier>) -> Result<TagTree, ReportError> {
    let mut tree = TagTree::new().with_lang(Some("en".to_owned()));
    for node in structure {
        let built: TagNode = match node {
            Node::Heading { level, title, leaves } => {
                let level = NonZeroU16::new(*level).unwrap_or(NonZeroU16::MIN);
                let children = leaves
                    .iter()
                    .map(|l| leaf(ids, l).map(TagNode::from))
                    .collect::<Result<_, _>>()?;
                group_of(Tag::Hn(level, Some(title.clone())), children)
            }
            Node::Paragraph(leaves) => {
                let children = leaves
                    .iter()
                    .map(|l| leaf(ids, l).map(TagNode::from))
                    .collect::<Result<_, _>>()?;
                group_of(Tag::P, children)
            }
            Node::Figure { alt, leaf: at } => group_of(Tag::Figure(Some(alt.clone())), vec![leaf(ids, at)?.into()]),
            Node::Table { header, rows } => {
                let header_cells = header
                    .iter()
                    .map(|l| Ok(group_of(Tag::TH(TableHeaderScope::Column), vec![leaf(ids, l)?.into()])))
                    .collect::<Result<Vec<_>, ReportError>>()?;
                let mut body = Vec::new();
                for row in rows {
                    let cells = row
                        .iter()
                        .map(|l| Ok(group_of(Tag::TD, vec![leaf(ids, l)?.into()])))
                        .collect::<Result<Vec<_>, ReportError>>()?;
                    body.push(group_of(Tag::TR, cells));
                }
                let mut parts = vec![group_of(Tag::THead, vec![group_of(Tag::TR, header_cells)])];
                if !body.is_empty() {
                    parts.push(group_of(Tag::TBody, body));
                }
                group_of(Tag::Table, parts)
            }
        };
        tree.push(built);
    }
    Ok(tree)
}
