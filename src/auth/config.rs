//! `[tokens]` and `[auth]` settings: issuer, audiences, lifetimes, signing keys,
//! trusted external issuers, and Digest credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Access tokens, refresh tokens, API keys and the validator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// `iss` of the tokens sipreg signs.
    pub issuer: String,
    /// `aud` of the tokens sipreg signs; a local token must carry one of them.
    pub audiences: Vec<String>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Folder where generated signing keys are written (mode 0600).
    pub key_dir: PathBuf,
    /// A PEM RSA private key to sign with instead of generated ones. Empty: generate.
    pub signing_key_file: PathBuf,
    /// The algorithm of generated signing keys. Changing it makes the next start
    /// generate a key of the new kind; tokens of the old key stay valid until it retires.
    pub algorithm: SigningAlgorithm,
    /// After `apikey rotate`, the old key keeps working this many seconds.
    pub api_key_grace_secs: u64,
    /// Most validation results cached at once (TinyLFU admission, LRU eviction).
    pub cache_capacity: usize,
    /// A cached result lives until its token's `exp`; a value above 0 caps it at this
    /// many seconds. Revocations reach cached results at once either way.
    pub cache_max_secs: u64,
    /// Threads checking the signatures of tokens not yet cached (and API keys), off the
    /// SIP receive threads at the lowest CPU priority; 0: one per CPU, at most 8.
    pub verify_threads: usize,
    /// First-sighting checks that may wait for those threads; beyond, 503 with
    /// `Retry-After` at once.
    pub verify_queue: usize,
    /// How often the revocation log is polled for other processes' revocations, in
    /// milliseconds.
    pub revocation_poll_ms: u64,
    /// Other issuers whose tokens are accepted.
    pub trusted_issuers: Vec<TrustedIssuer>,
}

/// The JWS algorithm of sipreg's own keys (`[tokens] algorithm`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048 keys: what every client accepts.
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256: signs ~50× faster than RS256, verifies a bit slower.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 (RFC 8037): the fastest to sign and verify; not every JWT library has it.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
        }
    }

    pub fn jws(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// An external issuer whose tokens the validator accepts. Its keys come from
/// `public_key_file`, `jwks_url`, or, when neither is set, OpenID discovery
/// (`{issuer}/.well-known/openid-configuration` → `jwks_uri`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values (one must match).
    pub audiences: Vec<String>,
    /// PEM public key (RSA or EC P-256) file; or use `jwks_url` or discovery.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// JWKS document URL, fetched on first use and refreshed every `jwks_refresh_secs`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS refresh period, in seconds.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_secs: u64,
    /// Least time between two refetches caused by an unknown kid, in seconds.
    #[serde(default = "default_jwks_min_refetch")]
    pub jwks_min_refetch_secs: u64,
    /// The claim naming the user: `preferred_username` when unset (then `username`,
    /// the claim sipreg's own tokens carry), or `sub`, `email`, any claim. A value
    /// `user@domain` or a SIP URI `sip:user@domain` goes through `domain_rewrite`.
    #[serde(default)]
    pub username_claim: Option<String>,
    /// Domains accepted in the username claim, each mapped to a suffix appended to
    /// the user part: `{ "corp.example" = "" }` makes `alice@corp.example` the
    /// user `alice`; `{ "partner.example" = ".partner" }` makes it `alice.partner`.
    /// A value with a domain not listed here is refused.
    #[serde(default)]
    pub domain_rewrite: BTreeMap<String, String>,
    /// The claim holding the scopes: a space-separated string (`scope`, the
    /// default) or an array (`scp`). Ignored when `roles_claim` is set.
    #[serde(default)]
    pub scope_claim: Option<String>,
    /// The claim holding the user's roles (an array or a space-separated string);
    /// when set, the scopes are those `role_scopes` gives these roles.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// sipreg scopes granted per role, e.g. `{ "sip-user" = ["sip.register"] }`.
    #[serde(default)]
    pub role_scopes: BTreeMap<String, Vec<String>>,
    /// A user this issuer names but sipreg does not know: refused, or created on
    /// first sight (without a password) once the token is valid.
    #[serde(default)]
    pub provision: Provision,
}

impl Default for TrustedIssuer {
    fn default() -> Self {
        TrustedIssuer {
            issuer: String::new(),
            audiences: Vec::new(),
            public_key_file: None,
            jwks_url: None,
            jwks_refresh_secs: default_jwks_refresh(),
            jwks_min_refetch_secs: default_jwks_min_refetch(),
            username_claim: None,
            domain_rewrite: BTreeMap::new(),
            scope_claim: None,
            roles_claim: None,
            role_scopes: BTreeMap::new(),
            provision: Provision::Refuse,
        }
    }
}

/// What happens to a valid external token naming an unknown user.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provision {
    #[default]
    Refuse,
    Auto,
}

fn default_jwks_refresh() -> u64 {
    300
}

fn default_jwks_min_refetch() -> u64 {
    30
}

/// SIP authentication: whether it is required, Digest for phones without OAuth, and the
/// throttling of repeated failures.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Authenticate REGISTER, SUBSCRIBE and PUBLISH. `false` is for labs only.
    pub required: bool,
    /// Store Digest HA1 values (MD5 and SHA-256) whenever a password is set, and offer
    /// Digest challenges on SIP.
    pub digest_enabled: bool,
    /// Realm of the SIP challenges and of the HA1 values.
    pub digest_realm: String,
    /// Challenges a 401 offers, in this order: `bearer`, `digest-sha256`, `digest-md5`
    /// (RFC 8760 §2.4: the preferred first). Bearer is left out over cleartext transports
    /// to non-loopback peers unless `bearer_over_cleartext = "allow"`.
    pub challenges: Vec<String>,
    /// Per-client challenge lists, matched on `User-Agent` with `*` globs; first match
    /// wins, clients no rule matches get `challenges`.
    pub client_rules: Vec<ClientRuleConfig>,
    /// A Bearer token over UDP, TCP or WS from a non-loopback address: `refuse` (401
    /// `error="invalid_request"`, and no Bearer challenge offered there) or `allow`.
    pub bearer_over_cleartext: CleartextBearer,
    /// How long a Digest nonce stays fresh, in seconds; older ones get `stale=true`.
    pub nonce_ttl_secs: u64,
    /// Failed SIP authentications from one IP address within the window before it is
    /// answered 403 with Retry-After.
    pub max_failures: u32,
    pub failure_window_secs: u64,
}

/// One `[[auth.client_rules]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientRuleConfig {
    /// A `User-Agent` glob (`*` is any run of characters; letters in any case).
    pub user_agent: String,
    /// The challenges these clients get, in order.
    pub challenges: Vec<String>,
}

impl ClientRuleConfig {
    fn new(user_agent: &str, challenges: &[&str]) -> ClientRuleConfig {
        ClientRuleConfig {
            user_agent: user_agent.to_string(),
            challenges: challenges.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// Whether Bearer tokens may cross cleartext transports (RFC 6750 §5.3 says no).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CleartextBearer {
    #[default]
    Refuse,
    Allow,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            issuer: "https://sipreg.local".to_string(),
            audiences: vec!["sip".to_string()],
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            leeway_secs: 30,
            key_dir: PathBuf::from("data"),
            signing_key_file: PathBuf::new(),
            algorithm: SigningAlgorithm::Rs256,
            api_key_grace_secs: 24 * 3600,
            cache_capacity: 10_000,
            cache_max_secs: 0,
            verify_threads: 0,
            verify_queue: 256,
            revocation_poll_ms: 1000,
            trusted_issuers: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: true,
            digest_enabled: true,
            digest_realm: "sipreg".to_string(),
            challenges: ["bearer", "digest-sha256", "digest-md5"]
                .map(String::from)
                .to_vec(),
            // Clients that fail on a challenge they cannot parse (see docs/clients.md).
            client_rules: vec![
                ClientRuleConfig::new("baresip*", &["digest-md5"]),
                ClientRuleConfig::new("Linphone*", &["digest-sha256", "digest-md5"]),
                ClientRuleConfig::new("sipp*", &["digest-md5"]),
                ClientRuleConfig::new("JsSIP*", &["digest-md5"]),
            ],
            bearer_over_cleartext: CleartextBearer::Refuse,
            nonce_ttl_secs: 300,
            max_failures: 20,
            failure_window_secs: 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Keycloak example of docs/users-and-tokens.md parses into the mapping keys.
    #[test]
    fn a_keycloak_issuer_with_role_scopes_parses() {
        let t: TokensConfig = toml::from_str(
            r#"
            [[trusted_issuers]]
            issuer = "https://sso.example.com/realms/voice"
            audiences = ["sipreg"]
            roles_claim = "realm_access.roles"
            role_scopes = { "sip-user" = ["sip.register", "presence.read"] }
            provision = "auto"
            domain_rewrite = { "corp.example" = "" }
            "#,
        )
        .unwrap();
        let i = &t.trusted_issuers[0];
        assert_eq!(i.jwks_url, None);
        assert_eq!(i.provision, Provision::Auto);
        assert_eq!(i.roles_claim.as_deref(), Some("realm_access.roles"));
        assert_eq!(i.role_scopes["sip-user"], ["sip.register", "presence.read"]);
        assert_eq!(i.domain_rewrite["corp.example"], "");
        assert_eq!(i.jwks_min_refetch_secs, 30);
        assert!(
            toml::from_str::<TokensConfig>(
                "[[trusted_issuers]]\nissuer = \"x\"\naudiences = []\nprovision = \"maybe\""
            )
            .is_err()
        );
    }
}
