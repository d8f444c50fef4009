//! Header field names: the ones sipreg interprets, their compact forms (RFC 3261 §7.3.3,
//! RFC 3265 `o`/`u`), and case-insensitive matching of everything else.

use std::fmt;

/// Declares [`HeaderName`] and [`ALL`] from one list, so the two cannot drift apart.
macro_rules! header_names {
    ($($v:ident),* $(,)?) => {
        /// A header name. Unknown names are kept as written by the message's
        /// `Header::raw_name`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $($v),*
        }

        /// Every name, in declaration order (so `ALL[h as usize] == h`).
        const ALL: &[HeaderName] = &[$(HeaderName::$v),*];
    };
}

header_names!(
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Expires,
    MinExpires,
    ContentLength,
    ContentType,
    ContentEncoding,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Path,
    Route,
    RecordRoute,
    Allow,
    AllowEvents,
    Event,
    SubscriptionState,
    SipETag,
    SipIfMatch,
    Date,
    UserAgent,
    Server,
    Accept,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Subject,
    Other,
);

impl HeaderName {
    /// How many names there are ([`HeaderName::Other`] included); `h as usize` is below it.
    pub const COUNT: usize = ALL.len();

    /// Classifies a header name (case-insensitive, compact forms included).
    pub fn from_name(name: &str) -> HeaderName {
        Self::from_line(name.as_bytes(), name.len())
    }

    /// Classifies the name that is the first `n` octets of `line` (a header line: the
    /// octets after the name let the comparison read whole words instead of a tail).
    pub(crate) fn from_line(line: &[u8], n: usize) -> HeaderName {
        let Some(b) = line.get(..n) else {
            return HeaderName::Other;
        };
        if n == 1 {
            return match b[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'e' => HeaderName::ContentEncoding,
                b'k' => HeaderName::Supported,
                b'o' => HeaderName::Event,
                b'u' => HeaderName::AllowEvents,
                b's' => HeaderName::Subject,
                _ => HeaderName::Other,
            };
        }
        // One candidate per (length, first octet) — only Call-ID and Contact share both,
        // so the second octet decides — then one case-insensitive comparison.
        let first = match b.first() {
            Some(c) => c.to_ascii_lowercase(),
            None => return HeaderName::Other,
        };
        let cand = match (b.len(), first) {
            (2, b't') => HeaderName::To,
            (3, b'v') => HeaderName::Via,
            (4, b'f') => HeaderName::From,
            (4, b'c') => HeaderName::CSeq,
            (4, b'p') => HeaderName::Path,
            (4, b'd') => HeaderName::Date,
            (5, b'r') => HeaderName::Route,
            (5, b'a') => HeaderName::Allow,
            (5, b'e') => HeaderName::Event,
            (6, b'a') => HeaderName::Accept,
            (6, b's') => HeaderName::Server,
            (7, b'c') if b[1].eq_ignore_ascii_case(&b'a') => HeaderName::CallId,
            (7, b'c') => HeaderName::Contact,
            (7, b'e') => HeaderName::Expires,
            (7, b'r') => HeaderName::Require,
            (7, b's') => HeaderName::Subject,
            (8, b's') => HeaderName::SipETag,
            (9, b's') => HeaderName::Supported,
            (10, b'u') => HeaderName::UserAgent,
            (11, b'm') => HeaderName::MinExpires,
            (11, b'u') => HeaderName::Unsupported,
            (12, b'm') => HeaderName::MaxForwards,
            (12, b'c') => HeaderName::ContentType,
            (12, b'r') => HeaderName::RecordRoute,
            (12, b'a') => HeaderName::AllowEvents,
            (12, b's') => HeaderName::SipIfMatch,
            (13, b'p') => HeaderName::ProxyRequire,
            (13, b'a') => HeaderName::Authorization,
            (14, b'c') => HeaderName::ContentLength,
            (16, b'c') => HeaderName::ContentEncoding,
            (16, b'w') => HeaderName::WwwAuthenticate,
            (18, b's') => HeaderName::SubscriptionState,
            (18, b'p') => HeaderName::ProxyAuthenticate,
            (19, b'p') => HeaderName::ProxyAuthorization,
            _ => return HeaderName::Other,
        };
        // Case-insensitive comparison in up to three 64-bit words: the name zero-padded to
        // 24 octets, letters folded to lower case by OR-ing 0x20 where the canonical name
        // has a letter (so only the other case of that letter can match), other octets
        // exact.
        let key = &KEYS[cand as usize];
        for i in 0..n.div_ceil(8) {
            if word(line, 8 * i, (n - 8 * i).min(8)) | key.fold[i] != key.lower[i] {
                return HeaderName::Other;
            }
        }
        cand
    }

    /// The canonical long name used when sipreg prints the header.
    pub const fn as_str(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Contact => "Contact",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Path => "Path",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Allow => "Allow",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::Event => "Event",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::SipETag => "SIP-ETag",
            HeaderName::SipIfMatch => "SIP-If-Match",
            HeaderName::Date => "Date",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Accept => "Accept",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Subject => "Subject",
            HeaderName::Other => "X-Unknown",
        }
    }
}

/// `len` octets (1 to 8) of `line` from `at` as a little-endian word, zero above them: one
/// load when eight octets are there to read (a header name is followed by its value), the
/// octets one by one otherwise. (No copy into a padded buffer: a variable-length copy is
/// a `memmove` call.)
fn word(line: &[u8], at: usize, len: usize) -> u64 {
    let w = match line.get(at..at + 8).map(<[u8; 8]>::try_from) {
        Some(Ok(w)) => u64::from_le_bytes(w),
        _ => line
            .iter()
            .skip(at)
            .take(len)
            .enumerate()
            .fold(0u64, |w, (j, c)| w | (*c as u64) << (8 * j)),
    };
    if len < 8 {
        w & ((1u64 << (8 * len)) - 1)
    } else {
        w
    }
}

/// A canonical name lower-cased and zero-padded to 24 octets, with the case bit (0x20) set
/// in `fold` wherever the name has a letter; as little-endian words.
struct NameKey {
    lower: [u64; 3],
    fold: [u64; 3],
}

static KEYS: [NameKey; ALL.len()] = {
    let mut keys = [const {
        NameKey {
            lower: [0; 3],
            fold: [0; 3],
        }
    }; ALL.len()];
    let mut h = 0;
    while h < ALL.len() {
        let name = ALL[h].as_str().as_bytes();
        let mut key = NameKey {
            lower: [0; 3],
            fold: [0; 3],
        };
        let mut i = 0;
        while i < name.len() {
            let c = name[i];
            let f = if c.is_ascii_alphabetic() { 0x20u64 } else { 0 };
            key.lower[i / 8] |= ((c as u64) | f) << ((i % 8) * 8);
            key.fold[i / 8] |= f << ((i % 8) * 8);
            i += 1;
        }
        keys[h] = key;
        h += 1;
    }
    keys
};

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::from_name("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_name("L"), HeaderName::ContentLength);
        assert_eq!(
            HeaderName::from_name("MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_name("C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("o"), HeaderName::Event);
        assert_eq!(HeaderName::from_name("Call-IDx"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("Contacx"), HeaderName::Other);
        assert_eq!(HeaderName::from_name(""), HeaderName::Other);
    }

    #[test]
    fn every_long_name_round_trips() {
        use HeaderName::*;
        // ALL comes from the same list as the enum, so it names every variant.
        for &h in ALL.iter().filter(|h| **h != Other) {
            assert_eq!(HeaderName::from_name(h.as_str()), h);
            assert_eq!(HeaderName::from_name(&h.as_str().to_ascii_lowercase()), h);
            assert_eq!(HeaderName::from_name(&h.as_str().to_ascii_uppercase()), h);
        }
        assert_eq!(HeaderName::from_name("X-Unknown"), Other);
        for (i, h) in ALL.iter().enumerate() {
            assert_eq!(*h as usize, i);
        }
        // Octets that differ from a canonical '-' or digit only in the case bit never match.
        assert_eq!(HeaderName::from_name("Call\rID"), Other);
        assert_eq!(HeaderName::from_name("Call-Id"), CallId);
        assert_eq!(HeaderName::from_name("Max-Forward\u{13}"), Other);
        assert_eq!(HeaderName::from_name("SIP-ETAG"), SipETag);
    }

    #[test]
    fn names_at_the_start_of_a_line() {
        use HeaderName::*;
        // The octets after the name are read with it but never count.
        for (line, n, want) in [
            (&b"max-forwards: 70"[..], 12, MaxForwards),
            (b"Max-Forwards:70", 12, MaxForwards),
            (b"To: <sip:a@b>", 2, To),
            (b"Contacx: <sip:a@b>", 7, Other),
            (b"Content-Length: 0", 14, ContentLength),
            (b"Content-Lengtx: 0", 14, Other),
            (b"Proxy-Authorization", 19, ProxyAuthorization),
            (b"Via", 4, Other),
        ] {
            assert_eq!(HeaderName::from_line(line, n), want, "{line:?}");
        }
    }
}
