//! Memory as a function of configuration: the most bytes the process can hold, computed from
//! the object files before deploying (`mesh-ingest check` prints it, the deploy/ manifests are
//! sized from it), and the process-wide cap on message bytes that every stream's flow-control
//! window shares.
//!
//! What the process holds, and why each term bounds it:
//! - **messages**: the bodies Pub/Sub delivered and mesh-ingest has not acknowledged. Pub/Sub
//!   stops delivering to a stream at its flow-control window (messages or bytes), and may
//!   overshoot by one message. Everything downstream (decoded rows in the channel, open
//!   batches, rows of appends in flight, dead-letter rows) shares these bodies, not copies
//!   them: payloads and dead-letter data are slices of the received body.
//! - **rows**: per outstanding message, the decoded row's own fields (ids, acknowledgement
//!   handle): `ROW_OVERHEAD_BYTES`. Its attributes are the message's own, moved into the row
//!   (Pub/Sub counts them in the message's size, so in `messages`); the sink writes them as
//!   JSON straight into the Arrow column.
//! - **appends**: per append in flight, its Arrow IPC request, that request's gRPC frame, and
//!   the block the allocator keeps after freeing one of them (glibc reuses blocks of this size
//!   rather than unmapping them): three copies of at most `batch.max_bytes`. In flight are at
//!   most `batch.max_in_flight` appends per table and never more rows than the messages held.
//!   Plus, per worker thread, the payload column it reuses from batch to batch (one batch).
//! - **validation**: the value trees JSON Schema checks build, process-wide: every source
//!   holds a message's bound of its tree (`Decoder::working_set`) from one semaphore of
//!   `VALIDATION_BYTES` while it decodes, and a payload that could need more is rejected
//!   (`too_large`) unbuilt. Flat in the number of objects and of worker threads.
//! - **baseline**: the runtime, the gRPC and HTTP clients, metrics: `BASELINE_BYTES`, measured
//!   on the release build (docs/BENCHMARKS.md).

use super::ObjectSettings;

const MIB: u64 = 1024 * 1024;
/// The process before any message: runtime, clients, TLS, metrics, allocator arenas.
pub const BASELINE_BYTES: u64 = 32 * MIB;
/// A decoded row's own memory besides the body it slices and the attributes it took over
/// (ids, ack handle).
pub const ROW_OVERHEAD_BYTES: u64 = 1024;
/// The working set every JSON Schema check of the process shares (value trees), and the most
/// one payload's check may use.
pub const VALIDATION_BYTES: u64 = 64 * MIB;
/// Copies of an append's rows while it is in flight: the IPC request, its gRPC frame, and the
/// freed block the allocator keeps for the next append.
pub const APPEND_COPIES: u64 = 3;
/// Headroom of the recommended limit over the computed worst case: allocator fragmentation.
const LIMIT_HEADROOM: f64 = 1.25;

/// One object's share of the worst case, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBudget {
    pub object: String,
    pub messages: u64,
    pub rows: u64,
    pub appends: u64,
}

impl ObjectBudget {
    pub fn total(&self) -> u64 {
        self.messages + self.rows + self.appends
    }
}

/// The worst case of the whole process, and what to ask Kubernetes for.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    pub baseline: u64,
    /// The reused payload columns: one batch per worker thread.
    pub column_buffers: u64,
    /// JSON Schema value trees, all objects together (0 when no object has a schema).
    pub validation: u64,
    pub objects: Vec<ObjectBudget>,
    pub total: u64,
    /// Container memory request and limit (bytes), rounded up to 16 MiB.
    pub request: u64,
    pub limit: u64,
}

/// The bytes `object` can hold at most (its streams' windows already share the process cap).
pub fn object_budget(object: &ObjectSettings) -> ObjectBudget {
    let fc = &object.flow_control;
    let streams = object.streams as u64;
    let largest = object.limits.max_message_bytes as u64;
    let by_count = (fc.max_outstanding_messages as u64).saturating_mul(largest);
    let window = (fc.max_outstanding_bytes as u64).min(by_count);
    let messages = streams * (window + largest);
    let outstanding = streams * fc.max_outstanding_messages as u64;
    let rows = outstanding * ROW_OVERHEAD_BYTES;
    // Two lanes (ingest, dead letters), each with its own in-flight budget.
    let slots = 2 * object.batch.max_in_flight as u64 * object.batch.max_bytes as u64;
    let appends = APPEND_COPIES * slots.min(messages);
    ObjectBudget {
        object: object.name.clone(),
        messages,
        rows,
        appends,
    }
}

/// The process's worst case with `worker_threads` runtime threads.
pub fn budget(settings: &[ObjectSettings], worker_threads: u64) -> MemoryBudget {
    let objects: Vec<ObjectBudget> = settings.iter().map(object_budget).collect();
    let largest_batch = settings
        .iter()
        .map(|o| o.batch.max_bytes as u64)
        .max()
        .unwrap_or(0);
    let column_buffers = worker_threads * largest_batch;
    let validation = if settings.iter().any(|o| o.payload_schema.is_some()) {
        VALIDATION_BYTES
    } else {
        0
    };
    let total = BASELINE_BYTES
        + column_buffers
        + validation
        + objects.iter().map(ObjectBudget::total).sum::<u64>();
    let round = |b: f64| ((b / (16.0 * MIB as f64)).ceil() as u64) * 16 * MIB;
    MemoryBudget {
        baseline: BASELINE_BYTES,
        column_buffers,
        validation,
        objects,
        total,
        request: round(total as f64),
        limit: round(total as f64 * LIMIT_HEADROOM),
    }
}

/// Scales every stream's `max_outstanding_bytes` down to its share of `cap` when their sum
/// exceeds it, in proportion to what each object asked for (never below one message of
/// `limits.max_message_bytes`, which Pub/Sub delivers in any case). Returns whether it did.
pub fn share_outstanding_bytes(objects: &mut [ObjectSettings], cap: u64) -> bool {
    let asked: u64 = objects
        .iter()
        .map(|o| o.streams as u64 * o.flow_control.max_outstanding_bytes as u64)
        .sum();
    if asked <= cap {
        return false;
    }
    for o in objects.iter_mut() {
        let share =
            (o.flow_control.max_outstanding_bytes as u128 * cap as u128 / asked as u128) as u64;
        let floor = o.limits.max_message_bytes as u64;
        o.flow_control.max_outstanding_bytes = share.max(floor) as i64;
    }
    true
}

/// `123456789` → `117.7 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn object(name: &str, streams: usize) -> ObjectSettings {
        let yaml = format!(
            "name: {name}\nsubscription: {name}-sub\ningest_table: d.{name}\n\
             dead_letter_table: d.{name}_dl\nenvelope:\n  format: json\n  object_id: id\n\
             streams: {streams}\n"
        );
        ObjectSettings::parse(&yaml, Path::new("o.yaml"), "p").unwrap()
    }

    #[test]
    fn the_cap_is_shared_in_proportion_and_never_below_one_message() {
        let mut objects = vec![object("a", 2), object("b", 1)];
        // Three streams asking 100 MiB each share 30 MiB: 10 MiB each.
        assert!(share_outstanding_bytes(&mut objects, 30 * MIB));
        assert!(
            objects
                .iter()
                .all(|o| o.flow_control.max_outstanding_bytes == 10 * MIB as i64)
        );
        // Under the cap nothing changes.
        assert!(!share_outstanding_bytes(&mut objects, 30 * MIB));
        // A share below one message is raised to one message (4 MiB by default).
        assert!(share_outstanding_bytes(&mut objects, 3 * MIB));
        assert!(
            objects
                .iter()
                .all(|o| o.flow_control.max_outstanding_bytes == 4 * MIB as i64)
        );
    }

    #[test]
    fn the_budget_adds_windows_rows_appends_and_the_baseline() {
        let mut objects = vec![object("a", 2)];
        share_outstanding_bytes(&mut objects, 20 * MIB);
        let b = budget(&objects, 2);
        let o = &b.objects[0];
        // Two streams: a 10 MiB window and one 4 MiB message of overshoot each.
        assert_eq!(o.messages, 2 * 14 * MIB);
        assert_eq!(o.rows, 2 * 2000 * ROW_OVERHEAD_BYTES);
        // Two lanes × 4 appends × 4 MiB = 32 MiB of slots, more than the 28 MiB of messages.
        assert_eq!(o.appends, APPEND_COPIES * 28 * MIB);
        assert_eq!(b.column_buffers, 2 * 4 * MIB);
        assert_eq!(b.total, BASELINE_BYTES + 8 * MIB + o.total());
        assert!(b.request >= b.total && b.limit >= b.request);
        assert_eq!(b.request % (16 * MIB), 0);
    }
}
