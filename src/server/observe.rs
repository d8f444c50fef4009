//! What the operations endpoints read from a running sipreg: the [`Snapshot`] a scrape
//! publishes (the core's and the NOTIFY client's counters, table sizes, connections,
//! the write-behind queue) and whether the SIP listeners serve.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use metrics_exporter_prometheus::PrometheusHandle;

use super::Core;
use crate::http::ops::Ops;
use crate::metrics::Snapshot;
use crate::presence::PresenceService;
use crate::registrar::Registrar;
use crate::transaction::client::Uac;
use crate::users::UsersService;

/// The current values (sizes are counted now: a scrape, not the hot path, pays).
pub fn snapshot(
    core: &Core,
    uac: &Uac,
    registrar: &Registrar,
    presence: &PresenceService,
) -> Snapshot {
    let (write_behind_depth, write_behind_oldest_secs) = registrar.write_behind();
    Snapshot {
        received: core.stats.received.load(Relaxed),
        handled: core.stats.handled.load(Relaxed),
        retransmissions: core.stats.retransmissions.load(Relaxed),
        rejected: core.stats.rejected.load(Relaxed),
        dropped: core.stats.dropped.load(Relaxed),
        transactions: core.transactions.len(),
        transaction_bytes: core.transactions.bytes(),
        notify_sent: uac.stats.sent.load(Relaxed),
        notify_retransmissions: uac.stats.retransmissions.load(Relaxed),
        notify_timeouts: uac.stats.timeouts.load(Relaxed),
        bindings: registrar.table.bindings(),
        aors: registrar.table.aors(),
        subscriptions: presence.subscriptions.len(),
        publications: presence.publications.len(),
        write_behind_depth,
        write_behind_oldest_secs,
        store: registrar.store_counters(),
        connections: core.connections.by_transport(),
    }
}

/// The `/ready` and `/metrics` state of an app.
pub fn ops(
    core: &Arc<Core>,
    uac: &Arc<Uac>,
    registrar: &Arc<Registrar>,
    presence: &Arc<PresenceService>,
    users: &Arc<UsersService>,
    metrics: Option<PrometheusHandle>,
) -> Ops {
    let (c, u, r, p) = (
        Arc::clone(core),
        Arc::clone(uac),
        Arc::clone(registrar),
        Arc::clone(presence),
    );
    let serving = Arc::clone(core);
    Ops {
        users: Arc::clone(users),
        metrics,
        snapshot: Box::new(move || snapshot(&c, &u, &r, &p)),
        serving: Box::new(move || serving.serving.load(Acquire)),
    }
}
