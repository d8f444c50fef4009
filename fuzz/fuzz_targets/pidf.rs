//! PIDF bodies (RFC 3863/4479/4480) through the parser PUBLISH uses, with the printer
//! behind NOTIFY. Checks:
//! - the size limit is applied before anything is read;
//! - an error is a short single line (it becomes a SIP reason phrase);
//! - a parsed document prints to a document that parses to the same model, and printing
//!   that again gives the same text (what `tests/presence_pidf.rs` checks by example).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipreg::presence::{Limits, PidfError, parse};

const LIMITS: Limits = Limits {
    max_body: 4_096,
    max_depth: 12,
};

fuzz_target!(|data: &[u8]| {
    let doc = match parse(data, &LIMITS) {
        Ok(doc) => doc,
        Err(e) => {
            assert_eq!(
                matches!(e, PidfError::TooLarge { .. }),
                data.len() > LIMITS.max_body
            );
            let text = e.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(text.chars().count() <= 200, "{text:?}");
            return;
        }
    };
    assert!(data.len() <= LIMITS.max_body);
    let printed = doc.to_xml();
    // Escaping may lengthen the text: the size limit is not the point here.
    let unbounded = Limits {
        max_body: usize::MAX,
        ..LIMITS
    };
    let again = parse(printed.as_bytes(), &unbounded)
        .unwrap_or_else(|e| panic!("the printed document does not parse ({e}):\n{printed}"));
    assert_eq!(doc, again, "parse(print(doc)) != doc\n{printed}");
    assert_eq!(again.to_xml(), printed, "printing is not a fixpoint");
});
