//! Every metric sipreg exports: its name, kind and meaning, in one table so the
//! descriptions, the docs and the dashboard test all read the same list.

/// What a metric is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// SIP requests answered, by method, final status and transport.
pub const SIP_REQUESTS: &str = "sipreg_sip_requests_total";
/// Messages received (datagrams and framed stream messages).
pub const SIP_RECEIVED: &str = "sipreg_sip_messages_received_total";
/// Messages that did not parse or validate (answered 4xx/5xx statelessly).
pub const SIP_REJECTED: &str = "sipreg_sip_messages_rejected_total";
/// Messages dropped without an answer.
pub const SIP_DROPPED: &str = "sipreg_sip_messages_dropped_total";
/// Request retransmissions absorbed or answered by the transaction table.
pub const SIP_RETRANSMISSIONS: &str = "sipreg_sip_retransmissions_total";
/// Requests passed to the registrar or presence service.
pub const SIP_HANDLED: &str = "sipreg_sip_requests_handled_total";
/// Server transactions remembered (in progress or completed, awaiting Timer J).
pub const SIP_TRANSACTIONS: &str = "sipreg_sip_transactions";
/// Bytes the remembered server transactions are accounted at (`[sip] transaction_memory_bytes`).
pub const SIP_TRANSACTION_BYTES: &str = "sipreg_sip_transaction_bytes";
/// SIP authentication outcomes, by scheme and result.
pub const AUTH: &str = "sipreg_auth_total";
/// Token validation cache lookups, by result (hit, miss).
pub const TOKEN_CACHE: &str = "sipreg_token_cache_total";
/// Bindings in the registrar.
pub const BINDINGS: &str = "sipreg_bindings";
/// Addresses of record with at least one binding.
pub const AORS: &str = "sipreg_aors";
/// Presence subscriptions.
pub const SUBSCRIPTIONS: &str = "sipreg_subscriptions";
/// Presence publications.
pub const PUBLICATIONS: &str = "sipreg_publications";
/// Binding changes queued for the store (write-behind).
pub const WRITE_BEHIND_DEPTH: &str = "sipreg_write_behind_queue_depth";
/// Age of the oldest binding change still queued for the store.
pub const WRITE_BEHIND_AGE: &str = "sipreg_write_behind_oldest_age_seconds";
/// Binding changes given up without reaching the store (each also logged).
pub const STORE_DROPPED: &str = "sipreg_store_changes_dropped_total";
/// REGISTERs answered 503 because their changes could not be stored or queued.
pub const STORE_REFUSED: &str = "sipreg_store_registers_refused_total";
/// Failed attempts to write bindings to the store (each retried).
pub const STORE_WRITE_FAILURES: &str = "sipreg_store_write_failures_total";
/// Open connections, by transport.
pub const CONNECTIONS: &str = "sipreg_connections";
/// TLS handshakes (SIP over TLS and WSS), by result (ok, failed).
pub const TLS_HANDSHAKES: &str = "sipreg_tls_handshakes_total";
/// NOTIFY requests sent (first transmissions).
pub const NOTIFY_SENT: &str = "sipreg_notify_sent_total";
/// NOTIFY retransmissions (Timer E, UDP).
pub const NOTIFY_RETRANSMISSIONS: &str = "sipreg_notify_retransmissions_total";
/// NOTIFY transactions that got no final answer before Timer F.
pub const NOTIFY_TIMEOUTS: &str = "sipreg_notify_timeouts_total";

/// Name, kind and description of every metric.
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        SIP_REQUESTS,
        Kind::Counter,
        "SIP requests answered, by method, final status and transport",
    ),
    (
        SIP_RECEIVED,
        Kind::Counter,
        "SIP messages received (datagrams and framed stream messages)",
    ),
    (
        SIP_REJECTED,
        Kind::Counter,
        "SIP messages that did not parse or validate",
    ),
    (
        SIP_DROPPED,
        Kind::Counter,
        "SIP messages dropped without an answer",
    ),
    (
        SIP_RETRANSMISSIONS,
        Kind::Counter,
        "SIP request retransmissions absorbed or answered by the transaction table",
    ),
    (
        SIP_HANDLED,
        Kind::Counter,
        "SIP requests passed to the registrar or presence service",
    ),
    (
        SIP_TRANSACTIONS,
        Kind::Gauge,
        "SIP server transactions remembered",
    ),
    (
        SIP_TRANSACTION_BYTES,
        Kind::Gauge,
        "Bytes the remembered SIP server transactions take",
    ),
    (
        AUTH,
        Kind::Counter,
        "SIP authentication outcomes, by scheme and result",
    ),
    (
        TOKEN_CACHE,
        Kind::Counter,
        "Token validation cache lookups, by result",
    ),
    (BINDINGS, Kind::Gauge, "Bindings in the registrar"),
    (AORS, Kind::Gauge, "Addresses of record with bindings"),
    (SUBSCRIPTIONS, Kind::Gauge, "Presence subscriptions"),
    (PUBLICATIONS, Kind::Gauge, "Presence publications"),
    (
        WRITE_BEHIND_DEPTH,
        Kind::Gauge,
        "Binding changes queued for the store",
    ),
    (
        WRITE_BEHIND_AGE,
        Kind::Gauge,
        "Age of the oldest binding change queued for the store",
    ),
    (
        STORE_DROPPED,
        Kind::Counter,
        "Binding changes given up without reaching the store (each logged)",
    ),
    (
        STORE_REFUSED,
        Kind::Counter,
        "REGISTERs answered 503 because their changes could not be stored or queued",
    ),
    (
        STORE_WRITE_FAILURES,
        Kind::Counter,
        "Failed writes of bindings to the store (retried)",
    ),
    (CONNECTIONS, Kind::Gauge, "Open connections, by transport"),
    (
        TLS_HANDSHAKES,
        Kind::Counter,
        "TLS handshakes on SIP over TLS and WSS, by result",
    ),
    (NOTIFY_SENT, Kind::Counter, "NOTIFY requests sent"),
    (
        NOTIFY_RETRANSMISSIONS,
        Kind::Counter,
        "NOTIFY retransmissions (UDP, Timer E)",
    ),
    (
        NOTIFY_TIMEOUTS,
        Kind::Counter,
        "NOTIFY transactions without a final answer before Timer F",
    ),
];
