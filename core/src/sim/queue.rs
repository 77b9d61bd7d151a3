//! The simulator's agenda: events ordered by time, then by the order they were scheduled
//! (so equal times never depend on anything but the run itself).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A time-ordered queue of `E`.
#[derive(Debug)]
pub struct Agenda<E> {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: std::collections::HashMap<u64, E>,
    seq: u64,
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Agenda { heap: BinaryHeap::new(), events: Default::default(), seq: 0 }
    }
}

impl<E> Agenda<E> {
    /// Schedule `e` at `at_ms`.
    pub fn push(&mut self, at_ms: u64, e: E) {
        self.seq += 1;
        self.heap.push(Reverse((at_ms, self.seq)));
        self.events.insert(self.seq, e);
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        loop {
            let Reverse((t, seq)) = self.heap.pop()?;
            // Events dropped by `retain` leave their place in the heap behind.
            if let Some(e) = self.events.remove(&seq) {
                return Some((t, e));
            }
        }
    }

    /// Keep only the events for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.events.retain(|_, e| keep(e));
    }

    /// The earliest event and its time, if it is due by `until_ms`.
    pub fn pop_until(&mut self, until_ms: u64) -> Option<(u64, E)> {
        if self.peek_time()? > until_ms {
            return None;
        }
        self.pop()
    }

    /// Time of the earliest event.
    pub fn peek_time(&mut self) -> Option<u64> {
        while let Some(Reverse((t, seq))) = self.heap.peek() {
            if self.events.contains_key(seq) {
                return Some(*t);
            }
            self.heap.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_scheduling_order() {
        let mut a = Agenda::default();
        a.push(5, "late");
        a.push(1, "first");
        a.push(1, "second");
        a.push(3, "middle");
        assert_eq!(a.peek_time(), Some(1));
        a.push(9, "last");
        assert_eq!(a.pop_until(0), None, "nothing due by 0");
        let order: Vec<_> = std::iter::from_fn(|| a.pop_until(5)).collect();
        assert_eq!(order, vec![(1, "first"), (1, "second"), (3, "middle"), (5, "late")]);
        assert_eq!(a.pop_until(8), None, "9 is not due by 8");
        assert_eq!(a.pop(), Some((9, "last")));
        a.push(10, "dropped");
        a.push(11, "kept");
        a.retain(|e| *e != "dropped");
        assert_eq!(a.peek_time(), Some(11));
        assert_eq!(a.pop(), Some((11, "kept")));
        assert!(a.pop().is_none());
    }
}
