//! The server's resident memory during a run (`--server-pid`): `VmRSS` from
//! `/proc/PID/status`, sampled at the end of every reporting window.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// `VmRSS` of `pid` in KiB; None when the process or the field is gone.
pub fn read_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sends the RSS of `pid` at `from + every`, `from + 2·every`, ... up to `until` (the
/// last sample at `until`), one message per window.
pub async fn sample(
    pid: u32,
    from: Instant,
    until: Instant,
    every: Duration,
    out: mpsc::UnboundedSender<u64>,
) {
    let mut at = from;
    while at < until {
        at = (at + every).min(until);
        tokio::time::sleep_until(at).await;
        if out.send(read_kib(pid).unwrap_or(0)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tsipreg\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(51_234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(read_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
