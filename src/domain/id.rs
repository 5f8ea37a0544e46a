//! Time-ordered 64-bit ids, printed as decimal strings (ZITADEL's format).
//!
//! Layout: 41 bits of milliseconds since 2024-01-01, 10 bits of node number (taken from the
//! database at start, so replicas never collide), 12 bits of sequence within a millisecond.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

const EPOCH_MS: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;

pub struct IdGenerator {
    node: AtomicI64,
    state: Mutex<(i64, i64)>, // (last millisecond, sequence)
}

impl IdGenerator {
    pub fn new(node: i64) -> Self {
        IdGenerator { node: AtomicI64::new(node & ((1 << NODE_BITS) - 1)), state: Mutex::new((0, 0)) }
    }

    /// The node number in the ids this generator mints.
    pub fn node(&self) -> i64 {
        self.node.load(Ordering::Relaxed)
    }

    /// Switches to another node number (after a lost lease).
    pub fn set_node(&self, node: i64) {
        self.node.store(node & ((1 << NODE_BITS) - 1), Ordering::Relaxed);
    }

    /// Mints only ids above `id` from now on, whatever the clock says (the ids of an earlier
    /// process, whose clock may have been ahead of this one's).
    pub fn advance_past(&self, id: i64) {
        let ms = id >> (NODE_BITS + SEQ_BITS);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if ms >= state.0 {
            // The last sequence number of that millisecond: the next id borrows the one after.
            *state = (ms, (1 << SEQ_BITS) - 1);
        }
    }

    pub fn next(&self) -> i64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut now = chrono::Utc::now().timestamp_millis() - EPOCH_MS;
        if now < state.0 {
            now = state.0; // clock went backwards: stay on the last millisecond
        }
        if now == state.0 {
            state.1 += 1;
            if state.1 >= (1 << SEQ_BITS) {
                // Sequence exhausted: borrow the next millisecond.
                now += 1;
                state.1 = 0;
            }
        } else {
            state.1 = 0;
        }
        state.0 = now;
        (now << (NODE_BITS + SEQ_BITS)) | (self.node() << SEQ_BITS) | state.1
    }
}

/// Parses an id from a path or body; anything that is not a positive decimal i64 matches nothing.
pub fn parse(s: &str) -> Option<i64> {
    // Ids are opaque strings: `0123` is not the id `123` (no id starts with a zero).
    if s.is_empty() || s.len() > 19 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_are_unique() {
        let g = IdGenerator::new(3);
        let mut last = 0;
        for _ in 0..10_000 {
            let id = g.next();
            assert!(id > last);
            last = id;
        }
        assert!(last.to_string().len() >= 17);
    }

    /// After ids minted on a clock that was ahead (another process's, before a restart), the
    /// next ones come after them, not from the wall clock.
    #[test]
    fn ids_come_after_the_highest_in_use() {
        let ahead_ms = chrono::Utc::now().timestamp_millis() - EPOCH_MS + 3_600_000;
        let earlier = (ahead_ms << (NODE_BITS + SEQ_BITS)) | (5 << SEQ_BITS) | 17;
        let g = IdGenerator::new(0);
        g.advance_past(earlier);
        let mut last = earlier;
        for _ in 0..5_000 {
            let id = g.next();
            assert!(id > last, "{id} after {last}");
            last = id;
        }
        // A lower id does not move it back.
        g.advance_past(1);
        assert!(g.next() > last);
    }

    #[test]
    fn parse_rejects_odd_ids() {
        assert_eq!(parse("123"), Some(123));
        for bad in ["", "-1", "0", "1a", "..", "\0", "99999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
