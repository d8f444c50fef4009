//! The client side of SIP Digest (RFC 3261 §22, RFC 2617, RFC 8760): pick a challenge
//! from a 401, then answer it with `qop=auth` and an increasing nonce-count, reusing the
//! nonce for later REGISTERs as phones do (so a refresh costs one round trip, not two).

use md5::Md5;
use sha2::{Digest, Sha256};

/// Hash algorithms the generator can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, parts: &[&str]) -> String {
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
        }
    }
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

/// A challenge the generator answers, with the user's HA1 computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub algorithm: Algorithm,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// The server offered `qop=auth`.
    pub qop_auth: bool,
    ha1: String,
    /// The last nonce-count used.
    nc: u32,
}

/// The parameters of one `Digest ...` challenge, `None` for other schemes.
fn params(value: &str) -> Option<Vec<(&str, &str)>> {
    let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut out = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let (name, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (val, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (after[..i].trim_end(), &after[i..]),
                None => (after.trim_end(), ""),
            }
        };
        out.push((name.trim(), val));
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

impl Challenge {
    /// The first challenge among `values` (WWW-Authenticate values, in order) that the
    /// generator can answer for this user.
    pub fn pick<'a>(
        values: impl IntoIterator<Item = &'a str>,
        username: &str,
        password: &str,
    ) -> Option<Challenge> {
        values.into_iter().find_map(|v| {
            let p = params(v)?;
            let get = |k: &str| {
                p.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| *v)
            };
            let algorithm = match get("algorithm") {
                None => Algorithm::Md5,
                Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
                Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
                Some(_) => return None,
            };
            let realm = get("realm")?.to_string();
            let qop = get("qop");
            // A server that offers qop but not "auth" (only auth-int) cannot be answered.
            let qop_auth = qop.is_some_and(|q| q.split(',').any(|o| o.trim() == "auth"));
            if qop.is_some() && !qop_auth {
                return None;
            }
            Some(Challenge {
                ha1: algorithm.hash(&[username, &realm, password]),
                algorithm,
                realm,
                nonce: get("nonce")?.to_string(),
                opaque: get("opaque").map(str::to_string),
                qop_auth,
                nc: 0,
            })
        })
    }

    /// The `Authorization` value for the next request with this nonce.
    pub fn authorization(
        &mut self,
        username: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        self.nc = self.nc.wrapping_add(1);
        let ha2 = self.algorithm.hash(&[method, uri]);
        let nc = format!("{:08x}", self.nc);
        let mut v = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.name()
        );
        let response = if self.qop_auth {
            v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
            self.algorithm
                .hash(&[&self.ha1, &self.nonce, &nc, cnonce, "auth", &ha2])
        } else {
            self.algorithm.hash(&[&self.ha1, &self.nonce, &ha2])
        };
        v.push_str(&format!(", response=\"{response}\""));
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5 (HTTP, but the computation is the same).
        let mut c = Challenge::pick(
            [
                "Bearer realm=\"x\"",
                "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            ],
            "Mufasa",
            "Circle Of Life",
        )
        .expect("picks the Digest challenge");
        let v = c.authorization("Mufasa", "GET", "/dir/index.html", "0a4f113b");
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(v.contains("nc=00000001"), "{v}");
        assert!(
            v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{v}"
        );
        assert!(
            c.authorization("Mufasa", "GET", "/dir/index.html", "0a4f113b")
                .contains("nc=00000002")
        );
    }

    #[test]
    fn sha256_and_no_qop() {
        let mut c = Challenge::pick(
            ["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"],
            "u",
            "p",
        )
        .expect("SHA-256 is answered");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let v = c.authorization("u", "REGISTER", "sip:x", "c");
        let ha1 = Algorithm::Sha256.hash(&["u", "r", "p"]);
        let ha2 = Algorithm::Sha256.hash(&["REGISTER", "sip:x"]);
        let want = Algorithm::Sha256.hash(&[&ha1, "n", &ha2]);
        assert!(v.ends_with(&format!("response=\"{want}\"")), "{v}");
        assert!(!v.contains("qop"));
    }

    #[test]
    fn unusable_challenges_are_skipped() {
        assert!(
            Challenge::pick(
                ["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"],
                "u",
                "p"
            )
            .is_none()
        );
        assert!(
            Challenge::pick(
                ["Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""],
                "u",
                "p"
            )
            .is_none()
        );
        assert!(Challenge::pick(["Digest realm=\"r\""], "u", "p").is_none());
        assert!(Challenge::pick(["Digest realm=\"r, nonce=\"n\""], "u", "p").is_none());
    }
}
