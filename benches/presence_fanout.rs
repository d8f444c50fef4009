//! Presence fan-out (issue 5), against the real `sipreg serve` process on loopback
//! (authentication off, store in a temporary folder):
//!
//! 1. **Fan-out**: one presentity, `--watchers` (1,000) UDP watchers, each on its own
//!    socket and answering every NOTIFY 200. Each round a PUBLISH changes the document;
//!    measured: time from sending the PUBLISH to the last watcher receiving its NOTIFY
//!    (an upper bound of "last NOTIFY sent": loopback delivery included), and the
//!    server's CPU (utime + stime from `/proc`) over the rounds divided by the NOTIFYs
//!    (their 200s included: a NOTIFY is a transaction).
//! 2. **Held subscriptions**: `--held` (10,000) more subscriptions over 100 presentities
//!    from 20 sockets; measured: the server's RSS before and after, and again after
//!    Timer J so the SUBSCRIBE server transactions are forgotten.
//!
//! Run: `cargo bench --bench presence_fanout [-- --watchers N --rounds R --held M
//! --settle SECS]`; CI runs a small smoke version (`.ci/run`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

type Res<T> = Result<T, String>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> Res<u16> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = s.local_addr().map_err(|e| e.to_string())?.port();
    // TCP must be free too: sipreg binds both.
    std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    Ok(port)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("bad stat field")
    };
    // rest starts at field 3 (state): utime is field 14, stime 15.
    Ok(n(11)? + n(12)?)
}

fn rss_kib(pid: u32) -> Res<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A 200 to a request received as `text`.
fn answer(text: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
        ) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn subscribe(watcher: &str, presentity: &str, call_id: &str, local: SocketAddr) -> String {
    format!(
        "SUBSCRIBE sip:{presentity}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{watcher}@example.com>;tag=t{call_id}\r\n\
         To: <sip:{presentity}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:{watcher}@{local}>\r\n\
         Event: presence\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn publish(round: usize, etag: &str, local: SocketAddr) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">\
         <tuple id=\"desk\"><status><basic>open</basic></status></tuple>\
         <dm:person id=\"p\"><rpid:activities><rpid:busy/></rpid:activities>\
         <dm:note>round-{round}.</dm:note></dm:person></presence>"
    );
    let if_match = if etag.is_empty() {
        String::new()
    } else {
        format!("SIP-If-Match: {etag}\r\n")
    };
    format!(
        "PUBLISH sip:alice@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKpub{round};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=pub\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: publish-bench\r\n\
         CSeq: {} PUBLISH\r\n\
         Event: presence\r\n\
         Expires: 3600\r\n\
         {if_match}Content-Type: application/pidf+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        round + 1,
        body.len()
    )
}

/// The round a NOTIFY body names (`round-N.`), if any.
fn round_of(text: &str) -> Option<usize> {
    let i = text.find("round-")? + 6;
    let end = text[i..].find('.')? + i;
    text[i..end].parse().ok()
}

/// A watcher socket's task: answers NOTIFYs 200, reports (round, when) for NOTIFYs that
/// name a round and counts the 200s to its SUBSCRIBEs.
fn spawn_watcher(
    sock: Arc<UdpSocket>,
    rounds: mpsc::UnboundedSender<(usize, Instant)>,
    ok: mpsc::UnboundedSender<()>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let at = Instant::now();
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 200") {
                let _ = ok.send(());
            } else if text.starts_with("NOTIFY ") {
                let _ = sock.send_to(answer(&text).as_bytes(), from).await;
                if let Some(r) = round_of(&text) {
                    let _ = rounds.send((r, at));
                }
            }
        }
    });
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<()>, n: usize, what: &str) -> Res<()> {
    for i in 0..n {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .map_err(|_| format!("{what}: only {i} of {n} in 30 s"))?;
    }
    Ok(())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run() -> Res<()> {
    let watchers = arg("--watchers", 1000);
    let rounds = arg("--rounds", 10);
    let held = arg("--held", 10_000);
    // Seconds to wait for Timer J before the last RSS reading (0 in CI's smoke run).
    let settle = arg("--settle", 34) as u64;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port()?;
    let sip: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let cfg = dir.path().join("bench.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sip]\nlisten = \"{sip}\"\n[http]\nlisten = \"127.0.0.1:{}\"\n\
             [database]\nurl = \"sqlite://{}/sipreg.db?mode=rwc\"\n[tokens]\nkey_dir = \"{}\"\n\
             [presence]\nnotify_interval_ms = 50\nmax_subscriptions_per_presentity = 100000\n\
             max_subscriptions_per_watcher = 100000\n\
             [limits]\nrequests_per_ip_per_sec = 0\n",
            free_port()?,
            dir.path().display(),
            dir.path().join("keys").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--no-auth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sipreg: {e}"))?;
    let server = Server(child);
    let pid = server.0.id();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tck = clk_tck();
    let rss_start = rss_kib(pid)?;

    // 1. Fan-out.
    let (round_tx, mut round_rx) = mpsc::unbounded_channel();
    let (ok_tx, mut ok_rx) = mpsc::unbounded_channel();
    let mut socks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let s = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?,
        );
        spawn_watcher(s.clone(), round_tx.clone(), ok_tx.clone());
        socks.push(s);
    }
    for (i, s) in socks.iter().enumerate() {
        let local = s.local_addr().map_err(|e| e.to_string())?;
        let text = subscribe(&format!("w{i}"), "alice", &format!("fan{i}"), local);
        s.send_to(text.as_bytes(), sip)
            .await
            .map_err(|e| e.to_string())?;
        if i % 100 == 99 {
            // Do not flood the server's socket buffer with the subscriptions themselves.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_for(&mut ok_rx, watchers, "SUBSCRIBE answers").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_fanout = rss_kib(pid)?;

    let publisher = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let plocal = publisher.local_addr().map_err(|e| e.to_string())?;
    let mut etag = String::new();
    let mut latencies = Vec::new();
    let cpu0 = cpu_ticks(pid)?;
    for r in 1..=rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        publisher
            .send_to(publish(r, &etag, plocal).as_bytes(), sip)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65_535];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), publisher.recv_from(&mut buf))
            .await
            .map_err(|_| "no answer to PUBLISH")?
            .map_err(|e| e.to_string())?;
        let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !resp.starts_with("SIP/2.0 200") {
            return Err(format!(
                "PUBLISH refused: {}",
                resp.lines().next().unwrap_or("")
            ));
        }
        etag = resp
            .lines()
            .find_map(|l| l.strip_prefix("SIP-ETag: "))
            .ok_or("no SIP-ETag")?
            .trim()
            .to_string();
        let mut last = t0;
        let mut seen = 0;
        while seen < watchers {
            let (round, at) = tokio::time::timeout(Duration::from_secs(30), round_rx.recv())
                .await
                .map_err(|_| format!("round {r}: {seen} of {watchers} NOTIFYs in 30 s"))?
                .ok_or("watchers gone")?;
            // A late copy of an earlier round (a retransmission) is not this round's.
            if round == r {
                seen += 1;
                last = last.max(at);
            }
        }
        latencies.push(last.duration_since(t0));
    }
    // Let the last 200s reach the server before reading its CPU.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu1 = cpu_ticks(pid)?;
    let notifies = (rounds * watchers) as f64;
    let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / tck as f64 / notifies;
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    // 2. Held subscriptions.
    let rss_before = rss_kib(pid)?;
    let (hold_round_tx, _hold_round_rx) = mpsc::unbounded_channel();
    let (hold_ok_tx, mut hold_ok_rx) = mpsc::unbounded_channel();
    let mut hold = Vec::new();
    for _ in 0..20 {
        let s = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?,
        );
        spawn_watcher(s.clone(), hold_round_tx.clone(), hold_ok_tx.clone());
        hold.push(s);
    }
    for i in 0..held {
        let s = &hold[i % hold.len()];
        let local = s.local_addr().map_err(|e| e.to_string())?;
        let text = subscribe(
            &format!("h{i}"),
            &format!("user{}", i % 100),
            &format!("held{i}"),
            local,
        );
        s.send_to(text.as_bytes(), sip)
            .await
            .map_err(|e| e.to_string())?;
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_for(&mut hold_ok_rx, held, "held SUBSCRIBE answers").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid)?;
    // Timer J (64·T1 = 32 s) forgets the SUBSCRIBE transactions.
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let rss_settled = rss_kib(pid)?;

    println!(
        "## presence fan-out, {watchers} UDP watchers, {rounds} rounds; {held} held subscriptions"
    );
    println!();
    println!("| Measure | Value |");
    println!("|---|---|");
    println!(
        "| PUBLISH → last NOTIFY received, median (min–max) | {:.1} ms ({:.1}–{:.1}) |",
        ms(latencies[latencies.len() / 2]),
        ms(latencies[0]),
        ms(latencies[latencies.len() - 1])
    );
    println!("| Server CPU per NOTIFY (its 200 included) | {cpu_us:.1} µs |");
    println!(
        "| RSS at start / with {watchers} watchers | {} / {} MB |",
        rss_start / 1024,
        rss_fanout / 1024
    );
    println!(
        "| RSS added by {held} subscriptions (at once / after Timer J) | {:.1} / {:.1} MB ({:.2} / {:.2} KiB each) |",
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0,
        (rss_settled.saturating_sub(rss_before)) as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / held as f64,
        (rss_settled.saturating_sub(rss_before)) as f64 / held as f64,
    );
    drop(server);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("FAILED: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
