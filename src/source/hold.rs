//! What one stream holds: the messages it took from the client and the sink has not yet
//! given back (acknowledged or released). A stream takes the next message only once this
//! one is counted within its hold — its flow-control window plus one message, in bytes, and
//! its window in messages (`memory::stream_hold`).
//!
//! Pub/Sub's flow control alone keeps a stream within that while the stream lives. The hold
//! is for when it does not: the client resumes a broken stream by itself, and the source
//! reopens one after an outage; Pub/Sub then opens a fresh window while the old stream's
//! messages are still held by the sink. With the hold, a stream never holds more than twice
//! its window and one message, which is what the memory budget counts. The price: while a
//! stream waits here, what Pub/Sub already sent it is not read, so its leases are not
//! extended and Pub/Sub may redeliver it (a duplicate, never a loss).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One stream's hold, kept across reopens of the stream.
#[derive(Debug, Clone)]
pub struct Hold {
    bytes: Arc<Semaphore>,
    messages: Arc<Semaphore>,
    max_bytes: u32,
}

/// A message's place in its stream's hold, given back when dropped (with its `Ack`).
#[derive(Debug)]
pub struct Held {
    _bytes: OwnedSemaphorePermit,
    _message: OwnedSemaphorePermit,
}

impl Held {
    /// Gives back all but `bytes` of what this message holds (a compressed body, once its
    /// inflated size is known).
    pub fn keep(&mut self, bytes: usize) {
        let held = self._bytes.num_permits();
        if held > bytes {
            drop(self._bytes.split(held - bytes));
        }
    }
}

impl Hold {
    pub fn new(bytes: u64, messages: u64) -> Self {
        let max_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        Hold {
            bytes: Arc::new(Semaphore::new(max_bytes as usize)),
            messages: Arc::new(Semaphore::new(messages.max(1) as usize)),
            max_bytes,
        }
    }

    /// Waits until a message of `size` bytes fits beside what the stream holds. A message
    /// larger than the whole hold (a body beyond `limits.max_message_bytes`, dead-lettered
    /// as too large) waits for all of it.
    pub async fn take(&self, size: usize) -> Held {
        let size = u32::try_from(size).unwrap_or(u32::MAX).min(self.max_bytes);
        let message = self.messages.clone().acquire_owned().await;
        let bytes = self.bytes.clone().acquire_many_owned(size).await;
        Held {
            _bytes: bytes.expect("never closed"),
            _message: message.expect("never closed"),
        }
    }

    /// Bytes the stream holds now.
    pub fn held_bytes(&self) -> usize {
        self.max_bytes as usize - self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn waits(hold: &Hold, size: usize) -> bool {
        tokio::time::timeout(Duration::from_millis(100), hold.take(size))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_stream_waits_once_its_hold_is_full_and_goes_on_when_given_back() {
        let hold = Hold::new(1000, 3);
        let a = hold.take(600).await;
        assert_eq!(hold.held_bytes(), 600);
        assert!(
            waits(&hold, 500).await,
            "1100 bytes taken from a hold of 1000"
        );
        drop(a);
        let b = hold.take(500).await;
        let _c = hold.take(100).await;
        let _d = hold.take(100).await;
        assert!(
            waits(&hold, 1).await,
            "a fourth message taken from a hold of 3"
        );
        drop(b);
        // A message that took more than it needs gives the rest back.
        let mut e = hold.take(300).await;
        assert_eq!(hold.held_bytes(), 500);
        e.keep(120);
        assert_eq!(hold.held_bytes(), 320);
        e.keep(500);
        assert_eq!(hold.held_bytes(), 320, "keep never takes more");
        drop(e);
        // Larger than the whole hold: it waits for all of it, then goes.
        assert!(waits(&hold, 5000).await);
    }
}
