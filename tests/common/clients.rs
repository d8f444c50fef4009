//! Real softphones as test clients: a child process killed (and reaped) on drop, files for
//! their configuration in a temporary folder, and sipreg's own view of what they did
//! (the admin API's `GET /registrations`), so a test never trusts the client's word.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sipreg::transport::Transport;

use super::AppServer;

/// A client process; killed and reaped when dropped, so no test leaves one behind.
pub struct Phone {
    pub name: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Phone {
    /// Starts `cmd` with stdout and stderr going to `log` (read by [`Phone::output`]).
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path, stdin: bool) -> Phone {
        let out = std::fs::File::create(log).expect("client log file");
        let err = out.try_clone().expect("client log file");
        let child = cmd
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Phone {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    /// Writes a line to the client's standard input (linphonec's command prompt).
    pub fn command(&mut self, line: &str) {
        use std::io::Write;
        if let Some(i) = self.child.stdin.as_mut() {
            let _ = writeln!(i, "{line}");
            let _ = i.flush();
        }
    }

    /// Whether the process is still running (a crash shows up here).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the client printed so far (for failure messages).
    pub fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = text
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        format!("--- {} output (last lines) ---\n{tail}", self.name)
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP at the time of the call.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let Ok(u) = std::net::UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(a) = u.local_addr() else { continue };
        if std::net::TcpListener::bind(a).is_ok() {
            return a.port();
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A binding as sipreg's admin API lists it.
#[derive(Debug, Clone)]
pub struct Bound {
    pub aor: String,
    pub contact: String,
    pub transport: String,
    pub source: String,
    pub user_agent: String,
}

/// Every binding, from `GET /registrations` with an admin token.
pub async fn registrations(app: &AppServer, admin_token: &str) -> Vec<Bound> {
    let url = format!("http://{}/registrations?limit=1000", app.http);
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(admin_token)
        .send()
        .await
        .expect("GET /registrations");
    assert_eq!(r.status(), 200, "GET /registrations");
    let v: Value = r.json().await.expect("JSON");
    let mut out = Vec::new();
    for a in v.as_array().into_iter().flatten() {
        let aor = a["aor"].as_str().unwrap_or("").to_string();
        for b in a["bindings"].as_array().into_iter().flatten() {
            out.push(Bound {
                aor: aor.clone(),
                contact: b["contact"].as_str().unwrap_or("").to_string(),
                transport: b["transport"].as_str().unwrap_or("").to_string(),
                source: b["source"].as_str().unwrap_or("").to_string(),
                user_agent: b["user_agent"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    out
}

/// Polls the admin API (every 200 ms, at most `wait`) for a binding of `user` made over
/// `transport` by a client whose User-Agent starts with `ua_prefix`; stops early when
/// the client exits.
pub async fn wait_for_binding(
    app: &AppServer,
    admin_token: &str,
    phone: &mut Phone,
    user: &str,
    transport: Transport,
    ua_prefix: &str,
    wait: Duration,
) -> Option<Bound> {
    let deadline = tokio::time::Instant::now() + wait;
    let prefix = format!("sip:{user}@");
    loop {
        let found = registrations(app, admin_token).await.into_iter().find(|b| {
            b.aor.starts_with(&prefix)
                && b.transport == transport.as_str()
                && b.user_agent.starts_with(ua_prefix)
        });
        if found.is_some() || !phone.running() || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The registrar URI a client is pointed at: sipreg's address with the transport named.
pub fn registrar_uri(server: SocketAddr, transport: Transport) -> String {
    format!("sip:{server};transport={}", transport.as_str())
}
