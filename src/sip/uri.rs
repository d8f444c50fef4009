//! SIP and SIPS URIs (RFC 3261 §19.1) and, for everything else, absolute URIs kept opaque.
//!
//! Escapes are kept as sent: `%00` stays three characters, so a stored Contact comes back
//! byte for byte, and a NUL octet can never cut an AOR short.

use std::fmt;

use bytestring::ByteString;
use nom::Parser;
use nom::bytes::complete::take_while1;

use super::params::{Params, uri_params};
use super::text::{byte_table, escapes_valid, host_port, is_unreserved, is_unreserved_byte, sub};

/// Any URI sipreg may meet in a Request-URI or an address header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Another scheme (`tel:`, `isbn:`, `soap.beep:` ...): kept but never acted on.
    Other {
        scheme: ByteString,
        rest: ByteString,
    },
}

/// `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// User part, still escaped.
    pub user: Option<ByteString>,
    /// Host as written: a name, an IPv4 address or an `[IPv6]` reference.
    pub host: ByteString,
    pub port: Option<u16>,
    pub params: Params,
    /// The password and the `?headers` part, rare in the URIs a registrar meets: kept out
    /// of line, so every URI (and every address holding one) is 56 octets smaller to move.
    /// `None` when both are absent.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rare {
    password: Option<ByteString>,
    headers: Option<ByteString>,
}

impl SipUri {
    /// `sip:` (or `sips:`) `user@host`, without port, parameters, password or headers.
    pub fn new(secure: bool, user: Option<ByteString>, host: ByteString) -> SipUri {
        SipUri {
            secure,
            user,
            host,
            port: None,
            params: Params::new(),
            rare: None,
        }
    }

    /// The password, still escaped.
    pub fn password(&self) -> Option<&ByteString> {
        self.rare.as_ref()?.password.as_ref()
    }

    /// The `?headers` part without the `?`, still escaped.
    pub fn headers(&self) -> Option<&ByteString> {
        self.rare.as_ref()?.headers.as_ref()
    }

    pub fn set_headers(&mut self, headers: Option<ByteString>) {
        let password = self.rare.take().and_then(|r| r.password);
        self.rare = Rare::boxed(password, headers);
    }
}

impl Rare {
    fn boxed(password: Option<ByteString>, headers: Option<ByteString>) -> Option<Box<Rare>> {
        (password.is_some() || headers.is_some()).then(|| Box::new(Rare { password, headers }))
    }
}

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriError(pub &'static str);

const fn user_byte(c: u8) -> bool {
    is_unreserved_byte(c)
        || matches!(
            c,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
}

const fn password_byte(c: u8) -> bool {
    is_unreserved_byte(c) || matches!(c, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
}

static USER: [bool; 256] = byte_table!(user_byte);
static PASSWORD: [bool; 256] = byte_table!(password_byte);

/// An octet of a SIP URI's user part (`user` of RFC 3261 §25.1: `;`, `?` and `/` included).
pub const fn is_user_byte(c: u8) -> bool {
    USER[c as usize]
}

fn is_password_byte(c: u8) -> bool {
    PASSWORD[c as usize]
}

fn is_header_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '%' | '[' | ']' | '/' | '?' | ':' | '+' | '$' | '=' | '&')
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Characters an opaque absolute URI may hold (no white space, quotes or angle brackets).
fn is_uric(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>' | '"')
}

impl Uri {
    /// Parses the whole of `s` (a sub-slice of `src`) as a URI.
    pub fn parse(src: &ByteString, s: &str) -> Result<Uri, UriError> {
        let colon =
            super::text::find_byte(b':', s.as_bytes()).ok_or(UriError("URI has no scheme"))?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_after_scheme(src, rest, scheme.len() == 4).map(Uri::Sip);
        }
        if !is_scheme(scheme) {
            return Err(UriError("invalid URI scheme"));
        }
        if rest.is_empty() || !rest.chars().all(is_uric) {
            return Err(UriError("invalid URI"));
        }
        Ok(Uri::Other {
            scheme: sub(src, scheme),
            rest: sub(src, rest),
        })
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    /// The scheme, lower-case for sip/sips.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl SipUri {
    fn parse_after_scheme(src: &ByteString, s: &str, secure: bool) -> Result<SipUri, UriError> {
        // The user part may hold ';', '?' and '/', so '@' decides where it ends.
        let (user, password, hostpart) = match super::text::find_byte(b'@', s.as_bytes()) {
            Some(at) => {
                let info = &s[..at];
                let (user, password) = match super::text::find_byte(b':', info.as_bytes()) {
                    Some(c) => (&info[..c], Some(&info[c + 1..])),
                    None => (info, None),
                };
                if user.is_empty() || !user.bytes().all(is_user_byte) || !escapes_valid(user) {
                    return Err(UriError("invalid user part in URI"));
                }
                if let Some(p) = password
                    && (!p.bytes().all(is_password_byte) || !escapes_valid(p))
                {
                    return Err(UriError("invalid password in URI"));
                }
                (
                    Some(sub(src, user)),
                    password.map(|p| sub(src, p)),
                    &s[at + 1..],
                )
            }
            None => (None, None, s),
        };
        let (rest, (host, port)) =
            host_port(hostpart).map_err(|_| UriError("invalid host in URI"))?;
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| UriError("invalid port in URI"))?,
            ),
            None => None,
        };
        let (rest, params) =
            uri_params(src, rest).map_err(|_| UriError("invalid URI parameter"))?;
        // Escapes need checking only where there is a '%'.
        if params.raw().contains('%') {
            for p in params.iter() {
                let bad_value = p.value.is_some_and(|v| !escapes_valid(v));
                if !escapes_valid(p.name) || bad_value {
                    return Err(UriError("invalid escape in URI parameter"));
                }
            }
        }
        let headers = match rest.strip_prefix('?') {
            Some(h) => {
                let (left, h) = take_while1::<_, _, nom::error::Error<&str>>(is_header_char)
                    .parse(h)
                    .map_err(|_| UriError("invalid URI headers"))?;
                if !left.is_empty() || !escapes_valid(h) {
                    return Err(UriError("invalid URI headers"));
                }
                Some(sub(src, h))
            }
            None if rest.is_empty() => None,
            None => return Err(UriError("unexpected characters in URI")),
        };
        Ok(SipUri {
            secure,
            user,
            host: sub(src, host),
            port,
            params,
            rare: Rare::boxed(password, headers),
        })
    }

    /// RFC 3261 §19.1.4 equivalence: user and password case-sensitive with escapes
    /// decoded, host case-insensitive, the transport/user/method/ttl/maddr parameters
    /// compared when either side has them, other parameters only when both have them,
    /// and headers always.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        use super::text::unescape;
        let esc_eq = |a: Option<&ByteString>, b: Option<&ByteString>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => unescape(a) == unescape(b),
            _ => false,
        };
        if self.secure != other.secure
            || !esc_eq(self.user.as_ref(), other.user.as_ref())
            || !esc_eq(self.password(), other.password())
            || !self.host.eq_ignore_ascii_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        for name in ["transport", "user", "method", "ttl", "maddr"] {
            let (a, b) = (self.params.get(name), other.params.get(name));
            if (a.is_some() || b.is_some())
                && a.map(|v| v.map(str::to_ascii_lowercase))
                    != b.map(|v| v.map(str::to_ascii_lowercase))
            {
                return false;
            }
        }
        for p in self.params.iter() {
            if let Some(theirs) = other.params.get(p.name) {
                let same = match (p.value, theirs) {
                    (Some(a), Some(b)) => unescape(a).eq_ignore_ascii_case(&unescape(b)),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    return false;
                }
            }
        }
        let hdr = |h: Option<&ByteString>| {
            let mut v: Vec<Vec<u8>> = h
                .map(|h| h.split('&').map(unescape).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        hdr(self.headers()) == hdr(other.headers())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = self.password() {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = self.headers() {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static str) -> Result<Uri, UriError> {
        let src = ByteString::from_static(s);
        Uri::parse(&src, &src)
    }

    fn sip(s: &'static str) -> SipUri {
        parse(s).unwrap().as_sip().unwrap().clone()
    }

    #[test]
    fn user_part_with_semicolons_and_password() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(&*u.host, "example.com");
        assert!(u.params.is_empty());
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.password().map(|p| &**p),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
    }

    #[test]
    fn params_headers_ports() {
        let u = sip("sips:alice@[2001:db8::1]:5061;transport=tcp;lr?Route=%3Csip:x%3E");
        assert!(u.secure);
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.value("transport"), Some("tcp"));
        assert_eq!(u.headers().map(|h| &**h), Some("Route=%3Csip:x%3E"));
        assert_eq!(
            u.to_string(),
            "sips:alice@[2001:db8::1]:5061;transport=tcp;lr?Route=%3Csip:x%3E"
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:user@exa mple.com",
            "sip:us%zzer@example.com",
            "sip:user@example.com:99999",
            "sip:user@",
            "sip:@example.com",
            "sip:a@b;;",
            "nocolon",
            "1abc:foo",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn other_schemes_are_kept() {
        let u = parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
        assert!(parse("isbn:2983792873").is_ok());
    }

    #[test]
    fn equivalence_follows_19_1_4() {
        assert!(
            sip("sip:%61lice@ATLANTA.com;transport=TCP")
                .equivalent(&sip("sip:alice@AtLanTa.CoM;Transport=tcp"))
        );
        assert!(!sip("sip:alice@atlanta.com").equivalent(&sip("sip:ALICE@atlanta.com")));
        assert!(
            sip("sip:+1972@gw1.example.net")
                .equivalent(&sip("sip:+1972@gw1.example.net;unknownparam"))
        );
        assert!(!sip("sip:bob@b.com").equivalent(&sip("sip:bob@b.com:5060")));
        assert!(
            !sip("sip:user@example.com")
                .equivalent(&sip("sip:user@example.com?Route=%3Csip:sip.example.com%3E"))
        );
        assert!(!sip("sip:a@b;transport=udp").equivalent(&sip("sip:a@b")));
    }
}
