//! [`LazyDeque`]: a queue whose entries may go stale out of line and are cleaned up lazily.
//!
//! The scheduler keeps several orderings whose members leave at arbitrary times: the task
//! queue (a task is cancelled or times out while waiting), the idle daemons (one disconnects
//! or leaves), the pipelining candidates, a direct-mode daemon's sent tasks. Removing an entry
//! from the middle of a `VecDeque` is O(n). Instead the entry stays as a stale marker: the
//! owner can tell it is stale from its own records (an id plus a generation or sequence
//! number that no longer matches), stale entries are skipped when they reach the head, and
//! the whole deque is compacted once they outnumber the live ones by more than [`SLACK`].
//! Every operation is then O(1) amortised and the deque never holds much more than twice the
//! live entries.
//!
//! The deque does not know which entries are live: each call that needs to know takes a
//! predicate, and compaction takes the live count (or a bound on it) that the owner keeps.

use std::collections::VecDeque;

/// Stale entries tolerated beyond the live ones before a [`LazyDeque`] is compacted: keeps
/// compaction amortised O(1) without churning small deques.
pub(crate) const SLACK: usize = 64;

/// A FIFO of entries that may have gone stale; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct LazyDeque<T> {
    items: VecDeque<T>,
}

impl<T> LazyDeque<T> {
    /// An empty deque; allocates nothing.
    pub(crate) const fn new() -> Self {
        LazyDeque {
            items: VecDeque::new(),
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds an entry at the back.
    pub(crate) fn push_back(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// Adds an entry at the front.
    pub(crate) fn push_front(&mut self, item: T) {
        self.items.push_front(item);
    }

    /// Drops the stale entries at the head and returns the first live one, left in place.
    pub(crate) fn front(&mut self, mut live: impl FnMut(&T) -> bool) -> Option<&T> {
        while let Some(item) = self.items.front() {
            if live(item) {
                break;
            }
            self.items.pop_front();
        }
        self.items.front()
    }

    /// Removes and returns the first live entry, dropping the stale ones before it.
    pub(crate) fn pop(&mut self, mut live: impl FnMut(&T) -> bool) -> Option<T> {
        while let Some(item) = self.items.pop_front() {
            if live(&item) {
                return Some(item);
            }
        }
        None
    }

    /// Removes the head entry, live or not (after [`LazyDeque::front`] found it live).
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Inserts an entry at its place in an ordering the deque already keeps: after every
    /// entry whose key is less than `key` (stale entries included), ahead of the rest. The
    /// owner must have kept the entries sorted by `key_of`. O(log n) to find the place, O(the
    /// distance to the nearer end) to move entries, so cheap near the head.
    pub(crate) fn insert_sorted<K: Ord>(&mut self, item: T, key: K, key_of: impl Fn(&T) -> K) {
        let at = self.items.partition_point(|x| key_of(x) < key);
        self.items.insert(at, item);
    }

    /// Compacts the deque, keeping the entries `keep` accepts in order, if it holds more than
    /// `2 * live + SLACK` entries, where `live` is the number of live entries or a bound on
    /// it. True if it compacted. `keep` may also refuse live entries (duplicates, say): the
    /// owner decides what survives.
    pub(crate) fn compact(&mut self, live: usize, keep: impl FnMut(&T) -> bool) -> bool {
        if self.items.len() > live.saturating_mul(2).saturating_add(SLACK) {
            self.items.retain(keep);
            true
        } else {
            false
        }
    }

    /// Empties the deque, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// Empties the deque and frees its allocation.
    pub(crate) fn release(&mut self) {
        self.items = VecDeque::new();
    }

    /// The entries, stale ones included, front to back.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }
}

/// The entries, stale ones included, front to back.
impl<T> IntoIterator for LazyDeque<T> {
    type Item = T;
    type IntoIter = std::collections::vec_deque::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Entries are `(id, gen)`; an entry is live while `live` maps its id to its gen.
    fn is_live(live: &HashSet<(u32, u32)>) -> impl Fn(&(u32, u32)) -> bool + '_ {
        move |e| live.contains(e)
    }

    #[test]
    fn stale_entries_are_skipped_at_the_head() {
        let mut q = LazyDeque::new();
        for e in [(1, 0), (2, 0), (3, 0)] {
            q.push_back(e);
        }
        let live: HashSet<_> = [(3, 0)].into();
        assert_eq!(q.front(is_live(&live)), Some(&(3, 0)));
        // The stale ones in front were dropped, the live one stays.
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(is_live(&live)), Some((3, 0)));
        assert_eq!(q.pop(is_live(&live)), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn pop_skips_stale_entries_anywhere_before_a_live_one() {
        let mut q = LazyDeque::new();
        for i in 0..5 {
            q.push_back((i, 0));
        }
        let live: HashSet<_> = [(2, 0), (4, 0)].into();
        assert_eq!(q.pop(is_live(&live)), Some((2, 0)));
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [(3, 0), (4, 0)]);
        assert_eq!(q.pop(is_live(&live)), Some((4, 0)));
    }

    #[test]
    fn compaction_waits_until_stale_entries_outnumber_live_ones_by_the_slack() {
        let mut q = LazyDeque::new();
        let n = 2 * 10 + SLACK;
        for i in 0..n as u32 {
            q.push_back((i, 0));
        }
        let live: HashSet<_> = (0..10).map(|i| (i, 0)).collect();
        assert!(!q.compact(10, is_live(&live)), "at the bound: kept as is");
        assert_eq!(q.len(), n);
        q.push_back((u32::MAX, 0));
        assert!(q.compact(10, is_live(&live)));
        assert_eq!(q.len(), 10);
        assert!(q.iter().copied().eq((0..10).map(|i| (i, 0))), "order kept");
    }

    #[test]
    fn compaction_may_drop_live_duplicates() {
        let mut q = LazyDeque::new();
        for _ in 0..=SLACK + 2 {
            q.push_back((7, 0));
        }
        let mut seen = HashSet::new();
        assert!(q.compact(1, |&(id, _)| seen.insert(id)));
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [(7, 0)]);
    }

    #[test]
    fn sorted_insert_goes_after_smaller_keys_stale_or_not() {
        let mut q = LazyDeque::new();
        for s in [1u32, 3, 5, 7] {
            q.push_back((s, 0));
        }
        q.insert_sorted((4, 1), 4, |&(s, _)| s);
        q.insert_sorted((0, 1), 0, |&(s, _)| s);
        q.insert_sorted((9, 1), 9, |&(s, _)| s);
        let order: Vec<u32> = q.iter().map(|&(s, _)| s).collect();
        assert_eq!(order, [0, 1, 3, 4, 5, 7, 9]);
    }

    #[test]
    fn clear_and_release_empty_it_and_into_iter_yields_all_in_order() {
        let mut q = LazyDeque::new();
        q.push_back(1);
        q.push_front(0);
        assert_eq!(q.clone().into_iter().collect::<Vec<_>>(), [0, 1]);
        q.push_back(2);
        q.clear();
        assert_eq!(q.len(), 0);
        q.push_back(3);
        q.release();
        assert_eq!(q.pop_front(), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack,
        PushFront,
        /// Make the `n`-th live entry (mod their number) stale, out of line.
        Stale(usize),
        Pop,
        Front,
        Compact,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::PushBack),
            1 => Just(Op::PushFront),
            3 => any::<usize>().prop_map(Op::Stale),
            2 => Just(Op::Pop),
            1 => Just(Op::Front),
            2 => Just(Op::Compact),
        ]
    }

    proptest! {
        /// Against a model that removes entries eagerly: the live entries of the lazy deque,
        /// in order, are always the model's; pops and peeks agree; and compaction keeps the
        /// deque within `2 * live + SLACK` entries.
        #[test]
        fn behaves_like_an_eager_deque(ops in prop::collection::vec(op(), 0..600)) {
            let mut lazy: LazyDeque<(u32, u32)> = LazyDeque::new();
            let mut model: VecDeque<(u32, u32)> = VecDeque::new();
            let mut live: HashSet<(u32, u32)> = HashSet::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::PushBack | Op::PushFront => {
                        let e = (next, 0);
                        next += 1;
                        live.insert(e);
                        if matches!(op, Op::PushBack) {
                            lazy.push_back(e);
                            model.push_back(e);
                        } else {
                            lazy.push_front(e);
                            model.push_front(e);
                        }
                    }
                    Op::Stale(n) => {
                        if !model.is_empty() {
                            let e = model.remove(n % model.len()).unwrap();
                            live.remove(&e);
                        }
                    }
                    Op::Pop => {
                        let got = lazy.pop(|e| live.contains(e));
                        let want = model.pop_front();
                        if let Some(e) = want {
                            live.remove(&e);
                        }
                        prop_assert_eq!(got, want);
                    }
                    Op::Front => {
                        let got = lazy.front(|e| live.contains(e)).copied();
                        prop_assert_eq!(got, model.front().copied());
                    }
                    Op::Compact => {
                        lazy.compact(model.len(), |e| live.contains(e));
                        prop_assert!(lazy.len() <= 2 * model.len() + SLACK);
                    }
                }
                let seen: Vec<_> = lazy.iter().filter(|e| live.contains(e)).copied().collect();
                prop_assert_eq!(seen, model.iter().copied().collect::<Vec<_>>());
            }
        }
    }
}
