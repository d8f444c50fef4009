//! API key format: `sipreg_<prefix>_<secret>`, a 48-bit public prefix for lookup and
//! a 256-bit secret stored only as a hash.

use super::secret;

pub const KEY_PREFIX: &str = "sipreg_";

/// A freshly made key: the full string is shown once and never stored.
pub struct NewApiKey {
    pub prefix: String,
    pub full: String,
    pub secret_hash: String,
}

pub fn generate() -> NewApiKey {
    let prefix = secret::random_hex(6);
    let secret = secret::random_hex(32);
    NewApiKey {
        full: format!("{KEY_PREFIX}{prefix}_{secret}"),
        secret_hash: secret::sha256_hex(&secret),
        prefix,
    }
}

/// `(prefix, secret)` if `key` has the API key shape.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(prefix, 12) && hex(secret, 64)).then_some((prefix, secret))
}

/// Constant-time check of `secret` against the stored hash.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    secret::ct_eq(&secret::sha256_hex(secret), stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_bad_shapes() {
        let k = generate();
        let (p, s) = parse(&k.full).unwrap();
        assert_eq!(p, k.prefix);
        assert!(matches(s, &k.secret_hash));
        assert!(!matches(&"0".repeat(64), &k.secret_hash));
        assert!(parse("sipreg_abc_def").is_none());
        assert!(parse("sipreg_").is_none());
        assert!(parse("bearer").is_none());
    }
}
