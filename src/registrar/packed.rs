//! The binding table's storage form of one AOR: all its bindings and its expiry deadline
//! in one compact byte string (integers as LEB128 varints, strings length-prefixed).
//!
//! Why: a million AORs held as `Vec<Binding>` cost ~500 bytes each (the vector, the
//! 180-byte struct, and a separate allocation per string). Packed, an AOR with one phone
//! takes one allocation of ~120 bytes. The table unpacks an AOR only to change or list
//! it, which a REGISTER does once (it works on a copy anyway: §10.3 steps 6–8 commit all
//! or nothing).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::binding::{Binding, Source};
use super::thin::ThinBytes;
use crate::transport::Transport;

/// One AOR's bindings, packed.
#[derive(Clone, PartialEq, Eq)]
pub struct Packed(ThinBytes);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("scheduled", &self.scheduled())
            .field("bindings", &self.unpack())
            .finish()
    }
}

const V6: u8 = 2;
const CONNECTION: u8 = 4;
/// The transport's code (`Transport::code`) sits above the flag bits.
const TRANSPORT_SHIFT: u8 = 3;

impl Packed {
    /// Packs `bindings` with `scheduled`, the deadline of the AOR's entry in the expiry
    /// queue (0: none).
    pub fn pack(scheduled: u64, bindings: &[Binding]) -> Packed {
        // Written to a scratch buffer, then copied into an allocation of the exact size
        // (a shrinking realloc would keep the larger size class).
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            let mut out = scratch.borrow_mut();
            out.clear();
            put_uint(&mut out, scheduled);
            put_uint(&mut out, bindings.len() as u64);
            for b in bindings {
                put_binding(&mut out, b, scheduled);
            }
            let packed = Packed(ThinBytes::new(&out));
            if out.capacity() > 64 * 1024 {
                // One huge AOR must not pin its buffer for the thread's lifetime.
                *out = Vec::new();
            }
            packed
        })
    }

    /// The expiry deadline recorded with the bindings.
    pub fn scheduled(&self) -> u64 {
        Reader(&self.0).uint().unwrap_or(0)
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        let mut r = Reader(&self.0);
        let _ = r.uint();
        r.uint().unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The deadline and the bindings. `None` only if the bytes were not written by
    /// [`Packed::pack`], which cannot happen: the table is their only writer.
    pub fn unpack(&self) -> Option<(u64, Vec<Binding>)> {
        let mut r = Reader(&self.0);
        let scheduled = r.uint()?;
        let n = usize::try_from(r.uint()?).ok()?;
        let mut list = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            list.push(r.binding(scheduled)?);
        }
        r.0.is_empty().then_some((scheduled, list))
    }
}

/// `a - b`, zigzag-encoded: a small varint when the two are close, whichever is larger.
fn delta(a: u64, b: u64) -> u64 {
    let d = a.wrapping_sub(b) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

/// The signed difference a [`delta`] value stands for (as wrapping `u64` arithmetic).
fn difference(v: u64) -> u64 {
    (((v >> 1) as i64) ^ -((v & 1) as i64)) as u64
}

fn put_uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// An optional string: length + 1, or 0 for none.
fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            put_uint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
        None => out.push(0),
    }
}

/// Times are stored as differences: the expiry from the AOR's queued deadline (which is
/// at or just before it), the registration time from the expiry.
fn put_binding(out: &mut Vec<u8>, b: &Binding, scheduled: u64) {
    put_uint(out, b.id);
    put_uint(out, delta(b.expires_at, scheduled));
    put_uint(out, delta(b.expires_at, b.registered_at));
    put_uint(out, u64::from(b.cseq));
    put_uint(out, b.reg_id.map_or(0, |r| u64::from(r) + 1));
    put_uint(out, b.q.map_or(0, |q| u64::from(q) + 1));
    let s = &b.source;
    let mut flags = s.transport.code() << TRANSPORT_SHIFT;
    if s.addr.is_ipv6() {
        flags |= V6;
    }
    if s.connection.is_some() {
        flags |= CONNECTION;
    }
    out.push(flags);
    match s.addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => {
            out.extend_from_slice(&a.ip().octets());
            put_uint(out, u64::from(a.flowinfo()));
            put_uint(out, u64::from(a.scope_id()));
        }
    }
    out.extend_from_slice(&s.addr.port().to_le_bytes());
    if let Some(c) = s.connection {
        put_uint(out, c);
    }
    put_str(out, &b.uri);
    put_opt_str(out, b.instance.as_deref());
    put_str(out, &b.call_id);
    put_uint(out, b.path.len() as u64);
    for p in &b.path {
        put_str(out, p);
    }
    put_opt_str(out, b.user_agent.as_deref());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.uint()?).ok()
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn text(&mut self, n: usize) -> Option<Box<str>> {
        std::str::from_utf8(self.bytes(n)?).ok().map(Into::into)
    }

    fn str(&mut self) -> Option<Box<str>> {
        let n = usize::try_from(self.uint()?).ok()?;
        self.text(n)
    }

    fn opt_str(&mut self) -> Option<Option<Box<str>>> {
        match usize::try_from(self.uint()?).ok()? {
            0 => Some(None),
            n => self.text(n - 1).map(Some),
        }
    }

    fn binding(&mut self, scheduled: u64) -> Option<Binding> {
        let id = self.uint()?;
        let expires_at = scheduled.wrapping_add(difference(self.uint()?));
        let registered_at = expires_at.wrapping_sub(difference(self.uint()?));
        let cseq = self.u32()?;
        let reg_id = match self.uint()? {
            0 => None,
            r => Some(u32::try_from(r - 1).ok()?),
        };
        let q = match self.uint()? {
            0 => None,
            q => Some(u16::try_from(q - 1).ok()?),
        };
        let flags = self.byte()?;
        let addr = if flags & V6 != 0 {
            let octets: [u8; 16] = self.bytes(16)?.try_into().ok()?;
            let flowinfo = self.u32()?;
            let scope = self.u32()?;
            let port = u16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                flowinfo,
                scope,
            ))
        } else {
            let octets: [u8; 4] = self.bytes(4)?.try_into().ok()?;
            let port = u16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(octets), port))
        };
        let connection = if flags & CONNECTION != 0 {
            Some(self.uint()?)
        } else {
            None
        };
        let uri = self.str()?;
        let instance = self.opt_str()?;
        let call_id = self.str()?;
        let paths = usize::try_from(self.uint()?).ok()?;
        let mut path = Vec::with_capacity(paths.min(16));
        for _ in 0..paths {
            path.push(self.str()?);
        }
        let user_agent = self.opt_str()?;
        Some(Binding {
            id,
            uri,
            instance,
            reg_id,
            q,
            expires_at,
            call_id,
            cseq,
            path,
            source: Source {
                transport: Transport::from_code(flags >> TRANSPORT_SHIFT)?,
                addr,
                connection,
            },
            user_agent,
            registered_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(id: u64) -> Binding {
        Binding {
            id,
            uri: "sip:alice@192.0.2.4:5060;transport=udp".into(),
            instance: None,
            reg_id: None,
            q: None,
            expires_at: 1_800_000_000,
            call_id: "a84b4c76e66710@pc33.example.com".into(),
            cseq: 314_159,
            path: Vec::new(),
            source: Source {
                transport: Transport::Udp,
                addr: "127.0.0.1:5060".parse().unwrap(),
                connection: None,
            },
            user_agent: Some("Phone/1.0".into()),
            registered_at: 1_799_996_400,
        }
    }

    #[test]
    fn round_trips_every_field() {
        let plain = binding(1);
        let mut full = binding(u64::MAX);
        full.uri = "sips:b%40x@[2001:db8::1]:5061;transport=tcp;é".into();
        full.instance = Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".into());
        full.reg_id = Some(u32::MAX - 1);
        full.q = Some(1000);
        full.expires_at = u64::MAX;
        full.cseq = u32::MAX;
        full.path = vec!["<sip:p1.example.com;lr>".into(), "<sip:p2;lr>".into()];
        full.source = Source {
            transport: Transport::Wss,
            addr: "[2001:db8::7%3]:40000".parse().unwrap(),
            connection: Some(987_654_321),
        };
        full.user_agent = None;
        let mut zero = binding(0);
        zero.q = Some(0);
        zero.reg_id = Some(0);
        zero.instance = Some(String::new().into());
        zero.user_agent = Some(String::new().into());
        let list = vec![plain, full, zero];
        let p = Packed::pack(1_800_000_123, &list);
        assert_eq!(p.len(), 3);
        assert_eq!(p.scheduled(), 1_800_000_123);
        assert_eq!(p.unpack(), Some((1_800_000_123, list)));
        let empty = Packed::pack(0, &[]);
        assert!(empty.is_empty());
        assert_eq!(empty.unpack(), Some((0, Vec::new())));
    }

    #[test]
    fn one_typical_binding_is_small() {
        // Allocator classes round up, so a typical phone should stay under 128 bytes.
        let p = Packed::pack(1_800_003_600, &[binding(123_456)]);
        // One more byte in front holds the length.
        assert!(p.0.len() < 112, "{} bytes", p.0.len());
    }

    #[test]
    fn truncated_bytes_are_refused_not_misread() {
        let p = Packed::pack(5, &[binding(1), binding(2)]);
        for cut in 0..p.0.len() {
            let short = Packed(ThinBytes::new(&p.0[..cut]));
            assert_eq!(short.unpack(), None, "cut at {cut}");
        }
        let mut long = p.0.to_vec();
        long.push(0);
        assert_eq!(Packed(ThinBytes::new(&long)).unpack(), None);
    }
}
