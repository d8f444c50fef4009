//! What the token validator reads of a compact JWT before any key or signature is
//! looked at (`auth::validator::peek_jwt`: segments, `alg`, `kid`, `iss`), then the
//! claims as sipreg decodes them (`auth::Claims`). Checks:
//! - only RS256, ES256 and EdDSA pass (never `none`, HS*), only with three segments;
//! - a refused algorithm is reported in at most 16 characters (it reaches logs);
//! - decoded claims encode and decode back to the same claims.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use sipreg::auth::validator::{MAX_TOKEN_LEN, peek_jwt};
use sipreg::auth::{AuthError, Claims};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    // `Validator::validate_cached` refuses these before reading them.
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return;
    }
    match peek_jwt(token) {
        Ok(p) => {
            assert_eq!(token.split('.').count(), 3);
            let alg = format!("{:?}", p.alg);
            assert!(matches!(alg.as_str(), "RS256" | "ES256" | "EdDSA"), "{alg}");
        }
        Err(AuthError::AlgorithmNotAllowed(a)) => {
            assert!(a.chars().count() <= 16, "{a:?}");
            assert!(!matches!(a.as_str(), "RS256" | "ES256" | "EdDSA"));
        }
        Err(e) => assert!(matches!(e, AuthError::Malformed), "{e:?}"),
    }
    // The claims segment as `jsonwebtoken::decode` reads it once a signature matched.
    let Some(payload) = token.split('.').nth(1) else {
        return;
    };
    let Ok(json) = URL_SAFE_NO_PAD.decode(payload) else {
        return;
    };
    if let Ok(claims) = serde_json::from_slice::<Claims>(&json) {
        let encoded = serde_json::to_vec(&claims).expect("claims always encode");
        let back: Claims = serde_json::from_slice(&encoded).expect("encoded claims decode");
        assert_eq!(back, claims);
    }
});
