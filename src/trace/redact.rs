//! Takes secrets out of a SIP message before it is traced: the credentials of
//! `Authorization` and `Proxy-Authorization` (a Bearer token, Digest's `response=`; the
//! whole credentials of any other scheme), a Bearer token anywhere else, any
//! `password=`/`"password":` value, and the password of a `sip:user:password@host` URI.
//! What is left (Digest username, realm, nonce) is what one debugs with.

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// The message with its secrets replaced by [`REDACTED`] (invalid UTF-8 shown as U+FFFD).
pub fn redact(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let (head, body) = split_head(&text);
    let mut out = String::with_capacity(text.len());
    let mut lines = head.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        // A header field with its folded continuation lines (RFC 3261 §7.3.1).
        let mut field = line.to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                field.push_str(next);
                lines.next();
            } else {
                break;
            }
        }
        out.push_str(&redact_field(&field));
    }
    out.push_str(&redact_free_text(body));
    out
}

/// The header section (with the blank line) and the body.
fn split_head(text: &str) -> (&str, &str) {
    match text.find("\r\n\r\n") {
        Some(i) => text.split_at(i + 4),
        None => match text.find("\n\n") {
            Some(i) => text.split_at(i + 2),
            None => (text, ""),
        },
    }
}

fn redact_field(field: &str) -> String {
    let Some(colon) = field.find(':') else {
        return redact_free_text(field);
    };
    let name = field[..colon].trim();
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        let value = &field[colon + 1..];
        let end = value.trim_end_matches(['\r', '\n']).len();
        let (value, eol) = value.split_at(end);
        return format!("{}:{}{eol}", &field[..colon], redact_credentials(value));
    }
    redact_free_text(field)
}

/// Digest credentials keep every parameter but `response`; any other scheme keeps
/// only its name.
fn redact_credentials(value: &str) -> String {
    let lead = value.len() - value.trim_start().len();
    let trimmed = value.trim_start();
    let scheme_end = trimmed
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    let scheme = &trimmed[..scheme_end];
    if scheme.eq_ignore_ascii_case("digest") {
        return format!("{}{}", &value[..lead], redact_param(trimmed, "response"));
    }
    format!("{}{scheme} {REDACTED}", &value[..lead])
}

/// Every `name=value` / `name="value"` (name in any case) with its value redacted.
fn redact_param(text: &str, name: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(name) {
        let start = at + found;
        let before_ok = start == 0 || !is_token_char(lower.as_bytes()[start - 1]);
        let mut i = start + name.len();
        // Optional spaces, '=' or ':' (JSON), optional spaces, optional quote.
        let bytes = text.as_bytes();
        if lower[i..].starts_with('"') {
            i += 1;
        }
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        if !before_ok || i >= bytes.len() || !matches!(bytes[i], b'=' | b':') {
            out.push_str(&text[at..start + name.len()]);
            at = start + name.len();
            continue;
        }
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        out.push_str(&text[at..i]);
        let end = if i < bytes.len() && bytes[i] == b'"' {
            out.push('"');
            let close = text[i + 1..].find('"').map_or(text.len(), |e| i + 1 + e);
            out.push_str(REDACTED);
            close
        } else {
            let e = text[i..]
                .find(|c: char| {
                    matches!(c, ',' | ';' | '&' | '"' | '\'' | '}' | '>') || c.is_whitespace()
                })
                .map_or(text.len(), |e| i + e);
            if e > i {
                out.push_str(REDACTED);
            }
            e
        };
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// Secrets that may sit anywhere: Bearer tokens, passwords, URI passwords.
fn redact_free_text(text: &str) -> String {
    let text = redact_bearer(text);
    let text = redact_param(&text, "password");
    redact_uri_passwords(&text)
}

/// `Bearer <token>` anywhere (a token echoed in a body, a header of another name).
fn redact_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("bearer ") {
        let start = at + found + "bearer ".len();
        let token_start =
            start + (text[start..].len() - text[start..].trim_start_matches([' ', '\t']).len());
        let token_end = text[token_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\''))
            .map_or(text.len(), |e| token_start + e);
        out.push_str(&text[at..token_start]);
        if token_end > token_start {
            out.push_str(REDACTED);
        }
        at = token_end;
    }
    out.push_str(&text[at..]);
    out
}

/// `sip:user:password@host` and `sips:...` keep the user, lose the password.
fn redact_uri_passwords(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("sip") {
        let start = at + found;
        let rest = &lower[start..];
        let scheme_len = if rest.starts_with("sips:") {
            5
        } else if rest.starts_with("sip:") {
            4
        } else {
            out.push_str(&text[at..start + 3]);
            at = start + 3;
            continue;
        };
        let user_start = start + scheme_len;
        let end = text[user_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '>' | ';' | '?' | ',' | '"' | '@'))
            .map_or(text.len(), |e| user_start + e);
        let userinfo = &text[user_start..end];
        match userinfo.find(':') {
            Some(colon) if text[end..].starts_with('@') => {
                out.push_str(&text[at..user_start + colon + 1]);
                out.push_str(REDACTED);
            }
            _ => out.push_str(&text[at..end]),
        }
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_lose_the_token() {
        let msg = "REGISTER sip:example.com SIP/2.0\r\nAuthorization: Bearer eyJhbGci.eyJzdWIi.c2ln\r\nContent-Length: 0\r\n\r\n";
        let out = redact(msg.as_bytes());
        assert!(!out.contains("eyJ"), "{out}");
        assert!(
            out.contains("Authorization: Bearer <redacted>\r\n"),
            "{out}"
        );
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"), "{out}");
    }

    #[test]
    fn digest_keeps_all_but_the_response() {
        let msg = "REGISTER sip:example.com SIP/2.0\r\nproxy-authorization: Digest username=\"alice\", realm=\"example.com\",\r\n response=\"0123456789abcdef0123456789abcdef\", nonce=\"n1\"\r\n\r\n";
        let out = redact(msg.as_bytes());
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(out.contains("username=\"alice\""), "{out}");
        assert!(out.contains("response=\"<redacted>\""), "{out}");
        assert!(out.contains("nonce=\"n1\""), "{out}");
        let unquoted =
            redact(b"X sip:a SIP/2.0\r\nAuthorization: Digest response=abc123,nonce=n\r\n\r\n");
        assert!(!unquoted.contains("abc123"), "{unquoted}");
        assert!(unquoted.contains("nonce=n"), "{unquoted}");
    }

    #[test]
    fn other_schemes_keep_only_their_name() {
        let out = redact(b"X sip:a SIP/2.0\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n");
        assert!(out.contains("Authorization: Basic <redacted>\r\n"), "{out}");
    }

    #[test]
    fn passwords_and_stray_tokens_anywhere() {
        let msg = "MESSAGE sip:a@example.com SIP/2.0\r\nContact: <sip:bob:hunter2@192.0.2.1>\r\nX-Note: Bearer abc.def\r\n\r\n{\"password\": \"s3cret\", \"user\":\"bob\"} password=pw2&x=1";
        let out = redact(msg.as_bytes());
        for secret in ["hunter2", "abc.def", "s3cret", "pw2"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("<sip:bob:<redacted>@192.0.2.1>"), "{out}");
        assert!(out.contains("\"user\":\"bob\""), "{out}");
        assert!(out.contains("&x=1"), "{out}");
    }

    #[test]
    fn uris_without_password_are_untouched() {
        let msg = "OPTIONS sip:alice@example.com:5060;transport=tcp SIP/2.0\r\nTo: <sips:192.0.2.1:5061>\r\n\r\n";
        assert_eq!(redact(msg.as_bytes()), msg);
    }
}
