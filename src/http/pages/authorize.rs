//! The authorization endpoint's pages (RFC 6749 §4.1.1): the person signs in, sees
//! which client asks for what, and approves or denies; the browser then goes back to
//! the client's registered redirect URI with a code or an error. A request whose
//! client or redirect URI cannot be trusted ends on an error page here, never in a
//! redirect.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::csrf;
use super::device::describe;
use super::view::{page, respond, respond_with};
use crate::oauth::authorize::{AuthorizeError, AuthorizeRequest, Consent};
use crate::oauth::device::VerifyError;
use crate::oauth::metadata::AUTHORIZE_PATH;
use crate::oauth::{OAuthServer, Params};

pub const DECIDE_PATH: &str = "/oauth/authorize/decide";

/// The request's parameters, carried from the GET through the login form.
const CARRIED: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// GET /oauth/authorize: the request checked, then the sign-in form.
pub async fn start(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (token, new) = csrf::token(&headers);
    let set = new.then_some(token.as_str());
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return error_page(&e.description, set),
    };
    match server.authorize_request(&params).await {
        Ok(req) => login(StatusCode::OK, &token, &params, &req, None, set),
        Err(e) => refuse(e, set),
    }
}

/// POST /oauth/authorize: the sign-in form; on to consent.
pub async fn sign_in(
    State(server): State<Arc<OAuthServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (token, new) = csrf::token(&headers);
    let set = new.then_some(token.as_str());
    let params = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return error_page(&e.description, set),
    };
    if !csrf::check(&headers, params.get("csrf")) {
        return forbidden(set);
    }
    let req = match server.authorize_request(&params).await {
        Ok(r) => r,
        Err(e) => return refuse(e, set),
    };
    let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
        let e = VerifyError::BadCredentials;
        return login(
            StatusCode::BAD_REQUEST,
            &token,
            &params,
            &req,
            Some(&e),
            set,
        );
    };
    match server
        .authorize_login(req.clone(), username, password, peer.ip())
        .await
    {
        Ok(ticket) => {
            let consent = consent_page(&token, &ticket, &req, username);
            respond_with(StatusCode::OK, consent, set, &form_target(&req))
        }
        Err(e) => login(status_of(&e), &token, &params, &req, Some(&e), set),
    }
}

/// POST /oauth/authorize/decide: approve or deny; back to the client.
pub async fn decide(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (token, new) = csrf::token(&headers);
    let set = new.then_some(token.as_str());
    let params = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return error_page(&e.description, set),
    };
    if !csrf::check(&headers, params.get("csrf")) {
        return forbidden(set);
    }
    let consent: Option<Consent> = params.get("ticket").and_then(|t| server.take_consent(t));
    let Some(consent) = consent else {
        return error_page(
            "This sign-in has expired or was already used. Start again from the application.",
            set,
        );
    };
    let approve = params.get("action") == Some("approve");
    redirect(&server.authorize_decide(consent, approve))
}

fn refuse(e: AuthorizeError, set: Option<&str>) -> Response {
    match e {
        AuthorizeError::Page(why) => error_page(&why, set),
        AuthorizeError::Redirect(url) => redirect(&url),
    }
}

/// 303 to the client's redirect URI (already checked against its registration).
fn redirect(url: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return error_page("The redirect URI cannot be used.", None);
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn status_of(e: &VerifyError) -> StatusCode {
    match e {
        VerifyError::WrongCode => StatusCode::BAD_REQUEST,
        VerifyError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        VerifyError::BadCredentials => StatusCode::UNAUTHORIZED,
        VerifyError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The CSP source of the redirect URI: the forms' answers redirect there, and
/// `form-action` covers redirects after a submission.
fn form_target(req: &AuthorizeRequest) -> String {
    let Ok(url) = url::Url::parse(&req.redirect_uri) else {
        return String::new();
    };
    let source = match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    // A source expression is one token of safe characters.
    if source
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
    {
        source
    } else {
        String::new()
    }
}

fn error_page(why: &str, set: Option<&str>) -> Response {
    let body = html! {
        p .error #error { (why) }
        p { "Go back to the application and try again." }
    };
    respond(StatusCode::BAD_REQUEST, page("Cannot sign in", body), set)
}

fn forbidden(set: Option<&str>) -> Response {
    let body = html! {
        p .error #error { "This form has expired or did not come from this site." }
        p { "Go back to the application and try again." }
    };
    respond(StatusCode::FORBIDDEN, page("Form expired", body), set)
}

fn login(
    status: StatusCode,
    token: &str,
    params: &Params,
    req: &AuthorizeRequest,
    error: Option<&VerifyError>,
    set: Option<&str>,
) -> Response {
    let markup = page(
        "Sign in",
        html! {
            p { strong #client { (req.client.name) } " asks you to sign in with sipreg." }
            @if let Some(e) = error {
                p .error #error { (e.message()) }
            }
            form method="post" action=(AUTHORIZE_PATH) {
                input type="hidden" name="csrf" value=(token);
                @for name in CARRIED {
                    @if let Some(v) = params.get(name) {
                        input type="hidden" name=(name) value=(v);
                    }
                }
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button #sign_in type="submit" { "Sign in" }
            }
        },
    );
    respond_with(status, markup, set, &form_target(req))
}

fn consent_page(token: &str, ticket: &str, req: &AuthorizeRequest, username: &str) -> Markup {
    page(
        "Allow access?",
        html! {
            p { strong #client { (req.client.name) } " asks to act for "
                strong #user { (username) } ":" }
            ul #scopes {
                @for s in &req.scopes { li { (describe(s)) } }
            }
            form method="post" action=(DECIDE_PATH) {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="ticket" value=(ticket);
                button #approve type="submit" name="action" value="approve" { "Approve" }
                button #deny type="submit" name="action" value="deny" { "Deny" }
            }
        },
    )
}
