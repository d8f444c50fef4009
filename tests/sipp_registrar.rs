//! The shipped sipp scenarios (`fixtures/sipp/register_*.xml`, `multi_device.xml`) run with
//! the real `sipp` against a running sipreg, with users and tokens made by the real
//! `sipreg sipp-users` command on the same store while the server runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use sipreg::registrar::Aor;

fn free_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

/// Runs one scenario `calls` times; returns sipp's count of successful calls.
async fn sipp(scenario: &str, users: &Path, server: std::net::SocketAddr, calls: u32) -> u32 {
    let sf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sipp")
        .join(scenario);
    let users = users.to_path_buf();
    let port = free_port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .arg("-sf")
            .arg(&sf)
            .arg("-inf")
            .arg(&users)
            .args([
                "-m",
                &calls.to_string(),
                "-r",
                "20",
                "-i",
                "127.0.0.1",
                "-p",
                &port,
            ])
            .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
            .arg(server.to_string())
            .output()
            .expect("run sipp")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario}: sipp exited {:?}\n{text}",
        out.status.code()
    );
    text.lines()
        .find(|l| l.contains("Successful call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_scenarios_pass_with_real_sipp() {
    if !tool("sipp") {
        return;
    }
    // The default configuration: its "sipp*" client rule gives the Digest scenario (which
    // sends User-Agent: sipp) the single MD5 challenge sipp 3.6 can answer.
    let app = AppServer::start(|_| {}).await;
    let csv = sipp_users_csv(&app, 5, "sippu").await;
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "SEQUENTIAL");
    assert_eq!(lines.len(), 6);
    assert!(lines[1].starts_with("sippu0;") && lines[1].split(';').count() == 4);

    assert_eq!(sipp("register_unauth.xml", &csv, app.sip, 5).await, 5);
    assert_eq!(
        app.registrar.table.bindings(),
        0,
        "a challenged REGISTER binds nothing"
    );
    assert_eq!(sipp("register_bearer.xml", &csv, app.sip, 5).await, 5);
    // Registered, refreshed, then unregistered: nothing left.
    assert_eq!(app.registrar.table.bindings(), 0);
    assert_eq!(sipp("register_digest.xml", &csv, app.sip, 5).await, 5);
    for i in 0..5 {
        let aor = Aor::parse(&format!("sip:sippu{i}@127.0.0.1")).unwrap();
        assert_eq!(
            app.registrar.table.get(&aor, 0).len(),
            1,
            "sippu{i} bound by Digest"
        );
    }
    assert_eq!(sipp("multi_device.xml", &csv, app.sip, 5).await, 5);
}
