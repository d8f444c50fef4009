//! `fixtures/sipp/subscribe_presence.xml` run with the real `sipp` against a running
//! sipreg: SUBSCRIBE, the NOTIFYs (answered 200 by sipp), PUBLISH, unsubscribe. Users
//! and tokens come from the real `sipreg sipp-users` command on the server's store.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_presence_scenario_passes_with_real_sipp() {
    if !tool("sipp") {
        return;
    }
    let app = AppServer::start(|_| {}).await;
    let dir = app.dir.path().to_path_buf();
    let csv = sipp_users_csv(&app, 3, "watch").await;
    let sf = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sipp/subscribe_presence.xml");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = app.sip.to_string();
    let logs = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .current_dir(&logs)
            .arg("-trace_err")
            .arg("-sf")
            .arg(&sf)
            .arg("-inf")
            .arg(&csv)
            .args(["-m", "3", "-r", "10", "-i", "127.0.0.1", "-p", &port])
            .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
            .arg(server)
            .output()
            .expect("run sipp")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // sipp's error log (-trace_err) says which check failed.
    let errors: String = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(
        out.status.success(),
        "sipp exited {:?}\n{text}\n{errors}",
        out.status.code()
    );
    let ok: u32 = text
        .lines()
        .find(|l| l.contains("Successful call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(ok, 3, "{text}");
    // Every watcher unsubscribed; every publication is still there (600 s).
    assert_eq!(app.presence.subscriptions.len(), 0);
    assert_eq!(app.presence.publications.len(), 3);
}
