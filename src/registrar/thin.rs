//! An owned, immutable byte string behind a one-word pointer, its length stored in front
//! of the bytes as a varint.
//!
//! Why: the binding table holds one of these per AOR in a `DashMap`, whose buckets are
//! allocated at up to twice the entry count; a `Box<[u8]>` is two words, so a million
//! AORs paid ~17 MB for lengths alone. The crates that offer thin pointers (`thin-vec`,
//! `triomphe::ThinArc`) keep a 16-byte header, which would move a typical binding into the
//! next allocator size class.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

/// The bytes, owned; `Deref`s to `&[u8]`.
pub struct ThinBytes(NonNull<u8>);

// SAFETY: ThinBytes owns its allocation exclusively and never mutates it after creation,
// like a Box<[u8]>, which is Send and Sync.
unsafe impl Send for ThinBytes {}
unsafe impl Sync for ThinBytes {}

/// At most 10 octets encode a u64 (and so any usize here).
const MAX_PREFIX: usize = 10;

fn prefix(len: usize) -> ([u8; MAX_PREFIX], usize) {
    let mut out = [0u8; MAX_PREFIX];
    let (mut v, mut n) = (len as u64, 0);
    while v >= 0x80 {
        out[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    (out, n + 1)
}

impl ThinBytes {
    pub fn new(data: &[u8]) -> ThinBytes {
        let (head, h) = prefix(data.len());
        let layout = Self::layout(h + data.len());
        // SAFETY: the layout's size is at least 1 (the prefix); the pointer is checked
        // for null; both copies stay inside the h + len bytes just allocated.
        unsafe {
            let p = alloc(layout);
            let Some(p) = NonNull::new(p) else {
                handle_alloc_error(layout)
            };
            std::ptr::copy_nonoverlapping(head.as_ptr(), p.as_ptr(), h);
            std::ptr::copy_nonoverlapping(data.as_ptr(), p.as_ptr().add(h), data.len());
            ThinBytes(p)
        }
    }

    fn layout(size: usize) -> Layout {
        match Layout::from_size_align(size, 1) {
            Ok(l) => l,
            // Only for a size beyond isize::MAX, which no slice has.
            Err(_) => handle_alloc_error(Layout::new::<u8>()),
        }
    }

    /// (prefix length, data length), read from the front of the allocation.
    fn header(&self) -> (usize, usize) {
        let (mut len, mut i) = (0u64, 0usize);
        loop {
            // SAFETY: `new` wrote a complete varint of at most MAX_PREFIX bytes at the
            // start of the allocation; the loop stops at its last byte.
            let b = unsafe { *self.0.as_ptr().add(i) };
            len |= u64::from(b & 0x7f) << (7 * i);
            i += 1;
            if b < 0x80 || i == MAX_PREFIX {
                return (i, len as usize);
            }
        }
    }
}

impl std::ops::Deref for ThinBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (h, len) = self.header();
        // SAFETY: `new` copied exactly `len` initialised bytes after the `h`-byte prefix,
        // and nothing writes to them while `self` lives.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(h), len) }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        let (h, len) = self.header();
        // SAFETY: the same pointer and layout (size h + len, alignment 1) as in `new`.
        unsafe { dealloc(self.0.as_ptr(), Self::layout(h + len)) }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        ThinBytes::new(self)
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &ThinBytes) -> bool {
        **self == **other
    }
}

impl Eq for ThinBytes {}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word_and_round_trips() {
        assert_eq!(
            std::mem::size_of::<ThinBytes>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<ThinBytes>>(),
            std::mem::size_of::<usize>()
        );
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let t = ThinBytes::new(&data);
            assert_eq!(&*t, &data[..], "length {len}");
            let c = t.clone();
            drop(t);
            assert_eq!(&*c, &data[..]);
            assert_eq!(c, ThinBytes::new(&data));
        }
        assert_ne!(ThinBytes::new(b"a"), ThinBytes::new(b"b"));
    }

    #[test]
    fn moves_between_threads() {
        let t = ThinBytes::new(b"binding");
        let back = std::thread::spawn(move || t).join().unwrap();
        assert_eq!(&*back, b"binding");
    }
}
