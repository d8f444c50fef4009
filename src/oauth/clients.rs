//! The OAuth clients registry (RFC 6749 §2): what a client is allowed (grants, exact
//! redirect URIs, scopes), how it authenticates (`client_secret_basic`,
//! `client_secret_post`, or none for a public client), and the rules a registration
//! must follow.

use crate::auth::{now, secret};
use crate::users::UsersError;
use crate::users::store::ClientRecord;

use super::OAuthServer;
use super::error::OAuthError;
use super::grant::GrantType;

const MAX_ID_LEN: usize = 64;
const MAX_NAME_LEN: usize = 128;
const MAX_URI_LEN: usize = 512;
const MAX_ITEMS: usize = 32;

/// A client to register.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// The `client_id`; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// A public client (a phone, a browser app) has no secret; a confidential one gets
    /// one, shown once.
    #[serde(default)]
    pub public: bool,
    pub grants: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

/// How a request to the token or revocation endpoint identified its client.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    pub id: Option<String>,
    pub secret: Option<String>,
    /// The credentials came in `Authorization: Basic` (`client_secret_basic`).
    pub basic: bool,
}

impl OAuthServer {
    /// Registers a client; returns it and, for a confidential client, its secret
    /// (stored only as a hash).
    pub async fn add_client(
        &self,
        new: NewClient,
    ) -> Result<(ClientRecord, Option<String>), UsersError> {
        let id = match new.id {
            Some(id) => id,
            None => format!("c-{}", secret::random_hex(8)),
        };
        check_client_id(&id)?;
        if id == self.config.default_client_id {
            return Err(UsersError::Conflict(format!(
                "client '{id}' is the configured default client"
            )));
        }
        if new.name.is_empty()
            || new.name.len() > MAX_NAME_LEN
            || new.name.contains(char::is_control)
        {
            return Err(UsersError::Invalid(format!(
                "client name must be 1 to {MAX_NAME_LEN} bytes without control characters"
            )));
        }
        let grants = check_grants(&new.grants, new.public)?;
        if grants.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
            return Err(UsersError::Invalid(
                "the authorization_code grant needs at least one redirect URI".into(),
            ));
        }
        for uri in &new.redirect_uris {
            check_redirect_uri(uri)?;
        }
        if new.redirect_uris.len() > MAX_ITEMS || new.scopes.len() > MAX_ITEMS {
            return Err(UsersError::Invalid(format!(
                "at most {MAX_ITEMS} redirect URIs and scopes"
            )));
        }
        for s in &new.scopes {
            check_scope(s)?;
        }
        let secret = (!new.public).then(|| format!("cs_{}", secret::random_hex(32)));
        let record = ClientRecord {
            id,
            name: new.name,
            secret_hash: secret.as_deref().map(secret::sha256_hex),
            grants: grants.iter().map(|g| g.as_str().to_string()).collect(),
            redirect_uris: new.redirect_uris,
            scopes: new.scopes,
            created_at: now(),
        };
        self.users.store().insert_client(&record).await?;
        self.users.sync_validator().await;
        tracing::info!(client_id = %record.id, public = new.public, "OAuth client registered");
        Ok((record, secret))
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, UsersError> {
        self.users.store().list_clients().await
    }

    pub async fn get_client(&self, id: &str) -> Result<ClientRecord, UsersError> {
        self.users
            .store()
            .client_by_id(id)
            .await?
            .ok_or_else(|| UsersError::NotFound(format!("client '{id}'")))
    }

    /// Removes a client; its refresh tokens are revoked with it, and its
    /// `client_credentials` tokens stop validating.
    pub async fn remove_client(&self, id: &str) -> Result<(), UsersError> {
        let removed = self.users.store().delete_client(id).await?;
        self.users.sync_validator().await;
        if removed {
            tracing::info!(client_id = %id, "OAuth client removed");
            Ok(())
        } else {
            Err(UsersError::NotFound(format!("client '{id}'")))
        }
    }

    /// The built-in public client a request without client identification stands for.
    fn default_client(&self) -> Option<ClientRecord> {
        let c = &self.config;
        (!c.default_client_id.is_empty()).then(|| ClientRecord {
            id: c.default_client_id.clone(),
            name: "SIP phone".to_string(),
            secret_hash: None,
            grants: c.default_client_grants.clone(),
            redirect_uris: Vec::new(),
            scopes: c.default_client_scopes.clone(),
            created_at: 0,
        })
    }

    /// Authenticates the client of a token or revocation request (RFC 6749 §2.3,
    /// §3.2.1). Every failure is `invalid_client` without saying which part failed.
    pub async fn authenticate_client(&self, auth: &ClientAuth) -> Result<ClientRecord, OAuthError> {
        let Some(id) = auth.id.as_deref() else {
            if auth.secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "client_secret without client_id",
                ));
            }
            return self.default_client().ok_or_else(OAuthError::invalid_client);
        };
        let stored = self.users.store().client_by_id(id).await?;
        let client = match stored {
            Some(c) => c,
            None => match self.default_client() {
                Some(d) if d.id == id => d,
                _ => return Err(OAuthError::invalid_client()),
            },
        };
        match (&client.secret_hash, &auth.secret) {
            // A public client has nothing to prove; one that sends a secret is confused
            // about what it is, and is refused rather than silently trusted.
            (None, None) => Ok(client),
            (Some(hash), Some(given)) if secret::ct_eq(hash, &secret::sha256_hex(given)) => {
                Ok(client)
            }
            _ => Err(OAuthError::invalid_client()),
        }
    }
}

/// The client may use `grant` (`unauthorized_client` otherwise, RFC 6749 §5.2).
pub fn allows(client: &ClientRecord, grant: GrantType) -> Result<(), OAuthError> {
    if client.grants.iter().any(|g| g == grant.as_str()) {
        Ok(())
    } else {
        Err(OAuthError::new(
            super::error::ErrorCode::UnauthorizedClient,
            format!("the client may not use the {grant} grant"),
        ))
    }
}

fn check_client_id(id: &str) -> Result<(), UsersError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(UsersError::Invalid(format!(
            "client id must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 - _ ."
        )))
    }
}

fn check_grants(names: &[String], public: bool) -> Result<Vec<GrantType>, UsersError> {
    if names.is_empty() {
        return Err(UsersError::Invalid(
            "a client needs at least one grant".into(),
        ));
    }
    let mut out = Vec::new();
    for n in names {
        let g = GrantType::parse(n).ok_or_else(|| {
            let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
            UsersError::Invalid(format!("unknown grant '{n}' (known: {})", known.join(", ")))
        })?;
        if public && g == GrantType::ClientCredentials {
            return Err(UsersError::Invalid(
                "a public client cannot use client_credentials (it has no secret)".into(),
            ));
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// RFC 6749 §3.1.2 and RFC 8252 §7: absolute, no fragment; `https`, or `http` to a
/// loopback host (native apps), or a private-use scheme with a dot (`com.example.app:`).
fn check_redirect_uri(uri: &str) -> Result<(), UsersError> {
    let bad = |why: &str| Err(UsersError::Invalid(format!("redirect URI {uri:?}: {why}")));
    if uri.len() > MAX_URI_LEN {
        return bad("too long");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return bad("not an absolute URI");
    };
    if url.fragment().is_some() {
        return bad("must not have a fragment");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => bad("http is allowed only to a loopback host"),
        },
        s if s.contains('.') => Ok(()),
        _ => bad("use https, http to loopback, or a private-use scheme such as com.example.app"),
    }
}

fn check_scope(s: &str) -> Result<(), UsersError> {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UsersError::Invalid(format!("invalid scope {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:5555/cb",
            "http://[::1]/cb",
            "http://localhost/cb",
            "com.example.phone:/oauth",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,x",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_and_scopes_are_checked() {
        assert!(check_grants(&["client_credentials".into()], true).is_err());
        assert!(check_grants(&["client_credentials".into()], false).is_ok());
        assert!(check_grants(&["implicit".into()], false).is_err());
        assert!(check_grants(&[], false).is_err());
        assert!(check_scope("sip.register").is_ok());
        assert!(check_scope("a b").is_err());
        assert!(check_scope("quote\"").is_err());
        assert!(check_client_id("phone-app_1.0").is_ok());
        assert!(check_client_id("a b").is_err());
    }
}
