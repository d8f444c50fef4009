//! Real SIP tools against a running server: `sipsak` and `sipp` send OPTIONS over UDP and
//! TCP and must get 200 OK. Without the tools the tests say SKIPPED, unless
//! SIPREG_REQUIRE_TOOLS=1 (CI), where a missing tool fails.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestServer, tool};

/// A free local port for the tool's own socket.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(25070)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipsak_options_gets_200() {
    if !tool("sipsak") {
        return;
    }
    let server = TestServer::start().await;
    let target = format!("sip:ping@127.0.0.1:{}", server.addr.port());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipsak")
            .args(["-vv", "-s", &target])
            .output()
            .expect("run sipsak")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sipsak failed: {text}");
    assert!(text.contains("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("Allow: OPTIONS"), "{text}");
    server.stop().await;
}

async fn sipp_options(transport: &'static str) {
    if !tool("sipp") {
        return;
    }
    let server = TestServer::start().await;
    let remote = server.addr.to_string();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sipp/options.xml");
    let port = free_port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .args(["-t", transport, "-sf"])
            .arg(&scenario)
            .args(["-m", "20", "-r", "50", "-i", "127.0.0.1", "-p", &port])
            .args(["-timeout", "20s", "-timeout_error", "-nostdin", &remote])
            .output()
            .expect("run sipp")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sipp exited {:?}: {text}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let successful = text
        .lines()
        .find(|l| l.contains("Successful call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse::<u32>().ok());
    assert_eq!(successful, Some(20), "{text}");
    let handled = server
        .core
        .stats
        .received
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(handled >= 20, "server saw {handled} messages");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_pings_over_udp() {
    sipp_options("u1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_pings_over_tcp() {
    sipp_options("t1").await;
}
