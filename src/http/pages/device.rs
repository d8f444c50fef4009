//! The device verification page (RFC 8628 §3.3): the person types the code their
//! phone shows, sees which client asks for what, and approves with their username and
//! password, or denies.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::csrf;
use super::view::{page, respond};
use crate::oauth::OAuthServer;
use crate::oauth::device::{DeviceView, VerifyError};

#[derive(Deserialize, Default)]
pub struct CodeQuery {
    user_code: Option<String>,
}

/// GET /device: the code form (pre-filled from `verification_uri_complete`).
pub async fn form(headers: HeaderMap, Query(q): Query<CodeQuery>) -> Response {
    let (token, new) = csrf::token(&headers);
    let typed = q.user_code.unwrap_or_default();
    respond(
        StatusCode::OK,
        code_page(&token, &typed, None),
        new.then_some(token.as_str()),
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    user_code: String,
    csrf: Option<String>,
}

/// POST /device: the code typed; on to the decision.
pub async fn enter(
    State(server): State<Arc<OAuthServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<CodeForm>,
) -> Response {
    let (token, new) = csrf::token(&headers);
    let set = new.then_some(token.as_str());
    if !csrf::check(&headers, f.csrf.as_deref()) {
        return forbidden(&token, set);
    }
    match server.device_view(&f.user_code, peer.ip()) {
        Ok(view) => respond(StatusCode::OK, decide_page(&token, &view, None), set),
        Err(e) => respond(
            status_of(&e),
            code_page(&token, &f.user_code, Some(&e)),
            set,
        ),
    }
}

#[derive(Deserialize)]
pub struct DecideForm {
    user_code: String,
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
    action: String,
}

/// POST /device/decide: approve (with credentials) or deny.
pub async fn decide(
    State(server): State<Arc<OAuthServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<DecideForm>,
) -> Response {
    let (token, new) = csrf::token(&headers);
    let set = new.then_some(token.as_str());
    if !csrf::check(&headers, f.csrf.as_deref()) {
        return forbidden(&token, set);
    }
    let approve = f.action == "approve";
    let credentials = match (approve, f.username.as_deref(), f.password.as_deref()) {
        (false, _, _) => None,
        (true, Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some((u, p)),
        (true, _, _) => {
            return match server.device_view(&f.user_code, peer.ip()) {
                Ok(view) => respond(
                    StatusCode::BAD_REQUEST,
                    decide_page(&token, &view, Some(&VerifyError::BadCredentials)),
                    set,
                ),
                Err(e) => respond(status_of(&e), code_page(&token, "", Some(&e)), set),
            };
        }
    };
    match server
        .device_decide(&f.user_code, credentials, peer.ip())
        .await
    {
        Ok(()) => {
            let (title, text) = if approve {
                (
                    "Device approved",
                    "You can return to your device: it will sign in now.",
                )
            } else {
                ("Request denied", "The device will not be signed in.")
            };
            respond(
                StatusCode::OK,
                page(title, html! { p #done { (text) } }),
                set,
            )
        }
        Err(VerifyError::BadCredentials) => match server.device_view(&f.user_code, peer.ip()) {
            Ok(view) => respond(
                StatusCode::UNAUTHORIZED,
                decide_page(&token, &view, Some(&VerifyError::BadCredentials)),
                set,
            ),
            Err(e) => respond(status_of(&e), code_page(&token, "", Some(&e)), set),
        },
        Err(e) => respond(status_of(&e), code_page(&token, "", Some(&e)), set),
    }
}

fn status_of(e: &VerifyError) -> StatusCode {
    match e {
        VerifyError::WrongCode => StatusCode::NOT_FOUND,
        VerifyError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        VerifyError::BadCredentials => StatusCode::UNAUTHORIZED,
        VerifyError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn forbidden(token: &str, set: Option<&str>) -> Response {
    let body = html! {
        p .error { "This form has expired or did not come from this site." }
        p { a href="/device" { "Start again" } }
    };
    let _ = token;
    respond(StatusCode::FORBIDDEN, page("Form expired", body), set)
}

fn error_line(e: Option<&VerifyError>) -> Markup {
    html! {
        @if let Some(e) = e {
            p .error #error { (e.message()) }
        }
    }
}

fn code_page(token: &str, typed: &str, error: Option<&VerifyError>) -> Markup {
    page(
        "Connect a device",
        html! {
            p { "Enter the code your phone or device shows." }
            (error_line(error))
            form method="post" action="/device" {
                input type="hidden" name="csrf" value=(token);
                label for="user_code" { "Code" }
                input #user_code type="text" name="user_code" value=(typed)
                    autocomplete="off" autocapitalize="characters" placeholder="BCDF-GHJK" required;
                button #continue type="submit" { "Continue" }
            }
        },
    )
}

fn decide_page(token: &str, view: &DeviceView, error: Option<&VerifyError>) -> Markup {
    page(
        "Approve this device?",
        html! {
            p { strong #client { (view.client_name) } " asks to act for you with code "
                span .code #shown_code { (view.user_code) } ":" }
            ul #scopes {
                @for s in &view.scopes { li { (describe(s)) } }
            }
            (error_line(error))
            form method="post" action="/device/decide" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="user_code" value=(view.user_code);
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password";
                button #approve type="submit" name="action" value="approve" { "Approve" }
                button #deny type="submit" name="action" value="deny" formnovalidate { "Deny" }
            }
        },
    )
}

/// What a scope lets the device (or app) do, in words.
pub(super) fn describe(scope: &str) -> String {
    match scope {
        "sip.register" => "register your phone number (receive calls)".to_string(),
        "presence.read" => "see the presence of people you watch".to_string(),
        "presence.write" => "publish your presence".to_string(),
        "admin" => "administer sipreg (all users)".to_string(),
        "openid" => "know who you are (your user id and username)".to_string(),
        other => other.to_string(),
    }
}
