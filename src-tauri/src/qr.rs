//! QR codes for invite links.

use qrcode::QrCode;
use qrcode::render::svg;

/// `text` as an SVG QR code.
pub(crate) fn svg(text: &str) -> Result<String, String> {
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| format!("the link does not fit in a QR code: {e}"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}
