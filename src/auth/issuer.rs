//! Signing access tokens with the current key of the ring.

use jsonwebtoken::{Algorithm, Header};

use super::Claims;
use super::keys::KeyRing;
use crate::users::UsersError;

/// An RS256 JWT of `claims`, with the signing key's `kid` in the header and the type
/// of the JWT profile for OAuth 2.0 access tokens (RFC 9068 §2.1, `at+jwt`).
pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String, UsersError> {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".to_string());
    header.kid = Some(ring.current.kid.clone());
    jsonwebtoken::encode(&header, claims, &ring.current.encoding)
        .map_err(|e| UsersError::Internal(format!("token signing failed: {e}")))
}
