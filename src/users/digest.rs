//! Digest HA1 values, H(username ":" realm ":" password), for MD5 (RFC 2617) and
//! SHA-256 (RFC 8760), stored so Digest-only phones can register.

use md5::Md5;
use sha2::{Digest, Sha256};

/// `(realm, algorithm, HA1 hex)` for both algorithms.
pub fn ha1_set(username: &str, realm: &str, password: &str) -> Vec<(String, String, String)> {
    let input = format!("{username}:{realm}:{password}");
    vec![
        (
            realm.to_string(),
            "MD5".to_string(),
            crate::auth::secret::hex(&Md5::digest(input.as_bytes())),
        ),
        (
            realm.to_string(),
            "SHA-256".to_string(),
            crate::auth::secret::hex(&Sha256::digest(input.as_bytes())),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_ha1() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let set = ha1_set("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(set[0].2, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(set[1].1, "SHA-256");
        assert_eq!(set[1].2.len(), 64);
    }
}
