//! The grant types the token endpoint serves (RFC 6749 §4), by their registered names.

/// A grant type sipreg's token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.3: username and password, what RFC 8898 clients in the wild send.
    Password,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4: a confidential client acting for itself.
    ClientCredentials,
    /// RFC 8628: a device without a keyboard shows a code the user approves elsewhere.
    DeviceCode,
    /// RFC 6749 §4.1 with PKCE (RFC 7636): a browser-based login and consent page.
    AuthorizationCode,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::AuthorizationCode,
    ];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            GrantType::AuthorizationCode => "authorization_code",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::parse("implicit"), None);
        assert_eq!(GrantType::parse("Password"), None);
    }
}
