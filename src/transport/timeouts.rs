//! The timeouts of stream connections (TCP, TLS): how long one may stay silent, and how
//! long a message may take to arrive whole. Shared by the listeners and changed on
//! reload; a connection reads them once, when it opens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct StreamTimeouts {
    idle_secs: AtomicU64,
    message_secs: AtomicU64,
}

impl StreamTimeouts {
    /// `idle_secs`: a connection silent this long is closed; `message_secs`: a message
    /// must be complete this long after its first byte. At least 1 s each.
    pub fn new(idle_secs: u64, message_secs: u64) -> StreamTimeouts {
        let t = StreamTimeouts {
            idle_secs: AtomicU64::new(1),
            message_secs: AtomicU64::new(1),
        };
        t.set(idle_secs, message_secs);
        t
    }

    /// The timeouts of connections opened from now on.
    pub fn set(&self, idle_secs: u64, message_secs: u64) {
        self.idle_secs.store(idle_secs.max(1), Ordering::Relaxed);
        self.message_secs
            .store(message_secs.max(1), Ordering::Relaxed);
    }

    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs.load(Ordering::Relaxed))
    }

    pub fn message(&self) -> Duration {
        Duration::from_secs(self.message_secs.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_a_second_and_changed_live() {
        let t = StreamTimeouts::new(0, 30);
        assert_eq!(
            (t.idle(), t.message()),
            (Duration::from_secs(1), Duration::from_secs(30))
        );
        t.set(300, 5);
        assert_eq!(
            (t.idle(), t.message()),
            (Duration::from_secs(300), Duration::from_secs(5))
        );
    }
}
