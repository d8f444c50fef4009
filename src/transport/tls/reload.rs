//! Reloading the certificate when its files change: a poll of their modification
//! times every few seconds (no file-notification crate; a certificate changes a few
//! times a year). SIGHUP is the server's business: it calls
//! [`ReloadableAcceptor::reload`](super::ReloadableAcceptor::reload) directly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::acceptor::ReloadableAcceptor;

/// Checks the files every `every` until `stop` is cancelled; a change reloads (a failed
/// reload is logged and retried only when the files change again).
pub async fn watch_files(
    acceptor: Arc<ReloadableAcceptor>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let acc = Arc::clone(&acceptor);
        // Reading a few small files; off the async threads all the same.
        let _ = tokio::task::spawn_blocking(move || acc.reload_if_changed()).await;
    }
}
