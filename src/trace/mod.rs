//! The SIP message trace: every message received and sent, whole, with its direction,
//! transport, addresses and time, written to a file (`[trace] file`) and/or sent to a
//! HEPv3 collector such as Homer (`[trace] hep`). Credentials and passwords are
//! redacted ([`redact`]) before anything leaves the process.
//!
//! Off the hot path: the transports and the core hand each message (a reference-counted
//! buffer, no copy) to a bounded queue; a thread of its own redacts, formats and writes.
//! When the queue is full the message is left out of the trace and counted, and the
//! count is logged and written into the trace: SIP never waits for the trace.

pub mod config;
pub mod hep;
pub mod redact;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

pub use config::TraceConfig;

use crate::transport::{Tap, Tapped};

/// One message waiting for the writer.
struct Record {
    time: SystemTime,
    message: Tapped,
}

/// The tap the server installs when the trace is on.
pub struct Tracer {
    tx: mpsc::Sender<Record>,
    dropped: Arc<AtomicU64>,
}

impl Tap for Tracer {
    fn tap(&self, message: Tapped) {
        let record = Record {
            time: SystemTime::now(),
            message,
        };
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Tracer {
    /// Opens the trace file (appending) and the HEP socket, and starts the writer;
    /// `None` when the trace is off.
    pub fn start(config: &TraceConfig) -> std::io::Result<Option<Arc<Tracer>>> {
        if !config.is_on() {
            return Ok(None);
        }
        let file = match &config.file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open the SIP trace file {}: {e}", path.display()),
                        )
                    })?,
            ),
            None => None,
        };
        let hep = match config.hep {
            Some(collector) => {
                let any: SocketAddr = if collector.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let sock = UdpSocket::bind(any)?;
                sock.connect(collector)?;
                Some(sock)
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            file: file.map(std::io::BufWriter::new),
            hep,
            capture_id: config.hep_capture_id,
            dropped: Arc::clone(&dropped),
            reported: 0,
        };
        std::thread::Builder::new()
            .name("sip-trace".into())
            .spawn(move || writer.run(rx))?;
        tracing::info!(file = ?config.file, hep = ?config.hep, "SIP message trace on");
        Ok(Some(Arc::new(Tracer { tx, dropped })))
    }

    /// Messages left out of the trace because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: ends when the tracer (the queue's sender) is dropped.
struct Writer {
    file: Option<std::io::BufWriter<std::fs::File>>,
    hep: Option<UdpSocket>,
    capture_id: u32,
    dropped: Arc<AtomicU64>,
    reported: u64,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Record>) {
        while let Some(record) = rx.blocking_recv() {
            self.write(&record);
            // Flushed whenever the queue runs dry: a quiet server's trace is complete on
            // disk, a busy one's is written in large blocks.
            if rx.is_empty() {
                self.report_dropped();
                if let Some(f) = &mut self.file
                    && let Err(e) = f.flush()
                {
                    tracing::warn!(error = %e, "cannot write the SIP trace file");
                }
            }
        }
        self.report_dropped();
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }

    fn write(&mut self, record: &Record) {
        let m = &record.message;
        let text = redact::redact(&m.bytes);
        if let Some(f) = &mut self.file {
            let (arrow, from, to) = match m.direction {
                crate::transport::Direction::Received => ("recv", m.peer, m.local),
                crate::transport::Direction::Sent => ("sent", m.local, m.peer),
            };
            let r = writeln!(
                f,
                "==== {} {arrow} {} {from} -> {to} ({} bytes)\n{text}{}",
                rfc3339(record.time),
                m.transport.via_token(),
                m.bytes.len(),
                if text.ends_with('\n') { "" } else { "\n" },
            );
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot write the SIP trace file");
            }
        }
        if let Some(sock) = &self.hep {
            let capture = hep::Capture {
                direction: m.direction,
                transport: m.transport,
                local: m.local,
                peer: m.peer,
                time: record.time,
                capture_id: self.capture_id,
                payload: text.as_bytes(),
            };
            match hep::encode(&capture) {
                Some(packet) => {
                    if let Err(e) = sock.send(&packet) {
                        tracing::debug!(error = %e, "HEP send failed");
                    }
                }
                None => tracing::debug!("message too large for a HEP packet; not sent"),
            }
        }
    }

    /// Says, in the log and in the trace, how many messages were left out since the
    /// last report.
    fn report_dropped(&mut self) {
        let now = self.dropped.load(Ordering::Relaxed);
        if now == self.reported {
            return;
        }
        let missed = now - self.reported;
        self.reported = now;
        tracing::warn!(
            missed,
            total = now,
            "SIP trace queue full: messages left out of the trace"
        );
        if let Some(f) = &mut self.file {
            let _ = writeln!(
                f,
                "==== {missed} messages left out of the trace (queue full)\n"
            );
        }
    }
}

/// `2026-12-07T04:10:00.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Direction, Transport};
    use std::time::Duration;

    fn message(text: &'static str) -> Tapped {
        Tapped {
            direction: Direction::Received,
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            peer: "127.0.0.2:5070".parse().unwrap(),
            bytes: bytes::Bytes::from_static(text.as_bytes()),
        }
    }

    #[test]
    fn a_full_queue_drops_counts_and_reports() {
        // The queue of one, with the writer not started: the second and third messages
        // find it full.
        let (tx, rx) = mpsc::channel(1);
        let dropped = Arc::new(AtomicU64::new(0));
        let tracer = Tracer {
            tx,
            dropped: Arc::clone(&dropped),
        };
        for _ in 0..3 {
            tracer.tap(message(
                "OPTIONS sip:a SIP/2.0\r\nAuthorization: Bearer tok.en\r\n\r\n",
            ));
        }
        assert_eq!(tracer.dropped(), 2);
        drop(tracer);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let writer = Writer {
            file: Some(std::io::BufWriter::new(
                std::fs::File::create(&path).unwrap(),
            )),
            hep: None,
            capture_id: 1,
            dropped,
            reported: 0,
        };
        writer.run(rx);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("OPTIONS sip:a SIP/2.0").count(), 1, "{text}");
        assert!(
            text.contains(" recv UDP 127.0.0.2:5070 -> 127.0.0.1:5060 ("),
            "{text}"
        );
        assert!(text.contains("Authorization: Bearer <redacted>"), "{text}");
        assert!(
            text.contains("==== 2 messages left out of the trace (queue full)"),
            "{text}"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_616_600_123_456);
        assert_eq!(rfc3339(t), "2026-12-07T04:10:00.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }
}
