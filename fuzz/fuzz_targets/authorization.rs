//! `Authorization` header values (RFC 3261 §20.7, RFC 8898) through the typed header
//! parser and what `auth::sip` reads from them: a Bearer token68, or Digest credentials
//! (RFC 3261 §22) and their expected response. Checks:
//! - a parsed value prints to one that parses back equal (what
//!   `tests/header_roundtrip.rs` checks for generated values);
//! - a Bearer token68 is a slice of the input and only `b64token *"="` (RFC 6750);
//! - Digest never yields a token68, and a Digest response is computed for any
//!   credentials read.
#![no_main]

use bytestring::ByteString;
use libfuzzer_sys::fuzz_target;
use sipreg::auth::digest::Credentials;
use sipreg::sip::headers::{Authorization, TypedHeader};

fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let src = ByteString::from(text);
    let Ok(a) = Authorization::parse(&src, &src) else {
        return;
    };
    let printed = a.to_string();
    let back = Authorization::parse_str(&printed)
        .unwrap_or_else(|e| panic!("printed {printed:?} does not parse: {e:?}"));
    assert_eq!(back, a, "printed as {printed:?}");
    if let Some(t) = a.0.token68() {
        assert!(is_b64token(t), "token68 {t:?}");
        assert!(text.contains(t));
        assert!(!a.0.is_scheme("Digest"), "Digest read as a token68");
    }
    if let Some(c) = Credentials::from_auth(&a.0) {
        assert!(a.0.is_scheme("Digest"));
        let want = c.expected("0123456789abcdef0123456789abcdef", "REGISTER");
        assert!(want.bytes().all(|b| b.is_ascii_hexdigit()));
        let _ = c.verify("0123456789abcdef0123456789abcdef", "REGISTER");
    }
});
