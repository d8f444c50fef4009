//! SIP messages: the model ([`message`]), the parser ([`parser`]), URIs and addresses
//! ([`uri`], [`name_addr`]), typed headers ([`headers`], one per file), the validated view
//! of a request ([`request`]) and the responses sipreg builds ([`response`]).

pub mod headers;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod params;
pub mod parser;
pub mod text;
pub mod uri;

pub use message::{Header, Headers, Message};
pub use method::Method;
pub use name_addr::NameAddr;
pub use parser::{Frame, Limits, ParseError, frame_stream, parse_datagram};
pub use uri::{SipUri, Uri};
pub mod request;
pub mod response;

pub use request::{Rejection, Request};
pub use response::Response;
