//! Prometheus metrics (`GET /metrics` on the admin listener).
//!
//! The `metrics` crate is the facade: any module, down to the transports, counts with its
//! macros and `&'static str` labels ([`labels`]), which do nothing until a recorder is
//! installed. [`install`] puts the Prometheus recorder in place once per process (with
//! `[metrics] enabled = false` nobody calls it, so counting costs nothing and `/metrics`
//! is not served).
//!
//! Counters the core already keeps ([`Snapshot`]: the SIP core's `Stats`, the NOTIFY
//! client's) and sizes (bindings, subscriptions, connections, queues) are read when
//! `/metrics` is scraped instead of being counted twice on the hot path.

pub mod labels;
pub mod names;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use metrics::{Counter, Label};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// The `[metrics]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Count and serve `/metrics`; off: no recorder, `/metrics` answers 404.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

/// Transport label values, in the order [`Snapshot::connections`] counts them.
pub const TRANSPORTS: [&str; 5] = ["udp", "tcp", "tls", "ws", "wss"];

/// Values read from the running services when `/metrics` is scraped. The counters go
/// in with `absolute` (the recorder keeps the largest value it was given): one app per
/// process, as `sipreg serve` runs, reads its own; several in one test process share
/// the largest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub received: u64,
    pub handled: u64,
    pub retransmissions: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub transactions: usize,
    pub transaction_bytes: usize,
    pub notify_sent: u64,
    pub notify_retransmissions: u64,
    pub notify_timeouts: u64,
    pub bindings: usize,
    pub aors: usize,
    pub subscriptions: usize,
    pub publications: usize,
    pub write_behind_depth: usize,
    pub write_behind_oldest_secs: f64,
    /// The store's loss and refusal counters: dropped, refused, write failures.
    pub store: [u64; 3],
    /// Open connections by transport, in [`TRANSPORTS`] order (UDP is always 0).
    pub connections: [usize; 5],
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (the first call; later calls return the same
/// handle). `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Descriptions, and a zero for every series with a fixed set of labels, so a scrape
/// shows them before the first event (a dashboard then plots 0, not "no data").
fn describe() {
    for (name, kind, help) in names::ALL {
        match kind {
            names::Kind::Counter => metrics::describe_counter!(*name, *help),
            names::Kind::Gauge => metrics::describe_gauge!(*name, *help),
        }
    }
    for result in ["ok", "failed"] {
        metrics::counter!(names::TLS_HANDSHAKES, "result" => result).absolute(0);
    }
    for result in ["hit", "miss"] {
        metrics::counter!(names::TOKEN_CACHE, "result" => result).absolute(0);
    }
    publish(&Snapshot::default());
}

/// Sets the scraped values.
pub fn publish(s: &Snapshot) {
    use metrics::{counter, gauge};
    counter!(names::SIP_RECEIVED).absolute(s.received);
    counter!(names::SIP_HANDLED).absolute(s.handled);
    counter!(names::SIP_RETRANSMISSIONS).absolute(s.retransmissions);
    counter!(names::SIP_REJECTED).absolute(s.rejected);
    counter!(names::SIP_DROPPED).absolute(s.dropped);
    counter!(names::NOTIFY_SENT).absolute(s.notify_sent);
    counter!(names::NOTIFY_RETRANSMISSIONS).absolute(s.notify_retransmissions);
    counter!(names::NOTIFY_TIMEOUTS).absolute(s.notify_timeouts);
    gauge!(names::SIP_TRANSACTIONS).set(s.transactions as f64);
    gauge!(names::SIP_TRANSACTION_BYTES).set(s.transaction_bytes as f64);
    gauge!(names::BINDINGS).set(s.bindings as f64);
    gauge!(names::AORS).set(s.aors as f64);
    gauge!(names::SUBSCRIPTIONS).set(s.subscriptions as f64);
    gauge!(names::PUBLICATIONS).set(s.publications as f64);
    gauge!(names::WRITE_BEHIND_DEPTH).set(s.write_behind_depth as f64);
    gauge!(names::WRITE_BEHIND_AGE).set(s.write_behind_oldest_secs);
    counter!(names::STORE_DROPPED).absolute(s.store[0]);
    counter!(names::STORE_REFUSED).absolute(s.store[1]);
    counter!(names::STORE_WRITE_FAILURES).absolute(s.store[2]);
    for (t, n) in TRANSPORTS.into_iter().zip(s.connections) {
        gauge!(names::CONNECTIONS, "transport" => t).set(n as f64);
    }
}

/// The Prometheus text for a scrape: `snapshot`'s values, then everything counted.
pub fn render(handle: &PrometheusHandle, snapshot: &Snapshot) -> String {
    publish(snapshot);
    handle.render()
}

/// Whether the recorder is in place; without it every count below returns at once.
fn installed() -> bool {
    matches!(HANDLE.get(), Some(Some(_)))
}

type Handles = HashMap<[usize; 4], Counter, foldhash::fast::FixedState>;

thread_local! {
    /// Counter handles by (name, label values), identified by the addresses of their
    /// `&'static str`s: after the first use on a thread, a count is a hash lookup and an
    /// atomic add (the macros with run-time label values build a `Vec` of labels and
    /// look the series up in the recorder's registry every time). Bounded: every label
    /// value comes from a fixed set.
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

/// Adds one to `name{labels}` (at most three labels).
fn bump<const N: usize>(name: &'static str, labels: [(&'static str, &'static str); N]) {
    if !installed() {
        return;
    }
    let mut id = [name.as_ptr() as usize, 0, 0, 0];
    for (slot, (_, v)) in id[1..].iter_mut().zip(labels) {
        *slot = v.as_ptr() as usize ^ (v.len() << 48);
    }
    HANDLES.with_borrow_mut(|handles| {
        handles
            .entry(id)
            .or_insert_with(|| {
                let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
                metrics::counter!(name, labels)
            })
            .increment(1);
    });
}

/// Counts one answered SIP request (method from [`labels::method`]).
pub fn sip_request(method: &'static str, status: u16, transport: &'static str) {
    bump(
        names::SIP_REQUESTS,
        [
            ("method", method),
            ("status", labels::status(status)),
            ("transport", transport),
        ],
    );
}

/// Counts one SIP authentication outcome.
pub fn auth(scheme: &'static str, result: &'static str) {
    bump(names::AUTH, [("scheme", scheme), ("result", result)]);
}

/// Counts one token validation cache lookup.
pub fn token_cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    bump(names::TOKEN_CACHE, [("result", result)]);
}

/// Counts one finished TLS handshake.
pub fn tls_handshake(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    bump(names::TLS_HANDSHAKES, [("result", result)]);
}

#[cfg(test)]
mod tests;
