//! Request methods (RFC 3261 §7.1 and the extensions sipreg knows of).

use std::fmt;

use bytestring::ByteString;

use super::text::is_token_char;

/// A SIP method. Methods are case-sensitive; anything else valid is kept as [`Method::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Subscribe,
    Publish,
    Options,
    Notify,
    Invite,
    Ack,
    Bye,
    Cancel,
    Message,
    Info,
    Update,
    Refer,
    Prack,
    Other(ByteString),
}

impl Method {
    /// Parses a method token; `None` when it is not a valid token.
    pub fn parse(src: &ByteString, s: &str) -> Option<Method> {
        if let Some(m) = Method::known(s) {
            return Some(m);
        }
        (!s.is_empty() && s.chars().all(is_token_char))
            .then(|| Method::Other(super::text::sub(src, s)))
    }

    /// A method sipreg knows, by its (case-sensitive) name.
    pub fn known(s: &str) -> Option<Method> {
        Some(match s {
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "PUBLISH" => Method::Publish,
            "OPTIONS" => Method::Options,
            "NOTIFY" => Method::Notify,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "MESSAGE" => Method::Message,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "REFER" => Method::Refer,
            "PRACK" => Method::Prack,
            _ => return None,
        })
    }

    /// The name of a method sipreg knows; `None` for an extension method.
    pub fn known_name(&self) -> Option<&'static str> {
        Some(match self {
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Publish => "PUBLISH",
            Method::Options => "OPTIONS",
            Method::Notify => "NOTIFY",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Refer => "REFER",
            Method::Prack => "PRACK",
            Method::Other(_) => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(s) => s,
            known => known.known_name().unwrap_or_default(),
        }
    }

    /// Methods this server recognises (answered, or refused with 405).
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_unknown_and_invalid() {
        let src = ByteString::from_static("RE%47IST%45R");
        assert_eq!(Method::parse(&src, &src), Some(Method::Other(src.clone())));
        assert_eq!(Method::parse(&src, "REGISTER"), Some(Method::Register));
        // Methods are case-sensitive.
        assert!(!Method::parse(&src, "register").unwrap().is_known());
        assert_eq!(Method::parse(&src, "BAD METHOD"), None);
    }
}
