//! Softphones nobody here wrote register against sipreg with its default configuration:
//! Debian's baresip 1.0 (UDP, TCP, TLS), linphonec 5.1 (UDP, TLS) and sipp 3.6 with the
//! shipped Digest scenario (UDP, TCP). Each test checks sipreg's binding table through the
//! admin API, not the client's word. Without a tool its test says SKIPPED, unless
//! SIPREG_REQUIRE_TOOLS=1 (CI). Over TLS sipreg serves a lab certificate
//! (`sipreg tls self-signed`'s generator) that each client is told to trust.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::clients::*;
use common::*;
use sipreg::transport::Transport;

/// Longest wait for a client to register (it normally takes well under a second).
const WAIT: Duration = Duration::from_secs(20);

/// sipreg with its defaults (loopback ports, store in a temporary folder), the user
/// `alice` with a password, and an admin token for the API.
async fn server() -> (AppServer, String) {
    server_with(|_| {}).await
}

async fn server_with(tweak: impl FnOnce(&mut sipreg::config::Config)) -> (AppServer, String) {
    let app = AppServer::start(tweak).await;
    add_user(&app.users, "alice", &[]).await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    let admin = app
        .users
        .issue_token(&root, None, None)
        .expect("admin token")
        .access_token;
    (app, admin)
}

/// sipreg with the defaults plus a lab certificate for 127.0.0.1 on a TLS port; returns
/// the server, an admin token, the TLS address and the certificate a client must trust.
async fn tls_server(dir: &Path) -> (AppServer, String, std::net::SocketAddr, std::path::PathBuf) {
    let pair = sipreg::transport::tls::self_signed::self_signed("127.0.0.1").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let (c2, k2) = (cert.clone(), key.clone());
    let (app, admin) = server_with(move |c| {
        c.tls.listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert_file = c2;
        c.tls.key_file = k2;
    })
    .await;
    let sips = app.sips.expect("sipreg serves TLS with a certificate");
    (app, admin, sips, cert)
}

/// baresip 1.0 run headless: no audio or video modules, only the account loader; the
/// account points at sipreg over `transport` (over TLS trusting `ca`). `-t` bounds its
/// life even if a kill failed.
fn baresip(
    dir: &Path,
    server: std::net::SocketAddr,
    transport: Transport,
    ca: Option<&Path>,
) -> Phone {
    let port = free_port();
    let mut config = format!(
        "sip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\nmodule account.so\n"
    );
    if let Some(ca) = ca {
        config.push_str(&format!("sip_cafile {}\n", ca.display()));
    }
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:alice@{server};transport={}>;auth_pass={PASSWORD};regint=600\n",
            transport.as_str()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(dir).args(["-s", "-t", "60"]);
    Phone::spawn("baresip", cmd, &dir.join("baresip.log"), false)
}

async fn baresip_registers(transport: Transport) {
    if !tool("baresip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (app, admin, target, ca) = if transport == Transport::Tls {
        let (app, admin, sips, ca) = tls_server(dir.path()).await;
        (app, admin, sips, Some(ca))
    } else {
        let (app, admin) = server().await;
        let sip = app.sip;
        (app, admin, sip, None)
    };
    let mut phone = baresip(dir.path(), target, transport, ca.as_deref());
    let b = wait_for_binding(
        &app, &admin, &mut phone, "alice", transport, "baresip", WAIT,
    )
    .await;
    let b = b.unwrap_or_else(|| panic!("baresip over {transport} not bound\n{}", phone.output()));
    assert!(b.contact.starts_with("sip:alice"), "{b:?}");
    let out = phone.output();
    // The 401 it answered offered it MD5 Digest only (the shipped "baresip*" rule).
    assert!(out.contains("algorithm=MD5"), "{out}");
    assert!(!out.contains("WWW-Authenticate: Bearer"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_with_digest_over_udp() {
    baresip_registers(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_with_digest_over_tcp() {
    baresip_registers(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_with_digest_over_tls() {
    baresip_registers(Transport::Tls).await;
}

/// linphonec 5.1 with a configuration file and a temporary HOME (it needs
/// `~/.local/share/linphone/`), driven through its standard input; over TLS it trusts
/// `ca` and checks sipreg's certificate.
fn linphonec(
    dir: &Path,
    server: std::net::SocketAddr,
    transport: Transport,
    ca: Option<&Path>,
) -> Phone {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let (udp, tcp, tls) = match transport {
        Transport::Tcp => (0, free_port(), 0),
        Transport::Tls => (0, 0, free_port()),
        _ => (free_port(), 0, 0),
    };
    let trust = ca.map_or(String::new(), |ca| {
        format!(
            "root_ca={}\nverify_server_certs=1\nverify_server_cn=1\n",
            ca.display()
        )
    });
    // linphone's TLS (mbedTLS) matches the server's name against DNS names only, not IP
    // addresses: over TLS it is pointed at `localhost`, which the lab certificate names.
    let proxy = match transport {
        Transport::Tls => format!("sip:localhost:{};transport=tls", server.port()),
        _ => registrar_uri(server, transport),
    };
    let rc = dir.join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port={tls}\n{trust}\
             [rtp]\naudio_rtp_port={}\nvideo_rtp_port={}\n\
             [proxy_0]\nreg_proxy=<{}>\nreg_identity=sip:alice@{}\nreg_expires=600\nreg_sendregister=1\n\
             [auth_info_0]\nusername=alice\npasswd={PASSWORD}\nrealm=sipreg\n",
            free_port(),
            free_port(),
            proxy,
            server.ip(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new("linphonec");
    cmd.env("HOME", &home)
        .arg("-c")
        .arg(&rc)
        .args(["-d", "6", "-l"])
        .arg(dir.join("sip.log"));
    Phone::spawn("linphonec", cmd, &dir.join("linphonec.log"), true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_registers_with_digest_over_udp() {
    linphonec_registers(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_registers_with_digest_over_tls() {
    linphonec_registers(Transport::Tls).await;
}

async fn linphonec_registers(transport: Transport) {
    if !tool("linphonec") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (app, admin, target, ca) = if transport == Transport::Tls {
        let (app, admin, sips, ca) = tls_server(dir.path()).await;
        (app, admin, sips, Some(ca))
    } else {
        let (app, admin) = server().await;
        let sip = app.sip;
        (app, admin, sip, None)
    };
    let mut phone = linphonec(dir.path(), target, transport, ca.as_deref());
    let b = wait_for_binding(
        &app,
        &admin,
        &mut phone,
        "alice",
        transport,
        "Linphonec",
        WAIT,
    )
    .await;
    let sip_log = std::fs::read_to_string(dir.path().join("sip.log")).unwrap_or_default();
    let b = b.unwrap_or_else(|| {
        panic!(
            "linphonec not bound (running: {})\n{}\n{}",
            phone.running(),
            phone.output(),
            sip_log
                .lines()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(b.contact.starts_with("sip:alice"), "{b:?}");
    // It chose the stronger of the two Digest challenges the "Linphone*" rule offers.
    assert!(
        sip_log.contains("algorithm=SHA-256"),
        "no SHA-256 answer seen"
    );
    assert!(phone.running(), "linphonec died\n{}", phone.output());
    phone.command("quit");
}

async fn sipp_registers(transport: Transport) {
    if !tool("sipp") {
        return;
    }
    let (app, admin) = server().await;
    let csv = sipp_users_csv(&app, 3, "sippc").await;
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sipp/register_digest.xml");
    let port = free_port().to_string();
    let t = match transport {
        Transport::Tcp => "t1",
        _ => "u1",
    };
    let remote = app.sip.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .args(["-t", t, "-sf"])
            .arg(&scenario)
            .arg("-inf")
            .arg(&csv)
            .args(["-m", "3", "-r", "10", "-i", "127.0.0.1", "-p", &port])
            .args(["-timeout", "30s", "-timeout_error", "-nostdin", &remote])
            .output()
            .expect("run sipp")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sipp over {transport} exited {:?}\n{text}",
        out.status.code()
    );
    let bound = registrations(&app, &admin).await;
    for i in 0..3 {
        let user = format!("sippc{i}");
        assert!(
            bound
                .iter()
                .any(|b| b.aor.starts_with(&format!("sip:{user}@"))
                    && b.transport == transport.as_str()
                    && b.user_agent == "sipp"),
            "{user} not bound over {transport}: {bound:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_digest_scenario_registers_over_udp() {
    sipp_registers(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_digest_scenario_registers_over_tcp() {
    sipp_registers(Transport::Tcp).await;
}
