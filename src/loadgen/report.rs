//! The result of a run: a human table, and one JSON object (`--json`, last line) that
//! scripts read. Also decides whether the offered load was sustained.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::plan::{Load, Model, Plan, Proto, Scenario};
use super::stats::{Stats, Window};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        Latency {
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if h.is_empty() { 0 } else { h.max() },
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
        }
    }
}

/// One reporting window of a run (a minute by default).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WindowReport {
    /// Seconds from the start of the measured part.
    pub start_s: f64,
    pub answered: u64,
    /// Percentage of the window's answers that were 2xx within the SLA.
    pub in_time_pct: f64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The server's RSS at the window's end, KiB (with `--server-pid`).
    pub rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub model: Model,
    pub transport: Proto,
    pub target: String,
    /// UDP sockets or persistent connections (with a connection per call: the calls in
    /// flight, each on its own connection).
    pub lanes: usize,
    pub offered_rate: Option<f64>,
    pub concurrency: Option<usize>,
    /// The measured window: from the end of the warm-up until the last call started.
    pub duration_s: f64,
    pub warmup_s: f64,
    /// New transactions sent in the measured window (retransmissions not included).
    pub sent: u64,
    /// Final answers, all codes.
    pub answered: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub provisional: u64,
    pub retransmissions: u64,
    pub timeouts: u64,
    pub unmatched: u64,
    pub skipped: u64,
    pub send_errors: u64,
    pub notify_received: u64,
    pub notify_answered: u64,
    pub unusable_challenges: u64,
    /// Final answers per second over the measured window.
    pub achieved_rate: f64,
    pub latency: Latency,
    pub sla_ms: f64,
    /// 2xx answers within the SLA.
    pub ok_in_time: u64,
    /// Connections opened in the measured window (a connection per call).
    pub connects: u64,
    /// Of those, TLS handshakes that resumed a session.
    pub tls_resumed: u64,
    pub connect_errors: u64,
    /// Connections opened per second (TLS: handshakes per second).
    pub connects_per_s: f64,
    /// Time to open a connection (TCP + TLS + WebSocket upgrade).
    pub connect_latency: Latency,
    /// 401s to requests sent without credentials on purpose.
    pub challenges: u64,
    /// At least 99.9 % of the requests due answered 2xx within the SLA (challenges aside;
    /// a call skipped because every user was busy counts as not answered), no
    /// retransmission, no timeout, and (open loop) at least 95 % of the offered rate sent.
    pub sustained: bool,
    /// Final answers 2xx (one per registration, whatever challenges came first).
    pub registered: u64,
    pub windows: Vec<WindowReport>,
}

impl WindowReport {
    fn of(i: usize, every: Duration, w: &Window, rss_kib: Option<u64>) -> WindowReport {
        let h = &w.latency;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        WindowReport {
            start_s: every.as_secs_f64() * i as f64,
            answered: w.answered,
            in_time_pct: if w.answered > 0 {
                100.0 * w.ok_in_time as f64 / w.answered as f64
            } else {
                0.0
            },
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if h.is_empty() { 0 } else { h.max() },
            rss_kib,
        }
    }
}

impl Report {
    /// The report of a run; `rss` holds the server's RSS (KiB) at the end of each
    /// reporting window, when sampled.
    pub fn new(plan: &Plan, stats: &Stats, window: Duration, rss: &[u64]) -> Report {
        let secs = window.as_secs_f64();
        let h = &stats.latency;
        let (offered_rate, concurrency) = match plan.load {
            Load::Rate(r) => (Some(r), None),
            Load::Concurrency(c) => (None, Some(c)),
        };
        let answered = stats.answered_total();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let achieved_rate = if secs > 0.0 {
            answered as f64 / secs
        } else {
            0.0
        };
        let sent_rate = if secs > 0.0 {
            stats.sent as f64 / secs
        } else {
            0.0
        };
        let kept_up = offered_rate.is_none_or(|r| sent_rate >= 0.95 * r);
        let sustained = stats.sent > 0
            && (stats.ok_in_time + stats.challenges) as f64
                >= 0.999 * (stats.sent + stats.skipped) as f64
            && stats.retransmissions == 0
            && stats.timeouts == 0
            && stats.connect_errors == 0
            && kept_up;
        let every = plan.workload.window;
        // Every RSS sample has a row, even for a window without answers.
        let windows = (0..stats.windows.len().max(rss.len()))
            .map(|i| {
                let w = stats.windows.get(i).cloned().unwrap_or_default();
                WindowReport::of(i, every, &w, rss.get(i).copied())
            })
            .collect();
        Report {
            scenario: plan.scenario,
            model: plan.workload.model,
            transport: plan.proto,
            target: plan.target.to_string(),
            lanes: plan.lanes,
            offered_rate,
            concurrency,
            duration_s: secs,
            warmup_s: plan.warmup.as_secs_f64(),
            sent: stats.sent,
            answered,
            statuses: stats.codes().collect(),
            provisional: stats.provisional,
            retransmissions: stats.retransmissions,
            timeouts: stats.timeouts,
            unmatched: stats.unmatched,
            skipped: stats.skipped,
            send_errors: stats.send_errors,
            notify_received: stats.notify_received,
            notify_answered: stats.notify_answered,
            unusable_challenges: stats.unusable_challenges,
            achieved_rate,
            latency: Latency::of(h),
            sla_ms: plan.sla.as_secs_f64() * 1000.0,
            ok_in_time: stats.ok_in_time,
            connects: stats.connects,
            tls_resumed: stats.resumed,
            connect_errors: stats.connect_errors,
            connects_per_s: per_s(stats.connects),
            connect_latency: Latency::of(&stats.connect_latency),
            challenges: stats.challenges,
            sustained,
            registered: stats.statuses[100..200].iter().sum(),
            windows,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let load = match (self.offered_rate, self.concurrency) {
            (Some(r), _) => format!("open loop at {r:.0}/s"),
            (_, Some(c)) => format!("closed loop, {c} in flight"),
            _ => String::new(),
        };
        let lanes = match self.transport {
            Proto::Udp => "UDP sockets",
            Proto::Tcp => "TCP connections",
            Proto::Tls => "TLS connections",
            Proto::Ws => "WS connections",
            Proto::Wss => "WSS connections",
        };
        let codes: Vec<String> = self
            .statuses
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let pct = |n: u64| {
            if self.sent > 0 {
                100.0 * n as f64 / self.sent as f64
            } else {
                0.0
            }
        };
        let l = &self.latency;
        let _ = writeln!(
            s,
            "sipreg bench: {:?} ({:?} model) to {}, {} {lanes}, {load}, {:.1} s measured after {:.1} s warm-up",
            self.scenario, self.model, self.target, self.lanes, self.duration_s, self.warmup_s
        );
        let rows = [
            ("sent", format!("{}", self.sent)),
            (
                "answered",
                format!("{} ({})", self.answered, codes.join(", ")),
            ),
            ("achieved rate", format!("{:.0}/s", self.achieved_rate)),
            ("retransmissions", format!("{}", self.retransmissions)),
            ("timeouts", format!("{}", self.timeouts)),
            (
                "latency (µs)",
                format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.0}",
                    l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
                ),
            ),
            (
                "2xx in time",
                format!(
                    "{} ({:.3} %, within {} ms)",
                    self.ok_in_time,
                    pct(self.ok_in_time),
                    self.sla_ms
                ),
            ),
            (
                "NOTIFY",
                format!(
                    "{} received, {} answered",
                    self.notify_received, self.notify_answered
                ),
            ),
            (
                "other",
                format!(
                    "{} provisional, {} unmatched, {} skipped (all users busy), {} send errors, {} challenges ({} unusable)",
                    self.provisional,
                    self.unmatched,
                    self.skipped,
                    self.send_errors,
                    self.challenges,
                    self.unusable_challenges
                ),
            ),
            (
                "connections",
                if self.connects + self.connect_errors > 0 {
                    let c = &self.connect_latency;
                    format!(
                        "{} opened ({:.0}/s, {} TLS resumed), {} failed; p50 {} µs, p99 {} µs",
                        self.connects,
                        self.connects_per_s,
                        self.tls_resumed,
                        self.connect_errors,
                        c.p50_us,
                        c.p99_us
                    )
                } else {
                    format!("{} persistent", self.lanes)
                },
            ),
            (
                "sustained",
                if self.sustained {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(s, "  {k:<16} {v}");
        }
        // Long runs: one line per window.
        if self.windows.len() > 1 || self.windows.iter().any(|w| w.rss_kib.is_some()) {
            let _ = writeln!(
                s,
                "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "window from (s)",
                "answered",
                "in time%",
                "p99 µs",
                "p99.9 µs",
                "max µs",
                "RSS MiB"
            );
            for w in &self.windows {
                let rss = w
                    .rss_kib
                    .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
                let _ = writeln!(
                    s,
                    "  {:<16} {:>9} {:>9.3} {:>9} {:>9} {:>9} {:>9}",
                    w.start_s, w.answered, w.in_time_pct, w.p99_us, w.p999_us, w.max_us, rss
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::users::generated;
    use std::sync::Arc;

    fn plan(load: Load) -> Plan {
        Plan {
            target: "127.0.0.1:5060".parse().expect("addr"),
            scenario: Scenario::RegisterAuth,
            proto: Proto::Udp,
            users: Arc::from(generated("u", 1)),
            auth: true,
            load,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            max_calls: None,
            lanes: 1,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            timeout: Duration::from_secs(5),
            sla: Duration::from_millis(100),
            expires: 60,
            domain: "x".into(),
            progress: false,
            connect: Default::default(),
            workload: Default::default(),
        }
    }

    /// 1,000 requests: 500 challenged on purpose (401), 500 answered 200 in time.
    fn stats() -> Stats {
        let mut s = Stats::default();
        let sla = Duration::from_millis(100);
        for _ in 0..500 {
            s.answered(401, Duration::from_micros(300), sla);
            s.answered(200, Duration::from_micros(500), sla);
        }
        s.sent = 1000;
        s.challenges = 500;
        s
    }

    #[test]
    fn challenges_do_not_count_against_sustained() {
        let r = Report::new(
            &plan(Load::Rate(1000.0)),
            &stats(),
            Duration::from_secs(1),
            &[],
        );
        assert!(r.sustained);
        assert_eq!(r.statuses.get(&401), Some(&500));
        assert_eq!(r.achieved_rate, 1000.0);
        let json: serde_json::Value = serde_json::from_str(&r.json()).expect("JSON");
        assert_eq!(json["statuses"]["200"], 500);
        assert_eq!(json["sustained"], true);
        assert!(r.table().contains("sustained        yes"));
        assert_eq!(r.registered, 500);
    }

    #[test]
    fn windows_and_rss_rows() {
        let mut s = stats();
        let sla = Duration::from_millis(100);
        s.in_window(0, 200, Duration::from_micros(500), sla);
        s.in_window(0, 200, Duration::from_millis(200), sla);
        let r = Report::new(
            &plan(Load::Rate(1000.0)),
            &s,
            Duration::from_secs(1),
            &[2048, 4096],
        );
        assert_eq!(r.windows.len(), 2, "a row per RSS sample");
        assert_eq!(r.windows[0].answered, 2);
        assert_eq!(r.windows[0].in_time_pct, 50.0);
        assert_eq!(r.windows[1].rss_kib, Some(4096));
        assert_eq!(r.windows[1].start_s, 60.0);
        let json: serde_json::Value = serde_json::from_str(&r.json()).expect("JSON");
        assert_eq!(json["windows"][0]["rss_kib"], 2048);
        assert!(r.table().contains("RSS MiB"));
    }

    #[test]
    fn what_breaks_sustained() {
        let p = plan(Load::Rate(1000.0));
        let mut s = stats();
        s.retransmissions = 1;
        assert!(
            !Report::new(&p, &s, Duration::from_secs(1), &[]).sustained,
            "a retransmission"
        );
        let mut s = stats();
        s.sent += 2; // two without an answer in time: 99.8 %
        assert!(
            !Report::new(&p, &s, Duration::from_secs(1), &[]).sustained,
            "answers in time"
        );
        let mut s = stats();
        s.skipped = 2; // two calls never sent: every user was waiting for an answer
        assert!(
            !Report::new(&p, &s, Duration::from_secs(1), &[]).sustained,
            "skipped calls"
        );
        // The generator sent 1,000 in 2 s against 1,000/s offered: it did not keep up.
        assert!(
            !Report::new(&p, &stats(), Duration::from_secs(2), &[]).sustained,
            "rate kept"
        );
        // Closed loop has no offered rate to keep.
        let closed = plan(Load::Concurrency(4));
        assert!(Report::new(&closed, &stats(), Duration::from_secs(2), &[]).sustained);
        assert!(
            !Report::new(&p, &Stats::default(), Duration::from_secs(1), &[]).sustained,
            "nothing sent"
        );
    }
}
