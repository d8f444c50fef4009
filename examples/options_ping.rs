//! Starts sipreg in-process on loopback, sends an OPTIONS over UDP and one over TCP, prints
//! the answers, and exits non-zero unless both are 200 OK with an Allow header.
//!
//! Run: `cargo run --example options_ping`

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sipreg::config::Config;
use sipreg::server::{NoServices, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options(branch: &str, transport: &str) -> String {
    format!(
        "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:example@example.com>;tag=ex1\r\n\
         To: <sip:ping@127.0.0.1>\r\n\
         Call-ID: {branch}@example\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn check(label: &str, answer: &str) -> bool {
    println!("--- {label} answer ---\n{answer}");
    answer.starts_with("SIP/2.0 200 OK\r\n") && answer.contains("\r\nAllow: ")
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().expect("address");
    let server = match Server::bind(config, Arc::new(NoServices)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr();
    println!("sipreg listening on {addr} (UDP and TCP)");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    udp.send_to(options("udp1", "UDP").as_bytes(), addr)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65_535];
    let udp_ok = match tokio::time::timeout(Duration::from_secs(2), udp.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => check("UDP", &String::from_utf8_lossy(&buf[..n])),
        _ => false,
    };

    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(options("tcp1", "TCP").as_bytes())
        .await
        .expect("write");
    let tcp_ok = match tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await {
        Ok(Ok(n)) => check("TCP", &String::from_utf8_lossy(&buf[..n])),
        _ => false,
    };

    let _ = stop_tx.send(());
    let _ = running.await;
    if udp_ok && tcp_ok {
        println!("OPTIONS answered 200 over UDP and TCP");
        ExitCode::SUCCESS
    } else {
        eprintln!("unexpected answer (UDP ok: {udp_ok}, TCP ok: {tcp_ok})");
        ExitCode::FAILURE
    }
}
