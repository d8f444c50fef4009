//! CSRF protection for the pages' forms: a double-submit token. Every page sets a
//! random token in an `HttpOnly`, `SameSite=Strict` cookie and puts the same token in
//! its forms; a POST is accepted only when the two match. Another site can neither
//! read the cookie nor make the browser send it (SameSite), so it cannot forge a form.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::auth::secret;

pub const COOKIE: &str = "sipreg_csrf";

/// The request's token, or a new one (which the response must then set).
pub fn token(headers: &HeaderMap) -> (String, bool) {
    match from_cookie(headers) {
        Some(t) => (t, false),
        None => (secret::random_hex(16), true),
    }
}

/// The `Set-Cookie` value for `token`.
pub fn set_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

/// Whether a POST's form token matches its cookie.
pub fn check(headers: &HeaderMap, form_token: Option<&str>) -> bool {
    match (from_cookie(headers), form_token) {
        (Some(c), Some(f)) => !c.is_empty() && secret::ct_eq(&c, f),
        _ => false,
    }
}

fn from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_must_repeat_the_cookie() {
        let mut h = HeaderMap::new();
        let (t, new) = token(&h);
        assert!(new);
        assert!(!check(&h, Some(&t)), "no cookie, no POST");
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={t}")).unwrap(),
        );
        assert_eq!(token(&h), (t.clone(), false));
        assert!(check(&h, Some(&t)));
        assert!(!check(&h, Some("0123456789abcdef0123456789abcdef")));
        assert!(!check(&h, None));
    }
}
