//! Helpers shared by the protocol machines: ready-pipe round robin, bounded queues and the
//! backtrace header of req/rep and survey.

use std::collections::VecDeque;

use super::PipeId;

/// Most hops a backtrace may hold before the message is dropped (NNG's default `ttl-max`).
pub(crate) const MAX_TTL: usize = 8;

/// Pipes in connection order with a ready flag, served round robin.
#[derive(Debug, Default)]
pub(crate) struct ReadyRing {
    pipes: Vec<(PipeId, bool)>,
    next: usize,
}

impl ReadyRing {
    pub(crate) fn add(&mut self, pipe: PipeId) {
        self.pipes.push((pipe, true));
    }

    pub(crate) fn remove(&mut self, pipe: PipeId) {
        if let Some(i) = self.pipes.iter().position(|(p, _)| *p == pipe) {
            self.pipes.remove(i);
            if self.next > i {
                self.next -= 1;
            }
        }
    }

    pub(crate) fn set_ready(&mut self, pipe: PipeId) {
        if let Some(e) = self.pipes.iter_mut().find(|(p, _)| *p == pipe) {
            e.1 = true;
        }
    }

    pub(crate) fn contains(&self, pipe: PipeId) -> bool {
        self.pipes.iter().any(|(p, _)| *p == pipe)
    }

    pub(crate) fn len(&self) -> usize {
        self.pipes.len()
    }

    /// Takes the next ready pipe in round-robin order and marks it busy.
    pub(crate) fn take_ready(&mut self) -> Option<PipeId> {
        let n = self.pipes.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.pipes[i].1 {
                self.pipes[i].1 = false;
                self.next = (i + 1) % n;
                return Some(self.pipes[i].0);
            }
        }
        None
    }

    /// Marks a specific pipe busy, if it was ready.
    pub(crate) fn take(&mut self, pipe: PipeId) -> bool {
        match self.pipes.iter_mut().find(|(p, r)| *p == pipe && *r) {
            Some(e) => {
                e.1 = false;
                true
            }
            None => false,
        }
    }
}

/// A FIFO with a capacity; `push` reports whether the item fit.
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> Bounded<T> {
    pub(crate) fn new(cap: usize) -> Bounded<T> {
        Bounded {
            items: VecDeque::new(),
            cap,
        }
    }
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= self.cap
    }
    /// Adds at the back; when full, drops the oldest if `prefer_new`, else refuses `item`.
    pub(crate) fn push(&mut self, item: T, prefer_new: bool) -> bool {
        if self.is_full() {
            if !prefer_new || self.cap == 0 {
                return false;
            }
            self.items.pop_front();
        }
        self.items.push_back(item);
        true
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Puts back an item taken with `pop` (ignores the capacity: it was counted before).
    pub(crate) fn push_front(&mut self, item: T) {
        self.items.push_front(item);
    }
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }
    pub(crate) fn retain(&mut self, f: impl FnMut(&T) -> bool) {
        self.items.retain(f);
    }
}

/// The backtrace at the front of a req/rep or survey message: 4-byte words up to and
/// including the first with the high bit set; the body follows it. `None` if malformed or
/// over the hop limit.
pub(crate) fn backtrace(msg: &[u8]) -> Option<&[u8]> {
    let mut off = 0;
    for _ in 0..MAX_TTL {
        let word = msg.get(off..off + 4)?;
        off += 4;
        if word[0] & 0x80 != 0 {
            return Some(&msg[..off]);
        }
    }
    None
}

/// Removes the first `n` bytes of `msg` in place: a large body is moved within its own
/// buffer, never copied into a fresh one (whose pages the kernel would first have to clear).
pub(crate) fn strip(msg: &mut Vec<u8>, n: usize) {
    msg.drain(..n.min(msg.len()));
}

/// Reads the 4-byte big-endian id at the front of `msg` (req reply or survey answer).
pub(crate) fn split_id(msg: &[u8]) -> Option<(u32, &[u8])> {
    let word: [u8; 4] = msg.get(..4)?.try_into().ok()?;
    let id = u32::from_be_bytes(word);
    (id & 0x8000_0000 != 0).then_some((id, &msg[4..]))
}

/// Generator of 31-bit ids with the high bit set on the wire (request and survey ids).
#[derive(Debug)]
pub(crate) struct IdGen(u32);

impl IdGen {
    /// Starts from a time-derived value so that restarted peers do not reuse ids at once.
    pub(crate) fn new() -> IdGen {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(13))
            .unwrap_or(1);
        IdGen(seed & 0x7fff_ffff)
    }
    pub(crate) fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(1) & 0x7fff_ffff;
        self.0 | 0x8000_0000
    }
}

/// `header` then `body` in one buffer.
pub(crate) fn join(header: &[u8], mut body: Vec<u8>) -> Vec<u8> {
    // In place, for the reason of `strip`; growing a large buffer by a few bytes reallocates
    // by remapping its pages.
    body.splice(0..0, header.iter().copied());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_round_robins_ready_pipes_only() {
        let mut r = ReadyRing::default();
        r.add(PipeId(1));
        r.add(PipeId(2));
        r.add(PipeId(3));
        assert_eq!(r.take_ready(), Some(PipeId(1)));
        assert_eq!(r.take_ready(), Some(PipeId(2)));
        r.set_ready(PipeId(1));
        assert_eq!(r.take_ready(), Some(PipeId(3)));
        assert_eq!(r.take_ready(), Some(PipeId(1)));
        assert_eq!(r.take_ready(), None);
        r.remove(PipeId(2));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn backtrace_ends_at_high_bit() {
        let msg = [0, 0, 0, 5, 0x80, 0, 0, 1, b'x'];
        assert_eq!(backtrace(&msg), Some(&msg[..8]));
        assert_eq!(backtrace(&[0, 0, 0, 1]), None);
        assert_eq!(backtrace(&[0; 40]), None);
    }

    #[test]
    fn ids_have_high_bit() {
        let mut g = IdGen::new();
        let a = g.next();
        assert!(a & 0x8000_0000 != 0);
        assert_ne!(a, g.next());
        assert_eq!(split_id(&a.to_be_bytes()).map(|(i, _)| i), Some(a));
        assert_eq!(split_id(&[0, 0, 0, 1]), None);
    }

    #[test]
    fn bounded_prefers_new_or_refuses() {
        let mut q = Bounded::new(2);
        assert!(q.push(1, true) && q.push(2, true) && q.push(3, true));
        assert_eq!(q.pop(), Some(2));
        assert!(q.push(4, false));
        assert!(!q.push(5, false));
    }
}
