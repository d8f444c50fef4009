//! Why a PIDF body was refused. Each message names the problem in a few words, fit to be
//! the reason phrase of a SIP 400 (or 413 for [`PidfError::TooLarge`]): one line, no
//! control characters, never more than a short excerpt of what the peer sent.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PidfError {
    #[error("PIDF body too large ({size} bytes, limit {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("PIDF body is not UTF-8")]
    NotUtf8,
    #[error("PIDF encoding {0} not supported")]
    Encoding(String),
    #[error("DOCTYPE not allowed in PIDF")]
    Doctype,
    #[error("undefined entity &{0};")]
    UndefinedEntity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("XML nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("root element is not a PIDF presence")]
    NotPidf,
    #[error("{element} without {attribute}")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("tuple {0} without status")]
    MissingStatus(String),
    #[error("duplicate {element} in {parent}")]
    Duplicate {
        element: &'static str,
        parent: &'static str,
    },
    #[error("invalid {element} value {value}")]
    InvalidValue {
        element: &'static str,
        value: String,
    },
    #[error("unexpected {0}")]
    Unexpected(String),
}

impl PidfError {
    /// The SIP status a PUBLISH carrying the body is answered with (issue 5): 413 for a
    /// body over the limit, 400 for everything else.
    pub fn sip_status(&self) -> u16 {
        match self {
            PidfError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// `s` made safe for a reason phrase: control characters become spaces and it is cut
/// to a short excerpt.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt("a\r\nb"), "a  b");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).len(), 63);
    }

    #[test]
    fn messages_name_the_problem() {
        let e = PidfError::MissingAttribute {
            element: "tuple",
            attribute: "id",
        };
        assert_eq!(e.to_string(), "tuple without id");
        assert_eq!(
            PidfError::Doctype.to_string(),
            "DOCTYPE not allowed in PIDF"
        );
    }
}
