//! Authentication primitives: password hashing, TOTP, throttling, random secrets and hashes.

pub mod password;
pub mod throttle;
pub mod totp;

use crate::error::AppError;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// `n` random bytes from the operating system, URL-safe base64 without padding.
///
/// # Errors
/// [`AppError::Internal`] if the OS has no entropy to give, which should never happen.
pub fn random_token(n: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| AppError::internal("getrandom", e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// A recovery code: 12 characters from an unambiguous 32-letter alphabet (60 bits), shown
/// as `abcd-efgh-jkmn`.
///
/// # Errors
/// [`AppError::Internal`] if the OS has no entropy to give.
pub fn recovery_code() -> Result<String, AppError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut buf = [0u8; 12];
    getrandom::fill(&mut buf).map_err(|e| AppError::internal("getrandom", e.to_string()))?;
    let chars: Vec<char> = buf.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
    Ok(chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
}

/// SHA-256 of a secret, hex: how session ids, API tokens and recovery codes are stored.
/// They are long random values, so a fast hash suffices (no dictionary to attack).
#[must_use]
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
#[must_use]
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Normalises an email for storage and lookup: trimmed, lower-cased.
#[must_use]
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A short, stable, non-reversible tag of an email for logs (fail2ban lines): the first
/// 8 hex digits of its SHA-256. Logs never carry the address itself.
#[must_use]
pub fn email_tag(email: &str) -> String {
    sha256_hex(&normalise_email(email)).chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32).unwrap());
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("abc", "ab"));
        assert_eq!(normalise_email("  Kim@Example.COM "), "kim@example.com");
        assert_eq!(email_tag("KIM@example.com"), email_tag("kim@example.com"));
    }
}
