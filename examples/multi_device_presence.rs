//! One user, three devices, one composed document (issue 5), over real sockets against
//! an in-process sipreg:
//! 1. alice's desktop (UDP), mobile (TCP) and tablet (UDP) register;
//! 2. bob subscribes to alice and prints every NOTIFY's PIDF: three open tuples;
//! 3. the devices publish available, busy and away: bob sees one person, busy (the merge
//!    ranks on-the-phone > busy > meeting > away);
//! 4. the mobile unregisters and withdraws its publication: bob sees the recomposition
//!    (two tuples, away).
//!
//! Run: `cargo run --example multi_device_presence` (exits non-zero on any surprise).

mod support;

use std::process::ExitCode;
use std::time::Duration;

use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::sip::headers::HeaderName;
use sipreg::users::NewUser;
use support::*;

const AOR: &str = "sip:alice@example.com";
const DESKTOP: &str = "urn:uuid:00000000-0000-1000-8000-00000000de5c";
const MOBILE: &str = "urn:uuid:00000000-0000-1000-8000-0000000000b1";
const TABLET: &str = "urn:uuid:00000000-0000-1000-8000-00000000ab1e";
const WAIT: Duration = Duration::from_secs(5);

async fn register(ua: &mut Ua, instance: &str, expires: u32) -> Res<()> {
    let contact = format!("{};+sip.instance=\"<{instance}>\"", ua.contact());
    let call_id = format!("reg-{}", ua.local.port());
    let req = ua.request(
        "REGISTER",
        "sip:example.com",
        &call_id,
        "<sip:alice@example.com>",
        &format!("Contact: {contact}\r\nExpires: {expires}\r\n"),
        "",
    );
    let m = ua.send(&req).await?;
    check(
        status(&m) == 200,
        &format!(
            "{} device {} registers (Expires {expires})",
            ua.transport, ua.local
        ),
        &m,
    )
}

/// PUBLISH (new when `etag` is empty, else replacing/removing it); returns the new tag.
async fn publish(
    ua: &mut Ua,
    tuple: &str,
    device: &str,
    activity: &str,
    etag: &str,
    expires: u32,
) -> Res<String> {
    let shown = if activity.is_empty() {
        "available"
    } else {
        activity
    };
    let body = if expires == 0 {
        String::new()
    } else {
        pidf(
            AOR,
            tuple,
            device,
            activity,
            &format!("{tuple} says {shown}"),
        )
    };
    let mut extra = format!("Event: presence\r\nExpires: {expires}\r\n");
    if !etag.is_empty() {
        extra.push_str(&format!("SIP-If-Match: {etag}\r\n"));
    }
    if !body.is_empty() {
        extra.push_str("Content-Type: application/pidf+xml\r\n");
    }
    let call_id = format!("pub-{}", ua.local.port());
    let req = ua.request("PUBLISH", AOR, &call_id, &format!("<{AOR}>"), &extra, &body);
    let m = ua.send(&req).await?;
    check(
        status(&m) == 200,
        &format!("{tuple} publishes {shown} (Expires {expires})"),
        &m,
    )?;
    Ok(header(&m, HeaderName::SipETag))
}

async fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.http.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    config.users.argon2_memory_kib = 64;
    config.users.argon2_iterations = 1;
    // Quick coalescing so the example runs in a few seconds.
    config.presence.notify_interval_ms = 200;
    let app = App::build(config).await?;
    let sip = app.sip_addr();
    println!("sipreg: SIP on {sip} (UDP and TCP)");
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        let user = app
            .users
            .create_user(NewUser {
                username: name.into(),
                password: Some("Example-Passw0rd-42".into()),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        tokens.push(
            app.users
                .issue_token(&user, None, None)
                .map_err(|e| e.to_string())?
                .access_token,
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));

    let mut desktop = Ua::udp("alice", &tokens[0], sip).await?;
    let mut mobile = Ua::tcp("alice", &tokens[0], sip).await?;
    let mut tablet = Ua::udp("alice", &tokens[0], sip).await?;
    register(&mut desktop, DESKTOP, 3600).await?;
    register(&mut mobile, MOBILE, 3600).await?;
    register(&mut tablet, TABLET, 3600).await?;

    let mut bob = Ua::udp("bob", &tokens[1], sip).await?;
    let sub = bob.request(
        "SUBSCRIBE",
        AOR,
        "watch-1",
        &format!("<{AOR}>"),
        &format!(
            "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\nContact: {}\r\n",
            bob.contact()
        ),
        "",
    );
    let ok = bob.send(&sub).await?;
    check(
        status(&ok) == 200 && !to_tag(&ok).is_empty(),
        "bob subscribes to alice",
        &ok,
    )?;
    println!("bob's NOTIFYs:");
    bob.notify_until(WAIT, true, |n| {
        body(n).matches("<basic>open</basic>").count() == 3
    })
    .await?;
    println!("ok: three registered devices, three open tuples");

    let _desk_tag = publish(&mut desktop, "desktop", DESKTOP, "", "", 600).await?;
    let mobile_tag = publish(&mut mobile, "mobile", MOBILE, "busy", "", 600).await?;
    let _tablet_tag = publish(&mut tablet, "tablet", TABLET, "away", "", 600).await?;
    bob.notify_until(WAIT, true, |n| {
        let b = body(n);
        b.contains("tuple id=\"desktop\"")
            && b.contains("tuple id=\"mobile\"")
            && b.contains("tuple id=\"tablet\"")
            && b.contains("rpid:busy")
            && !b.contains("rpid:away")
            && b.matches("<dm:person").count() == 1
    })
    .await?;
    println!("ok: one person, busy (busy outranks away; available is no activity)");

    register(&mut mobile, MOBILE, 0).await?;
    publish(&mut mobile, "mobile", MOBILE, "", &mobile_tag, 0).await?;
    bob.notify_until(WAIT, true, |n| {
        let b = body(n);
        !b.contains("tuple id=\"mobile\"")
            && b.contains("tuple id=\"desktop\"")
            && b.contains("rpid:away")
            && !b.contains("rpid:busy")
    })
    .await?;
    println!("ok: the mobile left; the composition is recomputed (away)");

    let _ = stop_tx.send(());
    running
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("multi-device presence behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
