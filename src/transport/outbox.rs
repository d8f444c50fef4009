//! A stream connection's outbox: what the layers above queue for one connection (answers,
//! NOTIFYs), written by the connection's own task.
//!
//! Most of what goes out is the answer to the request the connection's task is handling
//! at that moment, queued from inside that call. A channel would wake the task that is
//! already running; tokio then reschedules it as a yield and wakes a second worker
//! thread to steal it, a thread wake-up per answer that costs more than the TLS record.
//! The outbox wakes its task only while the task waits; otherwise the task takes what
//! is queued before it waits again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection's task is this far behind (its peer reads too slowly).
    Full,
    /// The connection has closed.
    Closed,
}

struct State {
    queue: VecDeque<Bytes>,
    /// The connection's task waits and must be woken for anything queued.
    waiting: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still holds a valid queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side: cloned into the connection table and every [`super::Outbound`].
#[derive(Clone)]
pub struct OutboxTx(Arc<Shared>);

impl OutboxTx {
    /// Queues `bytes` for the connection without waiting.
    pub fn try_send(&self, bytes: Bytes) -> Result<(), SendError> {
        let mut s = self.0.lock();
        if s.closed {
            return Err(SendError::Closed);
        }
        if s.queue.len() >= self.0.capacity {
            return Err(SendError::Full);
        }
        s.queue.push_back(bytes);
        let wake = std::mem::take(&mut s.waiting);
        drop(s);
        if wake {
            self.0.notify.notify_one();
        }
        Ok(())
    }
}

/// The connection task's side. Dropping it closes the outbox: later sends fail.
pub struct Outbox(Arc<Shared>);

impl Outbox {
    /// An outbox holding at most `capacity` messages.
    pub fn new(capacity: usize) -> (OutboxTx, Outbox) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                waiting: false,
                closed: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        });
        (OutboxTx(Arc::clone(&shared)), Outbox(shared))
    }

    /// Appends everything queued to `out` (one write carries it all).
    pub fn drain_into(&self, out: &mut BytesMut) {
        let mut s = self.0.lock();
        while let Some(b) = s.queue.pop_front() {
            out.extend_from_slice(&b);
        }
    }

    /// Everything queued, one message each (for transports that frame messages).
    pub fn take(&self) -> VecDeque<Bytes> {
        std::mem::take(&mut self.0.lock().queue)
    }

    /// Before the task waits: true when nothing is queued, and from now on a send wakes
    /// it; false when something is queued (take it instead of waiting).
    pub fn arm(&self) -> bool {
        let mut s = self.0.lock();
        s.waiting = s.queue.is_empty();
        s.waiting
    }

    /// After the task woke, for whatever reason: sends no longer need to wake it.
    pub fn disarm(&self) {
        self.0.lock().waiting = false;
    }

    /// Completes when a send found the task armed (or a wake is pending from before).
    pub async fn notified(&self) {
        self.0.notify.notified().await
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.closed = true;
        s.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_in_order_up_to_capacity_then_full_then_closed() {
        let (tx, rx) = Outbox::new(2);
        assert_eq!(tx.try_send(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(tx.try_send(Bytes::from_static(b"b")), Ok(()));
        assert_eq!(tx.try_send(Bytes::from_static(b"c")), Err(SendError::Full));
        let mut out = BytesMut::new();
        rx.drain_into(&mut out);
        assert_eq!(&out[..], b"ab");
        drop(rx);
        assert_eq!(
            tx.try_send(Bytes::from_static(b"d")),
            Err(SendError::Closed)
        );
    }

    #[test]
    fn arming_refuses_while_something_is_queued() {
        let (tx, rx) = Outbox::new(4);
        tx.try_send(Bytes::from_static(b"x")).unwrap();
        assert!(!rx.arm());
        assert_eq!(rx.take().len(), 1);
        assert!(rx.arm());
    }

    #[tokio::test]
    async fn a_send_wakes_an_armed_task_and_only_then() {
        let (tx, rx) = Outbox::new(4);
        // Not armed: the send queues without a wake-up.
        tx.try_send(Bytes::from_static(b"1")).unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), rx.notified())
                .await
                .is_err()
        );
        rx.take();
        assert!(rx.arm());
        let tx2 = tx.clone();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            tx2.try_send(Bytes::from_static(b"2")).unwrap();
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.notified())
            .await
            .expect("the send wakes the armed task");
        rx.disarm();
        assert_eq!(rx.take().len(), 1);
        sender.await.unwrap();
    }
}
