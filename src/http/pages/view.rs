//! The pages' HTML (maud: escaped by construction) and the headers every page carries.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// A whole page around `body`.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sipreg" }
                style { (STYLE) }
            }
            body {
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px #0002}h1{font-size:1.4rem;margin-top:0}label{display:block;\
margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;\
font-size:1rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1rem;\
font-size:1rem;margin-right:.5rem}.error{color:#a00}.code{font-family:monospace;\
font-size:1.3rem;letter-spacing:.1rem}ul{padding-left:1.2rem}";

/// A page response with its CSRF cookie (when new) and the headers that keep it out
/// of frames, caches and other sites' reach.
pub fn respond(status: StatusCode, markup: Markup, new_csrf: Option<&str>) -> Response {
    respond_with(status, markup, new_csrf, "")
}

/// [`respond`] for a page whose form's answer may redirect to `form_target` (a CSP
/// source): `form-action` also governs redirects after a submission.
pub fn respond_with(
    status: StatusCode,
    markup: Markup,
    new_csrf: Option<&str>,
    form_target: &str,
) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {form_target}; frame-ancestors 'none'"
    );
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(v) = new_csrf.and_then(super::csrf::set_cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}
