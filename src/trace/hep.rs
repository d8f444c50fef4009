//! HEPv3 (the Homer capture protocol, "HEP3 Network Protocol Specification"): one UDP
//! packet per SIP message, `HEP3`, the total length, then chunks of vendor 0x0000, each
//! `vendor(2) type(2) length(2, header included) payload`, all big-endian.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::transport::{Direction, Transport};

/// Chunk types of the generic vendor (0x0000) this encoder writes.
pub mod chunk {
    pub const IP_FAMILY: u16 = 1;
    pub const IP_PROTOCOL: u16 = 2;
    pub const SRC_IPV4: u16 = 3;
    pub const DST_IPV4: u16 = 4;
    pub const SRC_IPV6: u16 = 5;
    pub const DST_IPV6: u16 = 6;
    pub const SRC_PORT: u16 = 7;
    pub const DST_PORT: u16 = 8;
    pub const TIME_SECS: u16 = 9;
    pub const TIME_MICROS: u16 = 10;
    pub const PROTOCOL_TYPE: u16 = 11;
    pub const CAPTURE_ID: u16 = 12;
    pub const PAYLOAD: u16 = 15;
}

/// Address families (chunk 1) and protocols (chunk 2, 11) as Homer expects them.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const PROTOCOL_SIP: u8 = 1;

/// What one HEP packet says.
pub struct Capture<'a> {
    pub direction: Direction,
    pub transport: Transport,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub time: SystemTime,
    pub capture_id: u32,
    pub payload: &'a [u8],
}

/// The packet; `None` when the payload does not fit a chunk (over 65,529 octets).
pub fn encode(c: &Capture<'_>) -> Option<Vec<u8>> {
    let (src, dst) = match c.direction {
        Direction::Received => (c.peer, c.local),
        Direction::Sent => (c.local, c.peer),
    };
    let since = c.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = Vec::with_capacity(c.payload.len() + 96);
    out.extend_from_slice(b"HEP3");
    out.extend_from_slice(&[0, 0]); // total length, filled below
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ok((s.octets(), d.octets())),
        (s, d) => Err((v6(s), v6(d))),
    };
    match ip {
        Ok((s, d)) => {
            put(&mut out, chunk::IP_FAMILY, &[AF_INET]);
            put(&mut out, chunk::SRC_IPV4, &s);
            put(&mut out, chunk::DST_IPV4, &d);
        }
        Err((s, d)) => {
            put(&mut out, chunk::IP_FAMILY, &[AF_INET6]);
            put(&mut out, chunk::SRC_IPV6, &s);
            put(&mut out, chunk::DST_IPV6, &d);
        }
    }
    let proto = if c.transport == Transport::Udp {
        IPPROTO_UDP
    } else {
        IPPROTO_TCP
    };
    put(&mut out, chunk::IP_PROTOCOL, &[proto]);
    put(&mut out, chunk::SRC_PORT, &src.port().to_be_bytes());
    put(&mut out, chunk::DST_PORT, &dst.port().to_be_bytes());
    let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
    put(&mut out, chunk::TIME_SECS, &secs.to_be_bytes());
    put(
        &mut out,
        chunk::TIME_MICROS,
        &since.subsec_micros().to_be_bytes(),
    );
    put(&mut out, chunk::PROTOCOL_TYPE, &[PROTOCOL_SIP]);
    put(&mut out, chunk::CAPTURE_ID, &c.capture_id.to_be_bytes());
    if c.payload.len() > usize::from(u16::MAX) - 6 {
        return None;
    }
    put(&mut out, chunk::PAYLOAD, c.payload);
    let total = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Some(out)
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// One chunk of vendor 0x0000; callers keep `payload` under 65,530 octets.
fn put(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(payload.len() + 6).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The chunks of a packet by type, for tests and tools: `None` when it is not HEPv3 or
/// its lengths do not add up.
pub fn decode(packet: &[u8]) -> Option<Vec<(u16, u16, Vec<u8>)>> {
    if packet.len() < 6 || &packet[..4] != b"HEP3" {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    if total != packet.len() {
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 6;
    while at < total {
        let head = packet.get(at..at + 6)?;
        let vendor = u16::from_be_bytes([head[0], head[1]]);
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        if len < 6 {
            return None;
        }
        chunks.push((vendor, kind, packet.get(at + 6..at + len)?.to_vec()));
        at += len;
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_udp_message_round_trips() {
        let c = Capture {
            direction: Direction::Received,
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            peer: "127.0.0.2:40000".parse().unwrap(),
            time: UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456),
            capture_id: 7,
            payload: b"OPTIONS sip:a SIP/2.0\r\n\r\n",
        };
        let packet = encode(&c).unwrap();
        let chunks = decode(&packet).unwrap();
        let get = |k: u16| {
            chunks
                .iter()
                .find(|(v, t, _)| *v == 0 && *t == k)
                .map(|c| c.2.clone())
                .unwrap()
        };
        assert_eq!(get(chunk::IP_FAMILY), [AF_INET]);
        assert_eq!(get(chunk::IP_PROTOCOL), [IPPROTO_UDP]);
        assert_eq!(get(chunk::SRC_IPV4), [127, 0, 0, 2]);
        assert_eq!(get(chunk::DST_IPV4), [127, 0, 0, 1]);
        assert_eq!(get(chunk::SRC_PORT), 40000u16.to_be_bytes());
        assert_eq!(get(chunk::DST_PORT), 5060u16.to_be_bytes());
        assert_eq!(get(chunk::TIME_SECS), 1_700_000_000u32.to_be_bytes());
        assert_eq!(get(chunk::TIME_MICROS), 123_456u32.to_be_bytes());
        assert_eq!(get(chunk::PROTOCOL_TYPE), [PROTOCOL_SIP]);
        assert_eq!(get(chunk::CAPTURE_ID), 7u32.to_be_bytes());
        assert_eq!(get(chunk::PAYLOAD), c.payload);
    }

    #[test]
    fn mixed_families_are_sent_as_ipv6() {
        let c = Capture {
            direction: Direction::Sent,
            transport: Transport::Tls,
            local: "[::1]:5061".parse().unwrap(),
            peer: "127.0.0.1:4000".parse().unwrap(),
            time: SystemTime::now(),
            capture_id: 1,
            payload: b"x",
        };
        let chunks = decode(&encode(&c).unwrap()).unwrap();
        assert!(
            chunks
                .iter()
                .any(|(_, t, p)| *t == chunk::IP_FAMILY && p == &[AF_INET6])
        );
        assert!(
            chunks
                .iter()
                .any(|(_, t, p)| *t == chunk::IP_PROTOCOL && p == &[IPPROTO_TCP])
        );
        assert!(chunks.iter().any(|(_, t, p)| *t == chunk::DST_IPV6 && p[..] == v6("127.0.0.1".parse().unwrap())));
    }
}
