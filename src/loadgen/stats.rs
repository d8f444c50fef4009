//! What a lane counts during the measured part of a run, and the merge of all lanes.
//! Counters are plain integers owned by one lane (no sharing on the hot path); the
//! latency histogram is an HdrHistogram in microseconds.

use hdrhistogram::Histogram;
use std::time::Duration;

/// The largest latency recorded exactly (60 s); anything longer is saturated.
const MAX_US: u64 = 60_000_000;

#[derive(Debug, Clone)]
pub struct Stats {
    /// New transactions sent (retransmissions not included).
    pub sent: u64,
    /// Final answers matched to a transaction, by status code (index = code - 100).
    pub statuses: [u64; 600],
    pub provisional: u64,
    /// Timer E retransmissions (UDP).
    pub retransmissions: u64,
    /// Transactions given up without a final answer.
    pub timeouts: u64,
    /// 2xx answers within the SLA.
    pub ok_in_time: u64,
    /// Answers that matched no transaction (late, duplicated, foreign) or did not parse.
    pub unmatched: u64,
    /// Calls that could not start because every user or slot was busy (open loop).
    pub skipped: u64,
    /// Requests that could not be sent (socket error).
    pub send_errors: u64,
    pub notify_received: u64,
    pub notify_answered: u64,
    /// 401s to requests sent without credentials on purpose (register-auth/-digest).
    pub challenges: u64,
    /// 401 challenges that offered nothing the generator can answer.
    pub unusable_challenges: u64,
    /// Latency from the first copy sent to the final answer, µs.
    pub latency: Histogram<u64>,
    /// Connections opened during the run (a connection per call): TCP connect, TLS
    /// handshake and WebSocket upgrade each time.
    pub connects: u64,
    /// Of those, TLS handshakes that resumed an earlier session.
    pub resumed: u64,
    /// Connections that could not be opened (refused, handshake failed).
    pub connect_errors: u64,
    /// Time to open a connection, µs.
    pub connect_latency: Histogram<u64>,
    /// The measured answers per reporting window (a minute by default), in order; 401s
    /// to requests sent without credentials on purpose are left out.
    pub windows: Vec<Window>,
}

/// What one reporting window of a long run saw.
#[derive(Debug, Clone)]
pub struct Window {
    pub answered: u64,
    pub ok_in_time: u64,
    /// Latency, µs, to two significant digits (a window's histogram stays small).
    pub latency: Histogram<u64>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            answered: 0,
            ok_in_time: 0,
            latency: Histogram::new_with_bounds(1, MAX_US, 2)
                .or_else(|_| Histogram::new(2))
                .unwrap_or_else(|_| unreachable!("2 significant digits is valid")),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sent: 0,
            statuses: [0; 600],
            provisional: 0,
            retransmissions: 0,
            timeouts: 0,
            ok_in_time: 0,
            unmatched: 0,
            skipped: 0,
            send_errors: 0,
            notify_received: 0,
            notify_answered: 0,
            challenges: 0,
            unusable_challenges: 0,
            latency: new_histogram(),
            connects: 0,
            resumed: 0,
            connect_errors: 0,
            connect_latency: new_histogram(),
            windows: Vec::new(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Bounds and precision are constants that HdrHistogram accepts; the fallback is
    // only there to keep the hot path free of panics.
    Histogram::new_with_bounds(1, MAX_US, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
}

impl Stats {
    /// A final answer with status `code` after `latency`.
    pub fn answered(&mut self, code: u16, latency: Duration, sla: Duration) {
        if let Some(slot) = code
            .checked_sub(100)
            .and_then(|i| self.statuses.get_mut(usize::from(i)))
        {
            *slot += 1;
        }
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.latency.saturating_record(us);
        if (200..300).contains(&code) && latency <= sla {
            self.ok_in_time += 1;
        }
    }

    /// The same answer, counted in reporting window `i` too.
    pub fn in_window(&mut self, i: usize, code: u16, latency: Duration, sla: Duration) {
        if self.windows.len() <= i {
            self.windows.resize_with(i + 1, Window::default);
        }
        let w = &mut self.windows[i];
        w.answered += 1;
        w.latency.saturating_record(
            u64::try_from(latency.as_micros())
                .unwrap_or(MAX_US)
                .clamp(1, MAX_US),
        );
        if (200..300).contains(&code) && latency <= sla {
            w.ok_in_time += 1;
        }
    }

    /// A connection opened in `took`; `resumed` says whether TLS resumed a session.
    pub fn connected(&mut self, took: Duration, resumed: Option<bool>) {
        self.connects += 1;
        self.resumed += u64::from(resumed == Some(true));
        let us = u64::try_from(took.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.connect_latency.saturating_record(us);
    }

    pub fn answered_total(&self) -> u64 {
        self.statuses.iter().sum()
    }

    /// (code, count) for every code seen.
    pub fn codes(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u16 + 100, *n))
    }

    pub fn merge(&mut self, o: &Stats) {
        self.sent += o.sent;
        for (a, b) in self.statuses.iter_mut().zip(o.statuses.iter()) {
            *a += b;
        }
        self.provisional += o.provisional;
        self.retransmissions += o.retransmissions;
        self.timeouts += o.timeouts;
        self.ok_in_time += o.ok_in_time;
        self.unmatched += o.unmatched;
        self.skipped += o.skipped;
        self.send_errors += o.send_errors;
        self.notify_received += o.notify_received;
        self.notify_answered += o.notify_answered;
        self.challenges += o.challenges;
        self.unusable_challenges += o.unusable_challenges;
        self.connects += o.connects;
        self.resumed += o.resumed;
        self.connect_errors += o.connect_errors;
        // The histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        let _ = self.connect_latency.add(&o.connect_latency);
        if self.windows.len() < o.windows.len() {
            self.windows.resize_with(o.windows.len(), Window::default);
        }
        for (a, b) in self.windows.iter_mut().zip(&o.windows) {
            a.answered += b.answered;
            a.ok_in_time += b.ok_in_time;
            let _ = a.latency.add(&b.latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges() {
        let sla = Duration::from_millis(100);
        let mut a = Stats::default();
        a.answered(200, Duration::from_micros(50), sla);
        a.answered(200, Duration::from_millis(150), sla);
        a.answered(401, Duration::from_micros(80), sla);
        a.answered(99, Duration::from_micros(1), sla); // not a final code: only the histogram
        let mut b = Stats::default();
        b.answered(200, Duration::from_micros(70), sla);
        b.timeouts = 2;
        b.connected(Duration::from_micros(900), Some(true));
        b.connected(Duration::from_micros(2500), Some(false));
        a.connected(Duration::from_micros(700), None);
        a.merge(&b);
        assert_eq!((a.connects, a.resumed), (3, 1));
        assert_eq!(a.connect_latency.len(), 3);
        assert_eq!(a.codes().collect::<Vec<_>>(), [(200, 3), (401, 1)]);
        assert_eq!(a.answered_total(), 4);
        assert_eq!(a.ok_in_time, 2);
        assert_eq!(a.timeouts, 2);
        assert_eq!(a.latency.len(), 5);
        assert!(a.latency.max() >= 150_000);
    }

    #[test]
    fn windows_count_apart_and_merge_by_index() {
        let sla = Duration::from_millis(100);
        let mut a = Stats::default();
        a.in_window(0, 200, Duration::from_micros(50), sla);
        a.in_window(2, 200, Duration::from_millis(150), sla);
        let mut b = Stats::default();
        b.in_window(0, 500, Duration::from_micros(70), sla);
        a.merge(&b);
        let w: Vec<_> = a
            .windows
            .iter()
            .map(|w| (w.answered, w.ok_in_time))
            .collect();
        assert_eq!(w, [(2, 1), (0, 0), (1, 0)]);
        assert!(a.windows[2].latency.max() >= 149_000);
    }
}
