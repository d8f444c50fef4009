//! Client transactions over real loopback sockets: the server sends a request (as it sends
//! NOTIFY), retransmits it on Timer E over UDP, gives up on Timer F, matches answers by
//! branch, and uses a client's own TCP connection.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use sipreg::config::Config;
use sipreg::server::NoServices;
use sipreg::sip::Method;
use sipreg::sip::headers::HeaderName;
use sipreg::transaction::client::{ClientError, OutgoingRequest, Target};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

fn notify(cseq: u32) -> OutgoingRequest {
    OutgoingRequest {
        method: Method::Notify,
        uri: "sip:watcher@127.0.0.1".into(),
        headers: vec![
            ("From".into(), "<sip:alice@example.com>;tag=srv".into()),
            ("To".into(), "<sip:watcher@example.com>;tag=w1".into()),
            ("Call-ID".into(), "uac-test".into()),
            ("CSeq".into(), format!("{cseq} NOTIFY")),
            ("Event".into(), "presence".into()),
            ("Subscription-State".into(), "active;expires=60".into()),
        ],
        body: Some((
            "application/pidf+xml".into(),
            Bytes::from_static(b"<presence/>"),
        )),
    }
}

/// A response to `req` echoing its Via, From, To, Call-ID and CSeq.
fn answer(req: &[u8], status: u16) -> Vec<u8> {
    let m = parse(&Bytes::copy_from_slice(req));
    let h = |n| {
        m.headers
            .first(n)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    )
    .into_bytes()
}

async fn server(t1_ms: u64) -> TestServer {
    let mut config = Config::default();
    config.sip.t1_ms = t1_ms;
    TestServer::with(config, Arc::new(NoServices)).await
}

#[tokio::test]
async fn udp_request_is_retransmitted_until_timer_f() {
    let srv = server(20).await;
    let watcher = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = Target::Udp(watcher.local_addr().unwrap());
    let started = Instant::now();
    let mut send = tokio::spawn(srv.core.uac.send(notify(1), target));
    // Collect every copy until the transaction gives up.
    let mut copies = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let result = loop {
        tokio::select! {
            r = &mut send => break r.unwrap(),
            Ok((n, _)) = watcher.recv_from(&mut buf) => copies.push(Bytes::copy_from_slice(&buf[..n])),
        }
    };
    assert_eq!(result.unwrap_err(), ClientError::Timeout);
    // Timer F is 64·T1 = 1.28 s; Timer E fires at 20, 60, 140, 300, 620, 1260 ms.
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert!(copies.len() >= 6, "only {} copies", copies.len());
    assert!(
        copies.windows(2).all(|w| w[0] == w[1]),
        "retransmissions differ"
    );
    let first = parse(&copies[0]);
    assert!(
        first
            .first_line
            .starts_with("NOTIFY sip:watcher@127.0.0.1 SIP/2.0")
    );
    let via = first.headers.first(HeaderName::Via).unwrap().to_string();
    assert!(via.starts_with(&format!(
        "SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK",
        srv.addr.port()
    )));
    let stats = &srv.core.uac.stats;
    assert_eq!(stats.timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.retransmissions.load(Ordering::Relaxed) as usize,
        copies.len() - 1
    );
    assert_eq!(srv.core.uac.in_flight(), 0);
}

#[tokio::test]
async fn udp_answer_ends_the_transaction_and_late_copies_are_stray() {
    let srv = server(200).await;
    let watcher = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let send = tokio::spawn(
        srv.core
            .uac
            .send(notify(2), Target::Udp(watcher.local_addr().unwrap())),
    );
    let mut buf = vec![0u8; 65_535];
    let (n, from) = watcher.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        from, srv.addr,
        "requests come from the server's listening port"
    );
    // A provisional answer first, then the final one (twice: a retransmitted 481).
    watcher
        .send_to(&answer(&buf[..n], 100), from)
        .await
        .unwrap();
    let fin = answer(&buf[..n], 481);
    watcher.send_to(&fin, from).await.unwrap();
    let resp = send.await.unwrap().expect("answered");
    assert_eq!(resp.status, 481);
    watcher.send_to(&fin, from).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = &srv.core.uac.stats;
    assert_eq!(stats.retransmissions.load(Ordering::Relaxed), 0);
    assert_eq!(stats.stray_responses.load(Ordering::Relaxed), 1);
    assert_eq!(srv.core.uac.in_flight(), 0);
}

#[tokio::test]
async fn response_for_another_method_does_not_match() {
    let srv = server(50).await;
    let watcher = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let send = tokio::spawn(
        srv.core
            .uac
            .send(notify(3), Target::Udp(watcher.local_addr().unwrap())),
    );
    let mut buf = vec![0u8; 65_535];
    let (n, from) = watcher.recv_from(&mut buf).await.unwrap();
    let wrong = String::from_utf8(answer(&buf[..n], 200))
        .unwrap()
        .replace("3 NOTIFY", "3 OPTIONS");
    watcher.send_to(wrong.as_bytes(), from).await.unwrap();
    watcher
        .send_to(&answer(&buf[..n], 200), from)
        .await
        .unwrap();
    let resp = send.await.unwrap().expect("answered");
    assert_eq!(resp.status, 200);
    assert_eq!(
        srv.core.uac.stats.stray_responses.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn tcp_request_goes_on_the_clients_connection() {
    let srv = server(50).await;
    let mut client = TcpStream::connect(srv.addr).await.unwrap();
    // Any message opens the server's side of the connection; OPTIONS gets its 200.
    client
        .write_all(request("OPTIONS", "z9hG4bKtcp1", "").as_bytes())
        .await
        .unwrap();
    let first = tcp_read(&mut client, Duration::from_secs(2)).await;
    assert_eq!(status(&parse(&first.messages[0])), 200);
    let (id, _) = srv
        .core
        .connections
        .by_peer(client.local_addr().unwrap())
        .expect("connection registered");

    let send = tokio::spawn(srv.core.uac.send(notify(4), Target::Flow(id)));
    let got = tcp_read(&mut client, Duration::from_secs(2)).await;
    assert_eq!(got.messages.len(), 1, "no retransmission over TCP");
    let req = parse(&got.messages[0]);
    let via = req.headers.first(HeaderName::Via).unwrap().to_string();
    assert!(via.starts_with("SIP/2.0/TCP 127.0.0.1:"), "{via}");
    client
        .write_all(&answer(&got.messages[0], 200))
        .await
        .unwrap();
    assert_eq!(send.await.unwrap().expect("answered").status, 200);

    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gone = srv.core.uac.send(notify(5), Target::Flow(id)).await;
    assert_eq!(gone.unwrap_err(), ClientError::NoConnection);
}
