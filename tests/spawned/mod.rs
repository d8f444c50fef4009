//! A real `sipreg serve` process on loopback, its store in a temporary folder, logging
//! JSON lines that are collected as they come; killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Also loaded by `common`; a test crate may include both (each copy is stateless).
#[allow(clippy::duplicate_mod)]
#[path = "../testdb/mod.rs"]
pub mod testdb;

pub struct Spawned {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: SocketAddr,
    pub sip: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

/// The configuration every spawned server starts from; `extra` is appended.
pub fn base_config(dir: &std::path::Path, extra: &str) -> String {
    base_config_with(dir, "", extra)
}

/// [`base_config`] with `sip` added to its `[sip]` section.
pub fn base_config_with(dir: &std::path::Path, sip: &str, extra: &str) -> String {
    format!(
        "[sip]\nlisten = \"127.0.0.1:0\"\n{sip}[http]\nlisten = \"127.0.0.1:0\"\n\
         [database]\nurl = \"{db}\"\n\
         [tokens]\nkey_dir = \"{dir}/keys\"\n\
         [users]\nargon2_memory_kib = 64\nargon2_iterations = 1\n{extra}",
        dir = dir.display(),
        db = testdb::url(dir)
    )
}

impl Spawned {
    /// Starts `sipreg --config FILE serve ARGS` with `extra` in the file, and waits until
    /// it listens.
    pub fn start(extra: &str, args: &[&str]) -> Spawned {
        Spawned::start_with("", extra, args)
    }

    /// [`Spawned::start`] with `sip` added to the `[sip]` section.
    pub fn start_with(sip: &str, extra: &str, args: &[&str]) -> Spawned {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sipreg.toml");
        std::fs::write(&config, base_config_with(dir.path(), sip, extra)).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sipreg"))
            .arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "serve"])
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("SIPREG_CONFIG")
            .env_remove("SIPREG_DATABASE_URL")
            .env_remove("SIPREG_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sipreg serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut s = Spawned {
            child,
            dir,
            config,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            sip: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let started = s.wait_for("listening", |j| {
            j["message"] == "sipreg listening (SIP on UDP and TCP, admin API on HTTP)"
        });
        s.sip = started["sip"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("sip address");
        let http = started["http"].as_str().unwrap_or_default();
        // Logged as Debug of Option<SocketAddr>: Some(127.0.0.1:port).
        let http = http.trim_start_matches("Some(").trim_end_matches(')');
        s.http = http.parse().expect("http address");
        s
    }

    /// Every log line so far, parsed (non-JSON lines are a test failure).
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The raw log text so far.
    pub fn log_text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The first log line `pred` accepts, waiting up to 10 s for it.
    pub fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(j) = self.logs().into_iter().find(|j| pred(j)) {
                return j;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "sipreg exited ({status}) before {what}:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain HTTP/1.1 request to the admin listener; returns the status code.
    pub fn http_get(&self, path_and_query: &str) -> u16 {
        let mut s = TcpStream::connect(self.http).expect("connect HTTP");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(
            s,
            "GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGHUP.
    pub fn hup(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP");
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
