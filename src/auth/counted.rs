//! Authentication outcomes for metrics (`sipreg_auth_total{scheme, result}`): the scheme
//! a request presented and what came of it, both as fixed labels.

use super::api_key::KEY_PREFIX;
use super::sip::Outcome;
use crate::sip::Request;
use crate::sip::headers::HeaderName;

/// `bearer`, `api_key` (a Bearer carrying a sipreg API key), `digest` or `none`.
fn scheme(req: &Request) -> &'static str {
    let Some(value) = req.msg.headers.first(HeaderName::Authorization) else {
        return "none";
    };
    let mut words = value.split_ascii_whitespace();
    match words.next() {
        Some(s) if s.eq_ignore_ascii_case("Bearer") => match words.next() {
            Some(t) if t.starts_with(KEY_PREFIX) => "api_key",
            _ => "bearer",
        },
        Some(s) if s.eq_ignore_ascii_case("Digest") => "digest",
        _ => "none",
    }
}

/// `ok`, or why not: `challenge` (no credentials: the usual first 401), `invalid`,
/// `token_in_clear`, `insufficient_scope`, `throttled`, `busy` (first-sighting checks
/// full), `unavailable` (store or validation down), `bad_request`.
fn result(scheme: &str, outcome: &Outcome) -> &'static str {
    let resp = match outcome {
        Outcome::Authenticated(_) => return "ok",
        Outcome::Refused(r) => r,
    };
    match resp.status {
        401 if resp.reason.starts_with("TLS Required") => "token_in_clear",
        401 if scheme == "none" => "challenge",
        401 => "invalid",
        403 if resp.reason.starts_with("Too Many") => "throttled",
        403 => "insufficient_scope",
        503 if resp.reason == super::sip::BUSY_REASON => "busy",
        503 => "unavailable",
        _ => "bad_request",
    }
}

/// Counts `outcome` of `req`.
pub(super) fn count(req: &Request, outcome: &Outcome) {
    let scheme = scheme(req);
    crate::metrics::auth(scheme, result(scheme, outcome));
}
