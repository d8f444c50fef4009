//! SIP message model, parser and typed headers.
