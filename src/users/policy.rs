//! The password policy: length, character classes, no username inside, not a
//! common password. Every broken rule is reported, not just the first.

use super::UsersConfig;

/// Passwords too common to allow (lower case; matched case-insensitively).
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "password1234",
    "password123!",
    "Password123!",
    "passw0rd1234",
    "qwertyuiop12",
    "qwertyuiop123",
    "qwerty123456",
    "iloveyou1234",
    "administrator",
    "administrator1",
    "welcome12345",
    "welcome123!",
    "letmein12345",
    "changeme1234",
    "changeme123!",
    "trustno11234",
    "football1234",
    "baseball1234",
    "monkey123456",
    "dragon123456",
    "sunshine1234",
    "princess1234",
    "abc123456789",
    "superman1234",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "zaq12wsx3edc",
    "qazwsxedc123",
    "p@ssw0rd1234",
    "P@ssw0rd1234",
    "P@ssword1234",
    "Welcome@1234",
    "Password@123",
    "Passw0rd!234",
    "Summer2024!!",
    "Winter2024!!",
    "Spring2024!!",
    "Autumn2024!!",
    "Qwerty123456!",
    "Aa123456789!",
    "Admin@123456",
    "Letmein@1234",
    "Changeme@123",
];

/// Checks `password` against the policy in `cfg`; `Err` lists every broken rule.
pub fn check(cfg: &UsersConfig, username: &str, password: &str) -> Result<(), Vec<String>> {
    let mut broken = Vec::new();
    let len = password.chars().count();
    if len < cfg.password_min_length {
        broken.push(format!(
            "must be at least {} characters",
            cfg.password_min_length
        ));
    }
    if len > cfg.password_max_length {
        broken.push(format!(
            "must be at most {} characters",
            cfg.password_max_length
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if classes < cfg.password_min_classes {
        broken.push(format!(
            "must mix at least {} of: lower case, upper case, digits, other characters",
            cfg.password_min_classes
        ));
    }
    let lower = password.to_lowercase();
    if cfg.password_reject_username
        && !username.is_empty()
        && lower.contains(&username.to_lowercase())
    {
        broken.push("must not contain the username".to_string());
    }
    if cfg.password_reject_common && COMMON.iter().any(|c| c.to_lowercase() == lower) {
        broken.push("is a commonly used password".to_string());
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_broken_rule() {
        let cfg = UsersConfig::default();
        let err = check(&cfg, "alice", "alice").unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err.iter().any(|e| e.contains("at least 12")));
        assert!(err.iter().any(|e| e.contains("username")));
        assert!(err.iter().any(|e| e.contains("mix")));
    }

    #[test]
    fn rejects_common_and_accepts_good() {
        let cfg = UsersConfig::default();
        let err = check(&cfg, "bob", "Password123!").unwrap_err();
        assert_eq!(err, vec!["is a commonly used password".to_string()]);
        assert!(check(&cfg, "bob", "correct Horse 7 battery").is_ok());
        let long = "aB3".repeat(50);
        assert!(check(&cfg, "bob", &long).unwrap_err()[0].contains("at most 128"));
    }
}
