//! `[users]` settings: Argon2id cost, the password policy, login throttling and the
//! scopes new users receive.

use serde::Deserialize;

/// Password hashing, policy and throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// Argon2id memory cost in KiB (19456 = 19 MiB, OWASP's minimum for Argon2id).
    pub argon2_memory_kib: u32,
    /// Argon2id passes over memory.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    pub password_min_length: usize,
    pub password_max_length: usize,
    /// How many of the four classes (lower, upper, digit, other) a password needs.
    pub password_min_classes: usize,
    /// Reject passwords that contain the username (case-insensitively).
    pub password_reject_username: bool,
    /// Reject passwords found in the built-in list of common passwords.
    pub password_reject_common: bool,
    /// Failed logins per username, and per source address, before lockout.
    pub throttle_max_failures: u32,
    /// Window over which failures count, and how long a lockout lasts, in seconds.
    pub throttle_window_secs: u64,
    /// Most usernames and addresses whose failures are tracked at once; failures of
    /// further ones are counted, not tracked.
    pub throttle_max_keys: usize,
    /// Scopes given to a new user when none are requested.
    pub default_scopes: Vec<String>,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            password_min_length: 12,
            password_max_length: 128,
            password_min_classes: 3,
            password_reject_username: true,
            password_reject_common: true,
            throttle_max_failures: 5,
            throttle_window_secs: 900,
            throttle_max_keys: 100_000,
            default_scopes: vec![
                "sip.register".to_string(),
                "presence.read".to_string(),
                "presence.write".to_string(),
            ],
        }
    }
}
