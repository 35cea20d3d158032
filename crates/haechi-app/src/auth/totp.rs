//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, ±1 step of clock skew) and QR codes.

use crate::error::AppError;
use totp_rs::{Builder, Secret, Totp};

const ISSUER: &str = "Haechi";

fn totp(secret_b32: &str, account: &str) -> Result<Totp, AppError> {
    let secret = Secret::try_from_base32(secret_b32).map_err(|e| AppError::internal("totp secret", e.to_string()))?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| AppError::internal("totp", e.to_string()))
}

/// A new random secret, base32.
#[must_use]
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

/// The `otpauth://` URI an authenticator app scans.
///
/// # Errors
/// [`AppError::Internal`] for a malformed secret.
pub fn uri(secret_b32: &str, account: &str) -> Result<String, AppError> {
    totp(secret_b32, account)?.to_url().map_err(|e| AppError::internal("totp url", e.to_string()))
}

/// The time step a code matches at `unix_secs` (within ±1 step), if any. The caller must
/// still make sure the step was not used before (replay).
///
/// # Errors
/// [`AppError::Internal`] for a malformed secret.
pub fn matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Result<Option<i64>, AppError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp(secret_b32, "check")?.check(&code, unix_secs).map(|s| s as i64))
}

/// The code for `unix_secs` (tests and enrolment checks).
///
/// # Errors
/// [`AppError::Internal`] for a malformed secret.
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Result<String, AppError> {
    Ok(totp(secret_b32, "check")?.generate(unix_secs).to_string())
}

/// The URI as a QR code in SVG, to show inline without any external service.
///
/// # Errors
/// [`AppError::Internal`] if the URI is too long for a QR code.
pub fn qr_svg(uri: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| AppError::internal("qr", e.to_string()))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    // Embedded in HTML pages too, where an XML declaration does not belong.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_within_skew() {
        let s = new_secret();
        let t = 1_800_000_000;
        let code = code_at(&s, t).unwrap();
        assert_eq!(matching_step(&s, &code, t).unwrap(), Some((t / 30) as i64));
        assert!(matching_step(&s, &code, t + 30).unwrap().is_some(), "one step of skew");
        assert_eq!(matching_step(&s, &code, t + 120).unwrap(), None);
        assert_eq!(matching_step(&s, "12345", t).unwrap(), None);
        assert!(uri(&s, "a@b.c").unwrap().starts_with("otpauth://totp/Haechi:a%40b.c?"));
        assert!(qr_svg("otpauth://totp/x").unwrap().contains("<svg"));
    }
}
