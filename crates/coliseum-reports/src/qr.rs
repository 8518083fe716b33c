//! QR codes of share links: as SVG for pages, as PNG for chat apps and
//! mail clients that show no SVG, and as modules for the PDF to draw as
//! vectors. Error correction at level M (15 %): survives a crease or a
//! smudge on paper, keeps a typical link at version 5 or below.

use qrcode::{Color, EcLevel, QrCode};

use crate::ReportError;

/// Modules of quiet zone around a code, as the standard asks.
const QUIET_ZONE: usize = 4;

fn code(text: &str) -> Result<QrCode, ReportError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| ReportError::Qr(e.to_string()))
}

/// The code's modules, row by row (`true`: dark), and its width in modules.
pub fn modules(text: &str) -> Result<(Vec<bool>, usize), ReportError> {
    let code = code(text)?;
    let width = code.width();
    Ok((code.to_colors().into_iter().map(|c| c == Color::Dark).collect(), width))
}

/// The code as an SVG document, dark on white, with its quiet zone.
pub fn svg(text: &str) -> Result<String, ReportError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(240, 240)
        .build())
}

/// The code as a greyscale PNG, `scale` pixels per module, quiet zone included.
pub fn png(text: &str, scale: usize) -> Result<Vec<u8>, ReportError> {
    let (modules, width) = modules(text)?;
    let scale = scale.clamp(1, 32);
    let side = (width + 2 * QUIET_ZONE) * scale;
    let mut pixels = vec![0xff_u8; side * side];
    for (i, dark) in modules.iter().enumerate() {
        if !dark {
            continue;
        }
        let (column, row) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
        for dy in 0..scale {
            let start = (row * scale + dy) * side + column * scale;
            pixels[start..start + scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let side_u32 = u32::try_from(side).map_err(|e| ReportError::Qr(e.to_string()))?;
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| ReportError::Qr(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| ReportError::Qr(e.to_string()))?;
    writer.finish().map_err(|e| ReportError::Qr(e.to_string()))?;
    Ok(out)
}
