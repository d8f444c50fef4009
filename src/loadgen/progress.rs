//! The progress line shown while a run goes on, when stdout is a terminal: counters the
//! lanes bump (relaxed atomics, read twice a second; warm-up included) drawn with
//! indicatif.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub retransmissions: AtomicU64,
    pub timeouts: AtomicU64,
    /// Connections that could not be opened (the first one's reason is printed).
    pub connect_errors: AtomicU64,
}

/// Draws the line until `done` resolves; the line is cleared at the end.
pub async fn show(p: Arc<Progress>, total: Duration, done: tokio::sync::oneshot::Receiver<()>) {
    let bar =
        ProgressBar::with_draw_target(Some(total.as_millis() as u64), ProgressDrawTarget::stdout());
    if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = 0u64;
    tokio::pin!(done);
    loop {
        tokio::select! {
            _ = &mut done => break,
            _ = tick.tick() => {
                let sent = p.sent.load(Ordering::Relaxed);
                bar.set_position(started.elapsed().as_millis() as u64);
                bar.set_message(format!(
                    "{sent} sent ({}/s) {} answered {} retx {} timeouts",
                    (sent - last) * 2,
                    p.answered.load(Ordering::Relaxed),
                    p.retransmissions.load(Ordering::Relaxed),
                    p.timeouts.load(Ordering::Relaxed),
                ));
                last = sent;
            }
        }
    }
    bar.finish_and_clear();
}
