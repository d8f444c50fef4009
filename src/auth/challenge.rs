//! Which challenges a 401 offers, and in what order: the configured list, per-client rules
//! matched on `User-Agent` (some phones fail on a challenge they cannot parse), and the
//! cleartext rule — a Bearer token is never invited over a transport an eavesdropper can
//! read (RFC 6750 §5.3, RFC 8898 §6), except from loopback peers (labs, benchmarks).

use std::net::SocketAddr;

use super::config::{AuthConfig, CleartextBearer};
use super::digest::Algorithm;
use crate::transport::Context;

/// One challenge a 401 can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer` (RFC 8898).
    Bearer,
    /// `Digest` with this algorithm (RFC 8760).
    Digest(Algorithm),
}

impl Challenge {
    /// The configuration names, in a useful default order.
    pub const NAMES: [&'static str; 3] = ["bearer", "digest-sha256", "digest-md5"];

    /// Reads a configuration name (`bearer`, `digest-sha256`, `digest-md5`; any case).
    pub fn parse(s: &str) -> Option<Challenge> {
        match s.to_ascii_lowercase().as_str() {
            "bearer" => Some(Challenge::Bearer),
            "digest-sha256" | "digest-sha-256" => Some(Challenge::Digest(Algorithm::Sha256)),
            "digest-md5" => Some(Challenge::Digest(Algorithm::Md5)),
            _ => None,
        }
    }

    /// Parses a configured list; the error names the key and the bad entry.
    pub fn parse_list(key: &str, names: &[String]) -> Result<Vec<Challenge>, String> {
        let mut out: Vec<Challenge> = Vec::with_capacity(names.len());
        for n in names {
            let c = Challenge::parse(n).ok_or_else(|| {
                format!(
                    "{key}: unknown challenge '{n}' (use {})",
                    Challenge::NAMES.join(", ")
                )
            })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }
}

/// Challenges for clients whose `User-Agent` matches a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    /// `*` matches any run of characters; letters match in any case.
    pub user_agent: String,
    pub challenges: Vec<Challenge>,
}

/// The challenge policy of the `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengePolicy {
    /// For clients no rule matches.
    pub default: Vec<Challenge>,
    /// First match wins.
    pub rules: Vec<ClientRule>,
    /// Offer and accept Bearer over cleartext transports from any address.
    pub bearer_in_clear: bool,
}

impl ChallengePolicy {
    /// Builds the policy from `[auth]`; Digest challenges are left out when Digest is off.
    pub fn from_config(c: &AuthConfig) -> Result<ChallengePolicy, String> {
        let keep = |list: Vec<Challenge>| -> Vec<Challenge> {
            list.into_iter()
                .filter(|ch| c.digest_enabled || *ch == Challenge::Bearer)
                .collect()
        };
        let mut rules = Vec::with_capacity(c.client_rules.len());
        for (i, r) in c.client_rules.iter().enumerate() {
            if r.user_agent.is_empty() {
                return Err(format!("auth.client_rules[{i}]: user_agent is empty"));
            }
            let key = format!("auth.client_rules[{i}].challenges");
            rules.push(ClientRule {
                user_agent: r.user_agent.clone(),
                challenges: keep(Challenge::parse_list(&key, &r.challenges)?),
            });
        }
        let default = keep(Challenge::parse_list("auth.challenges", &c.challenges)?);
        if default.is_empty() {
            return Err(
                "auth.challenges offers nothing (with digest_enabled = false it needs \"bearer\")"
                    .to_string(),
            );
        }
        Ok(ChallengePolicy {
            default,
            rules,
            bearer_in_clear: c.bearer_over_cleartext == CleartextBearer::Allow,
        })
    }

    /// The configured challenges for a client, before the cleartext rule.
    pub fn configured(&self, user_agent: Option<&str>) -> &[Challenge] {
        let ua = user_agent.unwrap_or("");
        self.rules
            .iter()
            .find(|r| glob(&r.user_agent, ua))
            .map_or(&self.default, |r| &r.challenges)
    }

    /// Whether a Bearer token may travel between this peer and sipreg: over TLS or WSS,
    /// from a loopback address, or anywhere when the operator allowed it.
    pub fn bearer_allowed(&self, ctx: &Context) -> bool {
        self.bearer_in_clear || ctx.transport.is_secure() || is_loopback(ctx.source)
    }

    /// The challenges to offer this client, in order.
    pub fn offered<'a>(
        &'a self,
        user_agent: Option<&str>,
        ctx: &Context,
    ) -> impl Iterator<Item = Challenge> + 'a {
        let bearer = self.bearer_allowed(ctx);
        self.configured(user_agent)
            .iter()
            .copied()
            .filter(move |c| bearer || *c != Challenge::Bearer)
    }
}

/// Loopback, IPv4-mapped loopback included.
fn is_loopback(a: SocketAddr) -> bool {
    a.ip().to_canonical().is_loopback()
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters and the
/// rest compares ASCII-case-insensitively. Linear backtracking on the last `*` only.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;

    fn ctx(transport: Transport, source: &str) -> Context {
        Context {
            transport,
            source: source.parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            connection: None,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("baresip*", "baresip v1.0.0 (x86_64/linux)"));
        assert!(glob("BARESIP*", "baresip v1.0.0"));
        assert!(glob("*phone*", "Linphonec/5.1.65"));
        assert!(glob("sipp", "SIPp"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYbZc"));
        assert!(!glob("a*b*c", "aXXbYYbZ"));
        assert!(!glob("sipp", "sipp 3.6"));
        assert!(!glob("baresip*", "my baresip"));
        assert!(!glob("x", ""));
    }

    #[test]
    fn shipped_rules_give_each_client_what_it_can_answer() {
        let p = ChallengePolicy::from_config(&AuthConfig::default()).unwrap();
        let local = ctx(Transport::Udp, "127.0.0.1:5070");
        let of = |ua: Option<&str>| p.offered(ua, &local).collect::<Vec<_>>();
        let md5 = Challenge::Digest(Algorithm::Md5);
        let sha = Challenge::Digest(Algorithm::Sha256);
        assert_eq!(of(Some("baresip v1.0.0 (x86_64/linux)")), vec![md5]);
        assert_eq!(of(Some("Linphonec/5.1.65")), vec![sha, md5]);
        assert_eq!(of(Some("sipp")), vec![md5]);
        assert_eq!(of(Some("JsSIP 3.10.0")), vec![Challenge::Bearer, sha, md5]);
        assert_eq!(of(None), vec![Challenge::Bearer, sha, md5]);
    }

    #[test]
    fn bearer_is_offered_only_where_a_token_cannot_be_read_on_the_way() {
        let p = ChallengePolicy::from_config(&AuthConfig::default()).unwrap();
        let md5 = Challenge::Digest(Algorithm::Md5);
        let sha = Challenge::Digest(Algorithm::Sha256);
        for t in [Transport::Udp, Transport::Tcp, Transport::Ws] {
            let c = ctx(t, "192.0.2.10:5060");
            assert!(!p.bearer_allowed(&c), "{t}");
            assert_eq!(p.offered(None, &c).collect::<Vec<_>>(), vec![sha, md5]);
        }
        for t in [Transport::Tls, Transport::Wss] {
            let c = ctx(t, "192.0.2.10:5060");
            assert_eq!(p.offered(None, &c).next(), Some(Challenge::Bearer), "{t}");
        }
        for src in ["127.0.0.1:5070", "[::1]:5070", "[::ffff:127.0.0.1]:5070"] {
            assert!(p.bearer_allowed(&ctx(Transport::Udp, src)), "{src}");
        }
        let allow = ChallengePolicy::from_config(&AuthConfig {
            bearer_over_cleartext: CleartextBearer::Allow,
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(allow.bearer_allowed(&ctx(Transport::Udp, "192.0.2.10:5060")));
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let bad = AuthConfig {
            challenges: vec!["bearer".into(), "digest-sha1".into()],
            ..AuthConfig::default()
        };
        let e = ChallengePolicy::from_config(&bad).unwrap_err();
        assert!(
            e.contains("auth.challenges") && e.contains("digest-sha1"),
            "{e}"
        );
        let none = AuthConfig {
            challenges: vec!["digest-md5".into()],
            digest_enabled: false,
            ..AuthConfig::default()
        };
        let e = ChallengePolicy::from_config(&none).unwrap_err();
        assert!(e.contains("auth.challenges offers nothing"), "{e}");
        let off = AuthConfig {
            digest_enabled: false,
            ..AuthConfig::default()
        };
        let p = ChallengePolicy::from_config(&off).unwrap();
        assert_eq!(p.default, vec![Challenge::Bearer]);
        assert!(p.configured(Some("sipp")).is_empty());
    }
}
