//! `Contact` / `m` (RFC 3261 §20.10): `*`, or addresses with `expires`, `q`,
//! `+sip.instance` and `reg-id` (RFC 5626) parameters; unknown parameters are kept.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};
use crate::sip::name_addr::NameAddr;
use crate::sip::text::unquote;

/// One Contact element.
// `*` is rare and tiny; boxing the address would cost an allocation per contact instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// `*`: all bindings (only with `Expires: 0`, alone).
    Star,
    Addr(NameAddr),
}

/// Alias for readability at call sites that hold a whole Contact list.
pub type Contact = ContactValue;

impl ContactValue {
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            ContactValue::Star => None,
            ContactValue::Addr(a) => Some(a),
        }
    }

    /// The `expires` parameter: `Some(Err(()))` when present but not delta-seconds.
    pub fn expires(&self) -> Option<Result<u32, ()>> {
        self.addr()?
            .params
            .value("expires")
            .map(|v| parse_u32(v).ok_or(()))
    }

    /// `q` in thousandths (RFC 3261 qvalue: 0 to 1 with up to three decimals).
    pub fn q(&self) -> Option<Result<u16, ()>> {
        self.addr()?.params.value("q").map(parse_qvalue)
    }

    /// `+sip.instance` without its quotes (e.g. `<urn:uuid:...>`).
    pub fn instance(&self) -> Option<String> {
        self.addr()?.params.value("+sip.instance").map(unquote)
    }

    pub fn reg_id(&self) -> Option<Result<u32, ()>> {
        self.addr()?
            .params
            .value("reg-id")
            .map(|v| parse_u32(v).ok_or(()))
    }
}

/// Parses a qvalue (`0`, `0.5`, `1.000`) into thousandths.
pub fn parse_qvalue(v: &str) -> Result<u16, ()> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let frac_val = format!("{frac:0<3}").parse::<u16>().map_err(|_| ())?;
    match int {
        "0" => Ok(frac_val),
        "1" if frac_val == 0 => Ok(1000),
        _ => Err(()),
    }
}

impl TypedHeader for ContactValue {
    const NAME: HeaderName = HeaderName::Contact;
    const LIST: bool = true;

    fn parse(src: &ByteString, s: &str) -> Result<ContactValue, HeaderError> {
        if s.trim_ws() == "*" {
            return Ok(ContactValue::Star);
        }
        let addr = NameAddr::parse(src, s).map_err(Self::err)?;
        let c = ContactValue::Addr(addr);
        if matches!(c.q(), Some(Err(()))) {
            return Err(Self::err("q is not a qvalue"));
        }
        Ok(c)
    }
}

impl fmt::Display for ContactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContactValue::Star => f.write_str("*"),
            ContactValue::Addr(a) => a.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_params() {
        let c = ContactValue::parse_str(
            "<sip:alice@192.0.2.4:5060;transport=tcp>;expires=600;q=0.7;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1;x-unknown",
        )
        .unwrap();
        assert_eq!(c.expires(), Some(Ok(600)));
        assert_eq!(c.q(), Some(Ok(700)));
        assert_eq!(
            c.instance().as_deref(),
            Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>")
        );
        assert_eq!(c.reg_id(), Some(Ok(1)));
        assert!(c.addr().unwrap().params.contains("x-unknown"));
        assert_eq!(ContactValue::parse_str(" * ").unwrap(), ContactValue::Star);
        assert!(ContactValue::parse_str("<sip:a@b>;q=1.5").is_err());
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("0"), Ok(0));
        assert_eq!(parse_qvalue("0.33"), Ok(330));
        assert_eq!(parse_qvalue("1.000"), Ok(1000));
        assert!(parse_qvalue("1.001").is_err());
        assert!(parse_qvalue("0.1234").is_err());
    }
}
