//! The process-wide budget of appends in flight, in bytes of rows (`application.
//! max_append_bytes`): every attempt of every table holds its rows' weight from it while it
//! encodes and sends, and gives it back before any backoff, so memory for appends does not
//! grow with the number of objects. An object takes from its own share first (half of the
//! budget): a table whose appends hang holds at most that, and the other objects go on with
//! the rest. Both semaphores are fair (first come, first served), so a busy object cannot
//! starve a quiet one either.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget every object's appends draw on.
#[derive(Debug, Clone)]
pub struct AppendBudget {
    process: Arc<Semaphore>,
    bytes: u32,
}

/// One object's view of the budget: its share, then the process's.
#[derive(Debug, Clone)]
pub struct ObjectAppendBudget {
    process: Arc<Semaphore>,
    object: Arc<Semaphore>,
    share: u32,
}

/// An attempt's weight, held until it is dropped.
#[derive(Debug)]
pub struct AppendPermit {
    _object: OwnedSemaphorePermit,
    _process: OwnedSemaphorePermit,
}

impl AppendBudget {
    pub fn new(bytes: u64) -> Self {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        AppendBudget {
            process: Arc::new(Semaphore::new(bytes as usize)),
            bytes,
        }
    }

    /// A new object's view, with its own share of half the budget.
    pub fn for_object(&self) -> ObjectAppendBudget {
        let share = (self.bytes / 2).max(1);
        ObjectAppendBudget {
            process: self.process.clone(),
            object: Arc::new(Semaphore::new(share as usize)),
            share,
        }
    }

    /// Bytes not held by any append now.
    pub fn available(&self) -> usize {
        self.process.available_permits()
    }
}

impl ObjectAppendBudget {
    /// Waits until an attempt of `weight` bytes fits (an attempt heavier than the object's
    /// share waits for all of it).
    pub async fn take(&self, weight: usize) -> AppendPermit {
        let n = u32::try_from(weight)
            .unwrap_or(u32::MAX)
            .clamp(1, self.share);
        let object = self.object.clone().acquire_many_owned(n).await;
        let process = self.process.clone().acquire_many_owned(n).await;
        AppendPermit {
            _object: object.expect("never closed"),
            _process: process.expect("never closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn waits(budget: &ObjectAppendBudget, weight: usize) -> bool {
        tokio::time::timeout(Duration::from_millis(100), budget.take(weight))
            .await
            .is_err()
    }

    /// One object's appends hang holding all they may; another object still appends, and
    /// the hanging one waits for its own share, not for the others.
    #[tokio::test]
    async fn a_hanging_table_holds_at_most_its_share() {
        let budget = AppendBudget::new(1000);
        let (busy, quiet) = (budget.for_object(), budget.for_object());
        let mut hung = Vec::new();
        while !waits(&busy, 100).await {
            hung.push(busy.take(100).await);
        }
        assert_eq!(hung.len(), 5, "an object may hold half of the budget");
        assert_eq!(budget.available(), 500);
        let landed = quiet.take(400).await;
        drop(landed);
        drop(hung);
        assert_eq!(budget.available(), 1000);
    }

    /// While a busy object queues attempt after attempt, a quiet object's attempt is served
    /// in its turn, not after the busy object's queue (fair semaphores).
    #[tokio::test]
    async fn a_busy_object_does_not_starve_a_quiet_one() {
        let budget = AppendBudget::new(1000);
        let (busy, quiet) = (budget.for_object(), budget.for_object());
        let held = busy.take(500).await;
        // The busy object has ten more attempts waiting for its share.
        let queued: Vec<_> = (0..10)
            .map(|_| {
                let b = busy.clone();
                tokio::spawn(async move { b.take(500).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let served = tokio::time::timeout(Duration::from_secs(1), quiet.take(500)).await;
        assert!(
            served.is_ok(),
            "the quiet object waited behind the busy one"
        );
        drop(held);
        for q in queued {
            q.abort();
        }
    }
}
