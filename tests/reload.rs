//! SIGHUP to a real `sipreg serve`: the configuration file is re-read, the challenge
//! policy and the log level change for the requests that follow, a changed listen
//! address is named as needing a restart, and a broken file changes nothing. The rate
//! limit, the registrar's policy, the served domains and the trusted issuers change
//! live too, with the bindings registered before kept.

mod spawned;

use std::net::UdpSocket;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use spawned::{Spawned, base_config, base_config_with};

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

/// Sends a REGISTER for `user@domain` (a Contact with `expires` unless `None`: a fetch)
/// with `extra` header lines, and returns the whole answer.
fn register(s: &Spawned, user: &str, domain: &str, expires: Option<u32>, extra: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let call_id = uuid::Uuid::new_v4();
    let contact = expires.map_or(String::new(), |e| {
        format!("Contact: <sip:{user}@{me}>;expires={e}\r\n")
    });
    let req = format!(
        "REGISTER sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=1\r\nTo: <sip:{user}@{domain}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 REGISTER\r\n{contact}{extra}Content-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), s.sip).unwrap();
    let mut buf = [0u8; 65_535];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// Rewrites the file with `extra`, sends SIGHUP, and returns the `n`th reload's log line.
/// `sip` goes into the `[sip]` section.
fn reload_with(s: &mut Spawned, sip: &str, extra: &str, n: usize) -> serde_json::Value {
    std::fs::write(&s.config, base_config_with(s.dir.path(), sip, extra)).unwrap();
    s.hup();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reloads(s) < n {
        assert!(std::time::Instant::now() < deadline, "{}", s.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    s.logs()
        .into_iter()
        .filter(|j| j["message"] == "SIGHUP: configuration reloaded")
        .nth(n - 1)
        .expect("the reload line")
}

#[test]
fn sighup_applies_limits_registrar_policy_and_domains_keeping_bindings() {
    let open = "[auth]\nrequired = false\n";
    let mut s = Spawned::start(open, &[]);
    let first = register(&s, "alice", "example.com", Some(3600), "");
    assert!(first.starts_with("SIP/2.0 200 "), "{first}");
    assert!(first.contains(";expires=3600"), "{first}");
    // Loopback is exempt by default: a burst passes.
    for _ in 0..20 {
        assert!(register(&s, "alice", "example.com", None, "").starts_with("SIP/2.0 200 "));
    }

    let done = reload_with(
        &mut s,
        "domains = [\"example.com\"]\ntransaction_memory_bytes = 1000000\n",
        &format!(
            "{open}[registrar]\nmax_expires = 600\ndefault_expires = 300\n\
             [limits]\nrequests_per_ip_per_sec = 1\nrequest_burst = 4\n\
             rate_limit_exempt = []\nrate_limit_retry_after_secs = 7\n"
        ),
        1,
    );
    assert_eq!(
        done["applied"],
        "[\"limits.rate_limit_exempt\", \"limits.rate_limit_retry_after_secs\", \
         \"limits.request_burst\", \"limits.requests_per_ip_per_sec\", \
         \"registrar.default_expires\", \"registrar.max_expires\", \"sip.domains\", \
         \"sip.transaction_memory_bytes\"]",
        "{done}"
    );
    assert_eq!(done["needs_restart"], "[]", "{done}");

    // The binding from before the reload is still there.
    let fetched = register(&s, "alice", "example.com", None, "");
    assert!(fetched.starts_with("SIP/2.0 200 "), "{fetched}");
    assert!(
        fetched.contains("Contact: <sip:alice@127.0.0.1:"),
        "{fetched}"
    );
    // The new maximum caps a new registration.
    let bob = register(&s, "bob", "example.com", Some(3600), "");
    assert!(bob.starts_with("SIP/2.0 200 "), "{bob}");
    assert!(bob.contains(";expires=600"), "{bob}");
    assert!(!bob.contains(";expires=3600"), "{bob}");
    // Only example.com is served now.
    let other = register(&s, "carol", "other.example", Some(60), "");
    assert!(other.starts_with("SIP/2.0 404 "), "{other}");
    // Loopback is limited now: once the burst of 4 is spent, requests get 503 with the
    // new Retry-After.
    let limited = (0..20)
        .map(|_| register(&s, "alice", "example.com", None, ""))
        .find(|r| !r.starts_with("SIP/2.0 200 "))
        .expect("a limited request");
    assert!(limited.starts_with("SIP/2.0 503 "), "{limited}");
    assert!(limited.contains("Retry-After: 7\r\n"), "{limited}");
    assert!(s.child.try_wait().unwrap().is_none(), "sipreg exited");
}

/// An RS256 token of `iss` for user `ext-user`, allowed to register.
fn ext_token(key: &EncodingKey, iss: &str) -> String {
    let now = sipreg::auth::now();
    let claims = serde_json::json!({"iss": iss, "sub": "ext-1", "preferred_username": "ext-user",
        "aud": "sip", "exp": now + 300, "iat": now, "scope": "sip.register"});
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key).unwrap()
}

#[test]
fn sighup_adds_and_removes_a_trusted_issuer() {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let mut s = Spawned::start("", &[]);
    let (path, _kid) = sipreg::auth::keys::generate_into(s.dir.path()).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    let public = rsa::PrivateKey::from_pkcs8_pem(&pem)
        .unwrap()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let public_file = s.dir.path().join("idp.pem");
    std::fs::write(&public_file, public).unwrap();
    let token = ext_token(
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        "https://idp.example",
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");

    // Not trusted yet.
    let before = register(&s, "ext-user", "example.com", Some(60), &bearer);
    assert!(before.starts_with("SIP/2.0 401 "), "{before}");

    let issuer = format!(
        "[[tokens.trusted_issuers]]\nissuer = \"https://idp.example\"\naudiences = [\"sip\"]\n\
         public_key_file = \"{}\"\nprovision = \"auto\"\n",
        public_file.display()
    );
    let done = reload_with(&mut s, "", &issuer, 1);
    assert_eq!(done["applied"], "[\"tokens.trusted_issuers\"]", "{done}");
    let added = register(&s, "ext-user", "example.com", Some(60), &bearer);
    assert!(added.starts_with("SIP/2.0 200 "), "{added}");
    // Cached now: the same token registers again.
    let again = register(&s, "ext-user", "example.com", Some(60), &bearer);
    assert!(again.starts_with("SIP/2.0 200 "), "{again}");

    let done = reload_with(&mut s, "", "", 2);
    assert_eq!(done["applied"], "[\"tokens.trusted_issuers\"]", "{done}");
    // Its cached verdict is gone with it.
    let removed = register(&s, "ext-user", "example.com", Some(60), &bearer);
    assert!(removed.starts_with("SIP/2.0 401 "), "{removed}");
}

#[test]
fn sighup_shortens_the_message_deadline_of_new_connections() {
    use std::io::{Read, Write};
    let mut s = Spawned::start("", &[]);
    let done = reload_with(&mut s, "", "[limits]\nsip_message_timeout_secs = 1\n", 1);
    assert_eq!(
        done["applied"], "[\"limits.sip_message_timeout_secs\"]",
        "{done}"
    );
    let mut tcp = std::net::TcpStream::connect(s.sip).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    tcp.write_all(b"OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1")
        .unwrap();
    // A byte every half second: never idle, never complete. The default deadline (30 s)
    // would keep it open through all 20 rounds; the reloaded one (1 s) closes it.
    let mut closed = false;
    for _ in 0..20 {
        if tcp.write_all(b"1").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tcp.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        closed,
        "a trickled message kept its connection open for 10 s"
    );
}
