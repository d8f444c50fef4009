//! Messages received by a lane and not yet handled, packed into one reused buffer so a
//! batch of answers costs no allocation once the buffer has grown.

#[derive(Debug, Default)]
pub struct Inbox {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Inbox {
    pub fn push(&mut self, msg: &[u8]) {
        self.data.extend_from_slice(msg);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th message.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_messages_apart() {
        let mut b = Inbox::default();
        b.push(b"one");
        b.push(b"");
        b.push(b"three");
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(0), b"one");
        assert_eq!(b.get(1), b"");
        assert_eq!(b.get(2), b"three");
        b.clear();
        assert!(b.is_empty());
    }
}
