//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` would hand the code's
//! proof to whoever sees the authorization request, so it is refused.

use base64::Engine;

use crate::auth::secret;

/// The one transform sipreg accepts.
pub const S256: &str = "S256";

/// Whether `challenge` has the shape of an S256 challenge: the 43-character
/// unpadded base64url of a SHA-256 (RFC 7636 §4.2).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 §4.1) hashes to
/// `challenge`.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    shaped && secret::ct_eq(&challenge_of(verifier), challenge)
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret::sha256(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert!(valid_challenge(challenge));
        assert!(verify(verifier, challenge));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        // Too short a verifier is refused even if it matched.
        assert!(!verify("short", &challenge_of("short")));
        assert!(!valid_challenge("plain-text-challenge"));
    }
}
