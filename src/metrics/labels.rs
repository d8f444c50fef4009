//! Label values as `&'static str`, so counting a request allocates nothing: status codes
//! from a table built at compile time, methods from their fixed names.

use crate::sip::Method;

/// "100" ..= "699", three ASCII digits each.
static STATUS_DIGITS: [[u8; 3]; 600] = {
    let mut t = [[0u8; 3]; 600];
    let mut i = 0;
    while i < 600 {
        let code = 100 + i;
        t[i] = [
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ];
        i += 1;
    }
    t
};

/// The status code as a label; "other" outside 100..=699.
pub fn status(code: u16) -> &'static str {
    let Some(digits) = usize::from(code)
        .checked_sub(100)
        .and_then(|i| STATUS_DIGITS.get(i))
    else {
        return "other";
    };
    std::str::from_utf8(digits).unwrap_or("other")
}

/// The method as a label; extension methods share "other" (a client picks their names,
/// and each name would be a new series).
pub fn method(m: &Method) -> &'static str {
    m.known_name().unwrap_or("other")
}

/// The method of a request line that may not have parsed ("other" when unknown).
pub fn method_of_line(first_line: &str) -> &'static str {
    let token = first_line.split(' ').next().unwrap_or("");
    Method::known(token)
        .and_then(|m| m.known_name())
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_is_its_decimal_text() {
        for code in 100..=699u16 {
            assert_eq!(status(code), code.to_string());
        }
        assert_eq!(status(99), "other");
        assert_eq!(status(700), "other");
        assert_eq!(status(0), "other");
    }

    #[test]
    fn methods_are_named_and_extensions_are_other() {
        assert_eq!(method_of_line("REGISTER sip:a SIP/2.0"), "REGISTER");
        assert_eq!(method_of_line("FOO sip:a SIP/2.0"), "other");
        assert_eq!(method_of_line(""), "other");
    }
}
