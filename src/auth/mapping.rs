//! Identity and scope mapping of an external issuer's tokens: which claim names the
//! user (a plain name, `user@domain`, or a SIP URI, its domain rewritten through
//! `domain_rewrite`), and where the sipreg scopes come from (a scope claim, or roles
//! mapped through `role_scopes`). Pure functions over the token's JSON claims.

use serde_json::{Map, Value};

use super::TrustedIssuer;

/// The claim naming the user when `username_claim` is unset, then its fallback.
const DEFAULT_USERNAME_CLAIMS: [&str; 2] = ["preferred_username", "username"];
/// Longest user name taken from a token (the users store allows 64 bytes).
const MAX_USERNAME_LEN: usize = 64;
/// Most scopes or roles read from one token.
const MAX_ITEMS: usize = 64;

/// Who an external token speaks for, in sipreg's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub username: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
}

/// Maps `claims` per the issuer's settings; the error says why no user could be named.
pub fn map(cfg: &TrustedIssuer, claims: &Map<String, Value>) -> Result<Mapped, String> {
    let raw = match &cfg.username_claim {
        Some(name) => claim_str(claims, name).ok_or_else(|| format!("no string claim {name}"))?,
        None => DEFAULT_USERNAME_CLAIMS
            .iter()
            .find_map(|n| claim_str(claims, n))
            .ok_or("no preferred_username claim")?,
    };
    let username = username(raw, cfg)?;
    let roles = match &cfg.roles_claim {
        Some(name) => words(lookup(claims, name)),
        None => Vec::new(),
    };
    let scopes = if cfg.roles_claim.is_some() {
        let mut s: Vec<String> = roles
            .iter()
            .filter_map(|r| cfg.role_scopes.get(r))
            .flatten()
            .cloned()
            .collect();
        s.sort();
        s.dedup();
        s
    } else {
        words(lookup(
            claims,
            cfg.scope_claim.as_deref().unwrap_or("scope"),
        ))
    };
    Ok(Mapped {
        username,
        scopes,
        roles,
    })
}

/// The user name in a claim value: a SIP URI loses its scheme and parameters, and a
/// `user@domain` keeps its user part plus the suffix `domain_rewrite` gives the domain.
fn username(raw: &str, cfg: &TrustedIssuer) -> Result<String, String> {
    let lower = raw.get(..5).map(str::to_ascii_lowercase);
    let rest = match lower.as_deref() {
        Some("sips:") => &raw[5..],
        Some(p) if p.starts_with("sip:") => &raw[4..],
        _ => raw,
    };
    // URI parameters and headers are no part of the identity.
    let rest = rest.split([';', '?']).next().unwrap_or_default();
    let name = match rest.rsplit_once('@') {
        Some((user, domain)) => {
            let domain = domain.to_ascii_lowercase();
            let suffix = cfg
                .domain_rewrite
                .get(&domain)
                .ok_or_else(|| format!("domain {} is not in domain_rewrite", safe(&domain)))?;
            format!("{user}{suffix}")
        }
        None => rest.to_string(),
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_USERNAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '!' | '~'));
    if !valid {
        return Err(format!("unusable user name {}", safe(&name)));
    }
    Ok(name)
}

/// A claim by name, or by dotted path into nested objects (`realm_access.roles`).
/// An exact top-level name wins over a path (`https://x/roles` style names).
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    lookup(claims, name)?.as_str()
}

/// A space-separated string or an array of strings, as a bounded list of words.
fn words(v: Option<&Value>) -> Vec<String> {
    let words: Vec<&str> = match v {
        Some(Value::String(s)) => s.split_ascii_whitespace().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    words
        .into_iter()
        .filter(|w| !w.is_empty() && w.len() <= 128 && !w.chars().any(char::is_whitespace))
        .take(MAX_ITEMS)
        .map(str::to_string)
        .collect()
}

/// Token data in a log line: short, printable ASCII only.
fn safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn issuer(tweak: impl FnOnce(&mut TrustedIssuer)) -> TrustedIssuer {
        let mut t = TrustedIssuer::default();
        tweak(&mut t);
        t
    }

    #[test]
    fn preferred_username_and_scope_by_default() {
        let m = map(
            &issuer(|_| {}),
            &claims(json!({"preferred_username": "alice", "scope": "openid sip.register"})),
        )
        .unwrap();
        assert_eq!(m.username, "alice");
        assert_eq!(m.scopes, ["openid", "sip.register"]);
        // sipreg-shaped tokens (a `username` claim) keep working.
        let m = map(&issuer(|_| {}), &claims(json!({"username": "bob"}))).unwrap();
        assert_eq!(m.username, "bob");
        assert!(map(&issuer(|_| {}), &claims(json!({"sub": "x"}))).is_err());
    }

    #[test]
    fn email_and_sip_uri_claims_go_through_domain_rewrite() {
        let t = issuer(|t| {
            t.username_claim = Some("email".into());
            t.domain_rewrite
                .insert("corp.example".into(), String::new());
            t.domain_rewrite
                .insert("partner.example".into(), ".partner".into());
        });
        let user = |v: Value| map(&t, &claims(json!({ "email": v }))).map(|m| m.username);
        assert_eq!(user(json!("alice@corp.example")).unwrap(), "alice");
        assert_eq!(user(json!("alice@Corp.Example")).unwrap(), "alice");
        assert_eq!(
            user(json!("alice@partner.example")).unwrap(),
            "alice.partner"
        );
        assert_eq!(
            user(json!("sip:carol@corp.example;transport=tls")).unwrap(),
            "carol"
        );
        assert!(user(json!("mallory@evil.example")).is_err());
        assert!(user(json!("@corp.example")).is_err());
        assert!(user(json!("a b@corp.example")).is_err());
        assert!(user(json!(42)).is_err());
    }

    #[test]
    fn roles_map_to_scopes_and_scp_arrays_are_read() {
        let t = issuer(|t| {
            t.roles_claim = Some("realm_access.roles".into());
            t.role_scopes.insert(
                "sip-user".into(),
                vec!["sip.register".into(), "presence.read".into()],
            );
            t.role_scopes
                .insert("watcher".into(), vec!["presence.read".into()]);
        });
        let m = map(
            &t,
            &claims(json!({"preferred_username": "alice", "scope": "admin",
                            "realm_access": {"roles": ["sip-user", "watcher", "other"]}})),
        )
        .unwrap();
        assert_eq!(
            m.scopes,
            ["presence.read", "sip.register"],
            "scope claim ignored"
        );
        assert_eq!(m.roles, ["sip-user", "watcher", "other"]);

        let t = issuer(|t| t.scope_claim = Some("scp".into()));
        let m = map(
            &t,
            &claims(json!({"preferred_username": "alice", "scp": ["sip.register", 7]})),
        )
        .unwrap();
        assert_eq!(m.scopes, ["sip.register"]);
    }
}
