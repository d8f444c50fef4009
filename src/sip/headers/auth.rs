//! `Authorization`, `Proxy-Authorization` and `WWW-Authenticate` (RFC 3261 §20.7, §20.28,
//! §20.44; RFC 8898): an auth-scheme followed by either a token68 (`Bearer <JWT>`) or
//! comma-separated auth-params (`Digest username="...", ...`).

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::params::Param;
use crate::sip::text::{gen_value, sep, split_commas, sub, sub_known, token, unquote};

/// What follows the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthData {
    /// `b64token` of RFC 6750, as Bearer uses it.
    Token68(ByteString),
    /// `name=value` pairs; quoted values keep their quotes.
    Params(Vec<Param>),
}

/// Credentials or a challenge: scheme plus data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthValue {
    pub scheme: ByteString,
    pub data: AuthData,
}

/// 1 for the octets of `b64token` (RFC 6750), 0 otherwise.
static TOKEN68: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
            as u8;
        i += 1;
    }
    t
};

/// `b64token *"="` (RFC 6750). A JWT is long: sixteen octets per step with SSE2 where
/// the target has it (every x86-64 does), else eight table look-ups combined without a
/// branch per octet.
fn is_token68(s: &str) -> bool {
    let b = s.as_bytes();
    let body = b.len() - b.iter().rev().take_while(|c| **c == b'=').count();
    if body == 0 {
        return false;
    }
    let b = &b[..body];
    let mut chunks = b.chunks_exact(16);
    for c in &mut chunks {
        // `chunks_exact(16)` yields 16-octet slices only.
        let Ok(c) = c.try_into() else { return false };
        if !token68_16(c) {
            return false;
        }
    }
    chunks.remainder().iter().all(|c| TOKEN68[*c as usize] == 1)
}

/// Sixteen octets of `b64token`: `A-Z a-z 0-9 - . _ ~ + /`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn token68_16(c: &[u8; 16]) -> bool {
    // SAFETY: the only requirement of `token68_sse2` is SSE2, which this build enables
    // for the whole program (checked by the `cfg` above); it touches no memory itself.
    unsafe { token68_sse2(c) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn token68_sse2(c: &[u8; 16]) -> bool {
    use std::arch::x86_64::*;
    let lo = i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let hi = i64::from_le_bytes([c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]]);
    let x = _mm_set_epi64x(hi, lo);
    // Signed comparisons: octets >= 0x80 are negative and fall in no range.
    // Letters: OR-ing 0x20 maps exactly A-Z and a-z onto a-z.
    let folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
    let letters = _mm_and_si128(
        _mm_cmpgt_epi8(folded, _mm_set1_epi8((b'a' - 1) as i8)),
        _mm_cmpgt_epi8(_mm_set1_epi8((b'z' + 1) as i8), folded),
    );
    // '-' '.' '/' and the digits: 0x2D..=0x39.
    let digits = _mm_and_si128(
        _mm_cmpgt_epi8(x, _mm_set1_epi8((b'-' - 1) as i8)),
        _mm_cmpgt_epi8(_mm_set1_epi8((b'9' + 1) as i8), x),
    );
    let singles = _mm_or_si128(
        _mm_or_si128(
            _mm_cmpeq_epi8(x, _mm_set1_epi8(b'_' as i8)),
            _mm_cmpeq_epi8(x, _mm_set1_epi8(b'~' as i8)),
        ),
        _mm_cmpeq_epi8(x, _mm_set1_epi8(b'+' as i8)),
    );
    let ok = _mm_or_si128(_mm_or_si128(letters, digits), singles);
    _mm_movemask_epi8(ok) == 0xFFFF
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn token68_16(c: &[u8; 16]) -> bool {
    c.iter().fold(1, |acc, b| acc & TOKEN68[*b as usize]) == 1
}

/// Schemes kept without a reference to the buffer when spelled canonically.
const SCHEMES: &[&str] = &["Bearer", "Digest"];

impl AuthValue {
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token of a `Bearer` credential.
    pub fn token68(&self) -> Option<&str> {
        match &self.data {
            AuthData::Token68(t) => Some(t),
            AuthData::Params(_) => None,
        }
    }

    /// An auth-param's value with quotes and escapes removed.
    pub fn param(&self, name: &str) -> Option<String> {
        let AuthData::Params(ps) = &self.data else {
            return None;
        };
        ps.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.value.as_deref())
            .map(|v| {
                if v.starts_with('"') {
                    unquote(v)
                } else {
                    v.to_string()
                }
            })
    }

    fn parse_value(src: &ByteString, s: &str) -> Result<AuthValue, &'static str> {
        let s = s.trim_ws();
        let (rest, scheme) = token(s).map_err(|_| "bad auth-scheme")?;
        let trimmed = rest.trim_ws_start();
        if trimmed.len() == rest.len() && !rest.is_empty() {
            return Err("missing white space after the scheme");
        }
        let rest = trimmed.trim_ws_end();
        // Digest always carries auth-params; `username=` must not pass for a token68.
        if !scheme.eq_ignore_ascii_case("Digest") && is_token68(rest) {
            return Ok(AuthValue {
                scheme: sub_known(src, scheme, SCHEMES),
                data: AuthData::Token68(sub(src, rest)),
            });
        }
        let mut params = Vec::new();
        if !rest.is_empty() {
            for item in split_commas(rest) {
                let (r, name) = token(item).map_err(|_| "bad auth-param name")?;
                let (r, _) = sep("=")(r).map_err(|_| "auth-param without '='")?;
                let (r, value) = gen_value(r).map_err(|_| "bad auth-param value")?;
                if !r.trim_ws().is_empty() {
                    return Err("unexpected characters in auth-param");
                }
                params.push(Param {
                    name: sub(src, name),
                    value: Some(sub(src, value)),
                });
            }
        }
        Ok(AuthValue {
            scheme: sub_known(src, scheme, SCHEMES),
            data: AuthData::Params(params),
        })
    }
}

impl fmt::Display for AuthValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        match &self.data {
            AuthData::Token68(t) => write!(f, " {t}"),
            AuthData::Params(ps) => {
                for (i, p) in ps.iter().enumerate() {
                    let sepr = if i == 0 { " " } else { ", " };
                    write!(
                        f,
                        "{sepr}{}={}",
                        p.name,
                        p.value.as_deref().unwrap_or("\"\"")
                    )?;
                }
                Ok(())
            }
        }
    }
}

macro_rules! auth_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub AuthValue);

        impl TypedHeader for $ty {
            const NAME: HeaderName = $name;

            fn parse(src: &ByteString, s: &str) -> Result<$ty, HeaderError> {
                AuthValue::parse_value(src, s).map($ty).map_err(Self::err)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

auth_header!(
    /// Credentials for the registrar (RFC 3261 §20.7).
    Authorization,
    HeaderName::Authorization
);
auth_header!(
    /// Credentials for a proxy (RFC 3261 §20.28); a registrar ignores them.
    ProxyAuthorization,
    HeaderName::ProxyAuthorization
);
auth_header!(
    /// One challenge of a 401 (RFC 3261 §20.44); RFC 8898 allows one per scheme.
    WwwAuthenticate,
    HeaderName::WwwAuthenticate
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_digest() {
        let a = Authorization::parse_str("Bearer eyJhbGciOi.eyJzdWIi.sig_-~+/==").unwrap();
        assert!(a.0.is_scheme("bearer"));
        assert_eq!(a.0.token68(), Some("eyJhbGciOi.eyJzdWIi.sig_-~+/=="));
        let d = Authorization::parse_str(
            "Digest username=\"bob\", realm=\"atlanta.com\",\r\n nonce=\"ea9c8e88\", qop=auth, nc=00000001, uri=\"sip:a.com\"",
        );
        assert!(d.is_err(), "CRLF inside a value is never accepted");
        let d = Authorization::parse_str(
            "Digest username=\"bob\", realm=\"atl,anta\", nonce=\"ea9c8e88\", qop=auth, nc=00000001",
        )
        .unwrap();
        assert_eq!(d.0.param("realm").as_deref(), Some("atl,anta"));
        assert_eq!(d.0.param("QOP").as_deref(), Some("auth"));
        assert_eq!(
            d.to_string(),
            "Digest username=\"bob\", realm=\"atl,anta\", nonce=\"ea9c8e88\", qop=auth, nc=00000001"
        );
        let u = Authorization::parse_str("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(u.0.is_scheme("NoOneKnowsThisScheme"));
        assert!(Authorization::parse_str("Digest username=").is_err());
        assert!(Authorization::parse_str("").is_err());
        for bad in [
            "Bearer abcdefgh,ijklmnop",
            "Bearer abcdefghijklmno\u{e9}",
            "Bearer ab=cd",
        ] {
            let a = Authorization::parse_str(bad)
                .unwrap_or_else(|_| Authorization::parse_str("Bearer x=\"y\"").unwrap());
            assert_eq!(a.0.token68(), None, "{bad}");
        }
        for b in 0..=255u8 {
            let mut t = [b'a'; 16];
            t[7] = b;
            let s = String::from_utf8_lossy(&t).into_owned();
            let want = TOKEN68[b as usize] == 1;
            if s.len() == 16 {
                assert_eq!(token68_16(&t), want, "{b}");
                assert_eq!(is_token68(&s), want, "{b}");
            } else {
                assert!(!token68_16(&t));
            }
        }
        for n in 1..40 {
            let t = "aZ09-._~+/".repeat(4)[..n].to_string();
            assert!(is_token68(&t) && is_token68(&format!("{t}==")), "{t}");
            for i in 0..n {
                let mut bad = t.clone().into_bytes();
                bad[i] = b',';
                assert!(!is_token68(std::str::from_utf8(&bad).unwrap()));
            }
        }
    }
}
