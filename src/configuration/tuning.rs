//! How one object's messages move: batching, Pub/Sub flow control and size limits. Each
//! struct checks its own ranges; errors name the field as written in the object file.

use super::FieldError;
use crate::tables::MAX_APPEND_BYTES;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::ops::RangeInclusive;

/// `field` must lie in `range`; `why` (may be empty) says what a value outside would do.
fn within<T: PartialOrd + Display>(
    field: &str,
    value: T,
    range: RangeInclusive<T>,
    why: &str,
) -> Result<(), FieldError> {
    if range.contains(&value) {
        return Ok(());
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    Err(FieldError::new(
        field,
        format!("must be between {} and {}{why}", range.start(), range.end()),
    ))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    /// A batch is flushed once it holds this many rows …
    pub max_rows: usize,
    /// … or this many bytes (capped below the 10 MB AppendRows limit) …
    pub max_bytes: usize,
    /// … or its oldest row has waited this long.
    pub max_delay_ms: u64,
    /// Appends in flight at once per object; beyond it the pipeline backs up into Pub/Sub flow
    /// control instead of into memory.
    pub max_in_flight: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_rows: 1000,
            // 4 MiB: an append's Arrow request and its gRPC frame are the memory an append in
            // flight adds (docs/BENCHMARKS.md, "Memory"); larger appends gain no throughput.
            max_bytes: 4 * 1024 * 1024,
            max_delay_ms: 500,
            max_in_flight: 4,
        }
    }
}

impl BatchSettings {
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        within("batch.max_rows", self.max_rows, 1..=50_000, "")?;
        within(
            "batch.max_bytes",
            self.max_bytes,
            1024..=MAX_APPEND_BYTES,
            "the AppendRows request limit is 10 MB",
        )?;
        within("batch.max_delay_ms", self.max_delay_ms, 1..=60_000, "")?;
        within("batch.max_in_flight", self.max_in_flight, 1..=64, "")
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowControlSettings {
    /// Per stream: Pub/Sub stops delivering while this many messages are unacknowledged.
    pub max_outstanding_messages: i64,
    /// Per stream: … or this many bytes.
    pub max_outstanding_bytes: i64,
    /// Decoded rows waiting for the batcher, across the object's streams; at least (and by
    /// default) `streams × max_outstanding_messages`. The streaming-pull client reads (and
    /// leases) what Pub/Sub sent only when the source asks for the next message, so a source
    /// waiting on a full channel would leave messages unread until their leases expire. With
    /// room for everything Pub/Sub may have outstanding it never waits: Pub/Sub's flow control
    /// is the backpressure.
    pub channel_capacity: Option<usize>,
    /// Lease the client asks for (and keeps extending) on each message, 10–600 s. It is also
    /// how soon Pub/Sub redelivers messages that were on their way to an instance that stopped
    /// before reading them.
    pub ack_deadline_secs: u64,
    /// How long a message may be held (its lease extended) before the client gives it up and
    /// Pub/Sub redelivers it. Held messages are ones not yet written: while a table is
    /// halted, every message waits. The default, 7 days, is Pub/Sub's longest retention, so
    /// an outage never turns into redeliveries (which would raise delivery attempts and, with
    /// a dead-letter policy, park valid events). The cost: a process that is alive but stuck
    /// keeps its messages until it is restarted.
    pub max_lease_secs: u64,
}

impl Default for FlowControlSettings {
    fn default() -> Self {
        FlowControlSettings {
            max_outstanding_messages: 2000,
            max_outstanding_bytes: 100 * 1024 * 1024,
            channel_capacity: None,
            ack_deadline_secs: 60,
            max_lease_secs: 7 * 24 * 3600,
        }
    }
}

impl FlowControlSettings {
    /// Checks the ranges and resolves `channel_capacity` for `streams` streams.
    pub(super) fn resolve(&mut self, streams: usize) -> Result<(), FieldError> {
        self.validate()?;
        let needed = (self.max_outstanding_messages as usize).saturating_mul(streams);
        match self.channel_capacity {
            None => self.channel_capacity = Some(needed),
            Some(c) if c < needed => {
                return Err(FieldError::new(
                    "flow_control.channel_capacity",
                    format!(
                        "{c} is less than streams × max_outstanding_messages ({needed}): a \
                         full channel would leave messages Pub/Sub already sent unread until \
                         their leases expire; omit it or raise it"
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), FieldError> {
        let unbounded = "must be positive: an unbounded subscriber can exhaust memory";
        if self.max_outstanding_messages <= 0 {
            return Err(FieldError::new(
                "flow_control.max_outstanding_messages",
                unbounded,
            ));
        }
        if self.max_outstanding_bytes <= 0 {
            return Err(FieldError::new(
                "flow_control.max_outstanding_bytes",
                unbounded,
            ));
        }
        within(
            "flow_control.ack_deadline_secs",
            self.ack_deadline_secs,
            10..=600,
            "Pub/Sub's limits",
        )?;
        within(
            "flow_control.max_lease_secs",
            self.max_lease_secs,
            self.ack_deadline_secs..=7 * 24 * 3600,
            "from ack_deadline_secs to Pub/Sub's 7-day retention",
        )
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Larger bodies are dead-lettered as `too_large` (their first bytes are kept). 1 MiB by
    /// default, like Kafka's default message size: every stream may hold one such message
    /// beyond its window (Pub/Sub's overshoot), so it sets the memory each stream costs.
    pub max_message_bytes: usize,
    /// How much of a rejected body the dead-letter row keeps.
    pub max_dead_letter_data_bytes: usize,
    /// Deeper JSON is dead-lettered as `too_deep`; at most 128.
    pub max_json_depth: usize,
    /// Event times further than this ahead of the clock are rejected as `invalid_event_time`.
    pub max_future_event_time_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 1024 * 1024,
            max_dead_letter_data_bytes: 1024 * 1024,
            max_json_depth: 64,
            max_future_event_time_secs: 24 * 3600,
        }
    }
}

impl LimitSettings {
    /// `batch` bounds the message size: a message larger than a batch could never be appended.
    pub(super) fn validate(&self, batch: &BatchSettings) -> Result<(), FieldError> {
        within(
            "limits.max_message_bytes",
            self.max_message_bytes,
            1..=MAX_APPEND_BYTES,
            "",
        )?;
        if self.max_message_bytes > batch.max_bytes {
            return Err(FieldError::new(
                "limits.max_message_bytes",
                format!(
                    "{} exceeds batch.max_bytes ({}): such a message could never be appended",
                    self.max_message_bytes, batch.max_bytes
                ),
            ));
        }
        within(
            "limits.max_dead_letter_data_bytes",
            self.max_dead_letter_data_bytes,
            1..=4 * 1024 * 1024,
            "",
        )?;
        if self.max_future_event_time_secs > 10 * 365 * 24 * 3600 {
            return Err(FieldError::new(
                "limits.max_future_event_time_secs",
                "must be at most ten years (315360000)",
            ));
        }
        within("limits.max_json_depth", self.max_json_depth, 1..=128, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_field_and_the_bounds() {
        let b = BatchSettings {
            max_rows: 0,
            ..BatchSettings::default()
        };
        let e = b.validate().unwrap_err();
        assert_eq!(e.field, "batch.max_rows");
        assert_eq!(e.message, "must be between 1 and 50000");
        let l = LimitSettings {
            max_message_bytes: 9 * 1024 * 1024,
            ..LimitSettings::default()
        };
        let e = l.validate(&BatchSettings::default()).unwrap_err();
        assert!(
            e.message.contains("exceeds batch.max_bytes"),
            "{}",
            e.message
        );
    }
}
