//! Signing JWTs with the current key of the ring: the header and claims are encoded
//! exactly as `jsonwebtoken::encode` does, and signed with the key parsed once for ring.
//! Signing RS256 costs about a millisecond of CPU: callers on the async runtime go
//! through the background pool (`UsersService`), not here directly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::Claims;
use super::keys::{KeyRing, SigningKey};
use crate::users::UsersError;

/// An RS256 JWT of `claims`, with the signing key's `kid` in the header and the type
/// of the JWT profile for OAuth 2.0 access tokens (RFC 9068 §2.1, `at+jwt`).
pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String, UsersError> {
    sign_jwt(&ring.current, "at+jwt", claims)
}

/// A JWT of `claims` signed by `key`, with header `typ` and the key's `kid`.
pub fn sign_jwt<T: Serialize + ?Sized>(
    key: &SigningKey,
    typ: &str,
    claims: &T,
) -> Result<String, UsersError> {
    let payload = serde_json::to_vec(claims).map_err(|e| failed(&e))?;
    sign_payload(key, typ, &payload)
}

/// A JWT of the JSON `payload` (already serialized) signed by `key`.
pub fn sign_payload(key: &SigningKey, typ: &str, payload: &[u8]) -> Result<String, UsersError> {
    let alg = key
        .signer
        .as_ref()
        .map_or(Algorithm::RS256, |s| s.algorithm());
    let mut header = Header::new(alg);
    header.typ = Some(typ.to_string());
    header.kid = Some(key.kid.clone());
    let Some(signer) = &key.signer else {
        let claims: serde_json::Value = serde_json::from_slice(payload).map_err(|e| failed(&e))?;
        return jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| failed(&e));
    };
    let mut jwt = b64_json(&header).map_err(|e| failed(&e))?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jwt);
    let signature = signer.sign_bytes(jwt.as_bytes()).map_err(|e| failed(&e))?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
    Ok(jwt)
}

fn failed(e: &dyn std::fmt::Display) -> UsersError {
    UsersError::Internal(format!("signing failed: {e}"))
}

/// Base64url of a value's JSON (a JWS header or payload).
fn b64_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::auth::keys::load_pem;

    /// A fresh 2048-bit key, as the server generates them.
    fn key() -> SigningKey {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = crate::auth::keys::generate_into(dir.path()).expect("key");
        load_pem(&std::fs::read(path).expect("read"), 0, None).expect("load")
    }

    fn claims() -> Claims {
        Claims {
            iss: "https://sipreg.test".into(),
            aud: vec!["sip".into()],
            username: "alice".into(),
            scope: "sip:register".into(),
            ..Claims::for_test("u1", "j1", crate::auth::now() + 600)
        }
    }

    #[test]
    fn ring_signs_the_same_token_jsonwebtoken_does() {
        crate::auth::crypto::install();
        let key = key();
        let ring = KeyRing {
            keys: vec![],
            current: std::sync::Arc::new(key),
        };
        let token = sign(&ring, &claims()).expect("sign");
        // RSASSA-PKCS1-v1_5 is deterministic: the same header, claims and key give the
        // same bytes as jsonwebtoken's encoder with the RustCrypto backend used before.
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(ring.current.kid.clone());
        let message = format!(
            "{}.{}",
            b64_json(&header).expect("header"),
            b64_json(&claims()).expect("claims")
        );
        let rust_crypto = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory;
        let reference = rust_crypto(&Algorithm::RS256, &ring.current.encoding)
            .expect("signer")
            .try_sign(message.as_bytes())
            .expect("sign");
        assert_eq!(
            token,
            format!("{message}.{}", URL_SAFE_NO_PAD.encode(reference))
        );
        let decoding = DecodingKey::from_jwk(&ring.current.jwk).expect("jwk");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["sip"]);
        let back = jsonwebtoken::decode::<Claims>(&token, &decoding, &v).expect("verify");
        assert_eq!(back.claims.username, "alice");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        // A flipped signature byte is refused.
        let mut bad = token.into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        assert!(jsonwebtoken::decode::<Claims>(&bad, &decoding, &v).is_err());
    }
}
