//! UDP and TCP transports.
