//! The `[oauth]` section: the authorization server's own settings. Its issuer (the
//! public URL every endpoint hangs from) is `tokens.issuer`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// The public client a request without any client identification stands for, so a
    /// phone that knows only the 401's `authz_server` can ask for a token
    /// (RFC 6749 §3.2.1 lets an unauthenticated client leave `client_id` out).
    /// Empty: every request must name a registered client.
    pub default_client_id: String,
    /// Grants of the default client.
    pub default_client_grants: Vec<String>,
    /// Scopes the default client may ask for.
    pub default_client_scopes: Vec<String>,
    /// Device authorization (RFC 8628): how long a device code lives.
    pub device_code_ttl_secs: u64,
    /// The polling interval a device is told (it grows by 5 s on each `slow_down`).
    pub device_poll_interval_secs: u64,
    /// Device codes outstanding at most (the device endpoint answers 503 beyond).
    pub max_device_codes: usize,
    /// Wrong user codes one address may enter per `device_attempt_window_secs`.
    pub device_max_attempts: u32,
    pub device_attempt_window_secs: u64,
    /// Authorization codes (RFC 6749 §4.1.2): how long one lives before redemption.
    pub auth_code_ttl_secs: u64,
    /// Outstanding authorization codes and login-to-consent steps at most (the
    /// authorize page answers `temporarily_unavailable` beyond).
    pub max_auth_codes: usize,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            default_client_id: "sip-client".to_string(),
            default_client_grants: vec![
                "password".to_string(),
                "refresh_token".to_string(),
                "urn:ietf:params:oauth:grant-type:device_code".to_string(),
            ],
            default_client_scopes: vec![
                "sip.register".to_string(),
                "presence.read".to_string(),
                "presence.write".to_string(),
            ],
            device_code_ttl_secs: 600,
            device_poll_interval_secs: 5,
            max_device_codes: 10_000,
            device_max_attempts: 10,
            device_attempt_window_secs: 300,
            auth_code_ttl_secs: 60,
            max_auth_codes: 10_000,
        }
    }
}
