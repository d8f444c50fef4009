//! SIGHUP to a real `sipreg serve`: the configuration file is re-read, the challenge
//! policy and the log level change for the requests that follow, a changed listen
//! address is named as needing a restart, and a broken file changes nothing.

mod spawned;

use std::net::UdpSocket;
use std::time::Duration;

use spawned::{Spawned, base_config};

/// The `WWW-Authenticate` challenges of the answer to an unauthenticated REGISTER.
fn challenges(s: &Spawned, call_id: &str) -> Vec<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let req = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{me}>\r\n\
         User-Agent: test-phone/1.0\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), s.sip).unwrap();
    let mut buf = [0u8; 65_535];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(text.starts_with("SIP/2.0 401 "), "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .map(|v| {
            let scheme = v.split(' ').next().unwrap_or("");
            match v.split("algorithm=").nth(1) {
                Some(alg) => format!("{scheme} {}", alg.split(',').next().unwrap_or("")),
                None => scheme.to_string(),
            }
        })
        .collect()
}

fn reloads(s: &Spawned) -> usize {
    s.logs()
        .iter()
        .filter(|j| j["message"] == "SIGHUP: configuration reloaded")
        .count()
}

#[test]
fn sighup_applies_the_policy_and_names_what_needs_a_restart() {
    let mut s = Spawned::start("[auth]\nchallenges = [\"digest-sha256\"]\n", &[]);
    assert_eq!(challenges(&s, "r1"), ["Digest SHA-256"]);
    // A debug line that only shows once the level is debug.
    let debug_lines = |s: &Spawned| s.logs().iter().filter(|j| j["level"] == "DEBUG").count();
    assert_eq!(debug_lines(&s), 0);

    let new = base_config(
        s.dir.path(),
        "[auth]\nchallenges = [\"bearer\", \"digest-md5\"]\n\
         [log]\nlevel = \"debug\"\n",
    )
    .replace(
        "[sip]\nlisten = \"127.0.0.1:0\"",
        "[sip]\nlisten = \"127.0.0.1:1\"",
    );
    std::fs::write(&s.config, new).unwrap();
    s.hup();
    let done = s.wait_for("the reload", |j| {
        j["message"] == "SIGHUP: configuration reloaded"
    });
    assert_eq!(
        done["applied"], "[\"auth.challenges\", \"log.level\"]",
        "{done}"
    );
    assert_eq!(done["needs_restart"], "[\"sip.listen\"]", "{done}");
    let named = s.wait_for("the restart warning", |j| {
        j["level"] == "WARN" && j["setting"] == "sip.listen"
    });
    assert!(
        named["message"]
            .as_str()
            .unwrap_or("")
            .contains("next restart"),
        "{named}"
    );

    // The same server (same sockets), the new policy.
    assert_eq!(challenges(&s, "r2"), ["Bearer", "Digest MD5"]);
    s.wait_for("a debug line", |j| j["level"] == "DEBUG");

    // A broken file is refused whole: the policy in force stays.
    let broken = base_config(
        s.dir.path(),
        "[auth]\nchallenges = [\"digest-sha256\"]\n[registrar]\nmin_expires = 3600\nmax_expires = 60\n",
    );
    std::fs::write(&s.config, broken).unwrap();
    s.hup();
    let refused = s.wait_for("the refusal", |j| {
        j["message"] == "SIGHUP: configuration not reloaded"
    });
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("registrar.min_expires"),
        "{refused}"
    );
    assert_eq!(reloads(&s), 1);
    assert_eq!(challenges(&s, "r3"), ["Bearer", "Digest MD5"]);
    assert!(s.child.try_wait().unwrap().is_none(), "sipreg exited");
}
