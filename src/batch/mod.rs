//! Batching: rows accumulate until one of the triple (max rows, max bytes, max delay) is
//! reached. Pure bookkeeping; the sink decides what a flush does.

use crate::configuration::BatchSettings;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_delay: Duration,
}

impl From<&BatchSettings> for BatchLimits {
    fn from(s: &BatchSettings) -> Self {
        BatchLimits {
            max_rows: s.max_rows,
            max_bytes: s.max_bytes,
            max_delay: Duration::from_millis(s.max_delay_ms),
        }
    }
}

/// An open batch.
#[derive(Debug)]
pub struct Batch<T> {
    limits: BatchLimits,
    items: Vec<T>,
    bytes: usize,
    /// When the oldest item arrived plus `max_delay`.
    deadline: Option<Instant>,
}

impl<T> Batch<T> {
    pub fn new(limits: BatchLimits) -> Self {
        Batch {
            limits,
            items: Vec::new(),
            bytes: 0,
            deadline: None,
        }
    }

    /// Whether an item of `weight` bytes fits without crossing `max_bytes`. An empty batch
    /// takes anything: a single row is never split, and the decoder's size limit keeps it
    /// below the request limit.
    pub fn fits(&self, weight: usize) -> bool {
        self.items.is_empty() || self.bytes + weight <= self.limits.max_bytes
    }

    pub fn push(&mut self, item: T, weight: usize, now: Instant) {
        if self.items.is_empty() {
            self.deadline = Some(now + self.limits.max_delay);
            self.items.reserve(self.limits.max_rows.min(4096));
        }
        self.items.push(item);
        self.bytes += weight;
    }

    /// Full by rows or bytes: flush now rather than wait for the deadline.
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.limits.max_rows || self.bytes >= self.limits.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Closes the batch, returning its items and leaving an empty one.
    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.deadline = None;
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rows: usize, bytes: usize) -> BatchLimits {
        BatchLimits {
            max_rows: rows,
            max_bytes: bytes,
            max_delay: Duration::from_millis(100),
        }
    }

    #[test]
    fn full_by_rows() {
        let mut b = Batch::new(limits(3, 1000));
        let now = Instant::now();
        for i in 0..3 {
            assert!(!b.is_full());
            assert!(b.fits(10));
            b.push(i, 10, now);
        }
        assert!(b.is_full());
        assert_eq!(b.take(), vec![0, 1, 2]);
        assert!(b.is_empty());
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn bytes_never_exceed_the_limit_across_items() {
        let mut b = Batch::new(limits(100, 100));
        let now = Instant::now();
        b.push("a", 60, now);
        assert!(!b.fits(50), "60 + 50 would cross 100");
        assert!(b.fits(40));
        b.push("b", 40, now);
        assert!(b.is_full(), "exactly at max_bytes");
        assert_eq!(b.bytes(), 100);
    }

    #[test]
    fn an_oversized_item_gets_a_batch_of_its_own() {
        let mut b: Batch<u8> = Batch::new(limits(100, 100));
        assert!(b.fits(500));
        b.push(1, 500, Instant::now());
        assert!(b.is_full());
        assert!(!b.fits(1));
    }

    #[test]
    fn deadline_counts_from_the_first_item() {
        let mut b = Batch::new(limits(10, 1000));
        let t0 = Instant::now();
        b.push(1, 1, t0);
        b.push(2, 1, t0 + Duration::from_millis(50));
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
        b.take();
        let t1 = t0 + Duration::from_millis(500);
        b.push(3, 1, t1);
        assert_eq!(b.deadline(), Some(t1 + Duration::from_millis(100)));
    }
}
