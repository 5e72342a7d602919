//! Memory as a function of configuration: the most bytes the process can hold, computed from
//! the object files before deploying (`mesh-ingest check` prints it, the deploy/ manifests are
//! sized from it), and how the process-wide budgets are shared by every stream.
//!
//! Every term that holds payload bytes is process-wide, so the worst case is a sum of a few
//! global numbers and does not grow with the number of objects:
//! - **messages** (`application.max_outstanding_bytes`): the bodies Pub/Sub delivered and
//!   mesh-ingest has not acknowledged. Pub/Sub stops delivering to a stream once its window
//!   (`flow_control.max_outstanding_bytes`) is reached, and may overshoot it by one message.
//!   A stream also never takes a message from the client while it holds its window plus one
//!   message (`Hold`, in the source): after the client resumes a broken stream (Pub/Sub then
//!   opens a fresh window while the old messages are still held), what it holds is at most
//!   twice that. So a stream holds at most `2 × (window + max_message_bytes)`, and the
//!   windows are shared so that all streams together stay within the budget. Everything
//!   downstream (rows in the channel, open batches, dead-letter rows) slices these bodies.
//!   A compressed body (`content-encoding`) counts in its stream's hold at its size plus the
//!   most it may inflate to (`max_message_bytes`) before it is inflated, and at its size plus
//!   its inflated size after: the hold bounds inflated bodies too.
//! - **rows** (`application.max_outstanding_messages`): per message held, the decoded row's
//!   own fields (ids, acknowledgement handle): `ROW_OVERHEAD_BYTES`. Windows by count are
//!   shared the same way (Pub/Sub never overshoots a count).
//! - **appends** (`application.max_append_bytes`): the rows of appends in flight, held from
//!   one process-wide budget for each attempt (an object may hold at most half of it, so a
//!   hanging table cannot starve the others). Each costs its Arrow IPC request, that
//!   request's gRPC frame, and the block the allocator keeps after freeing one of them (glibc
//!   reuses blocks of this size rather than unmapping them): three copies. Plus, per worker
//!   thread, the payload column it reuses from batch to batch (one batch).
//! - **validation**: the value trees JSON Schema checks build, process-wide: every source
//!   holds a message's bound of its tree (`Decoder::working_set`) from one semaphore of
//!   `VALIDATION_BYTES` while it decodes, and a payload that could need more is rejected
//!   (`too_large`) unbuilt. Flat in the number of objects and of worker threads. Records of a
//!   schema'd topic that are read into a value tree before being written (Avro JSON, Protocol
//!   Buffers through `prost-reflect`), and the Protocol Buffer wire reader's bookkeeping, hold
//!   their bound from the same semaphore (`Decoder::record_working_set`).
//! - **decompressors**: per worker thread, the gzip and zstd decompressors it keeps between
//!   compressed bodies (`decompressor_bytes`: the zstd window, at most `max_message_bytes`
//!   rounded up to a power of two, and the state around it); with a topic schema, also the
//!   scratch buffer the record renderer keeps (`RENDER_SCRATCH_BYTES`).
//! - **baseline**: the runtime, the gRPC and HTTP clients, metrics: `BASELINE_BYTES`, measured
//!   on the release build (docs/BENCHMARKS.md).
//!
//! The windows have floors (`WINDOW_FLOOR_BYTES`, `WINDOW_FLOOR_MESSAGES`): with very many
//! streams their sum can pass the budget, and the total then says so.

use super::{ApplicationSettings, ObjectSettings};

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
/// The smallest byte window a stream is given, whatever its share.
pub const WINDOW_FLOOR_BYTES: u64 = 64 * 1024;
/// The smallest message window a stream is given, whatever its share.
pub const WINDOW_FLOOR_MESSAGES: u64 = 16;
/// A decompressor's own state beside its window (zstd's block buffer and context; gzip's
/// whole state fits in it).
pub const DECOMPRESSOR_OVERHEAD_BYTES: u64 = 256 * 1024;
/// What a worker thread's record renderer keeps between records of a schema'd topic: its
/// scratch buffer, up to `envelope::record::RENDER_SCRATCH_BYTES` (a unit test in `source`
/// holds the two equal).
pub const RENDER_SCRATCH_BYTES: u64 = 64 * 1024;
/// Headroom of the recommended limit over the computed worst case: allocator fragmentation.
const LIMIT_HEADROOM: f64 = 1.25;

/// What one stream of `object` may take from the client before it waits for the sink to give
/// some back: its window and one message (Pub/Sub's overshoot), in bytes and in messages.
pub fn stream_hold(object: &ObjectSettings) -> (u64, u64) {
    let fc = &object.flow_control;
    (
        fc.max_outstanding_bytes as u64 + object.limits.max_message_bytes as u64,
        fc.max_outstanding_messages as u64,
    )
}

/// The largest zstd window a body of `max_message_bytes` may use, as a power of two: the
/// smallest that holds a whole body. A frame asking for more is refused, not allocated.
pub fn zstd_window_log(max_message_bytes: usize) -> u32 {
    let log = usize::BITS - max_message_bytes.saturating_sub(1).leading_zeros();
    log.clamp(10, 27)
}

/// What one worker thread's decompressors keep between compressed bodies of at most
/// `max_message_bytes`: the zstd window and the state around it.
pub fn decompressor_bytes(max_message_bytes: usize) -> u64 {
    (1u64 << zstd_window_log(max_message_bytes)) + DECOMPRESSOR_OVERHEAD_BYTES
}

/// One object's share of the process-wide budgets, in bytes: what its streams may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBudget {
    pub object: String,
    pub messages: u64,
    pub rows: u64,
}

/// The worst case of the whole process, and what to ask Kubernetes for.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    pub baseline: u64,
    /// The reused payload columns: one batch per worker thread.
    pub column_buffers: u64,
    /// JSON Schema value trees and record value trees, all objects together (0 when no object
    /// has a JSON Schema or a topic schema).
    pub validation: u64,
    /// The decompressors each worker thread keeps for compressed bodies.
    pub decompressors: u64,
    /// Message bodies held, all streams together.
    pub messages: u64,
    /// Decoded rows' own fields, all streams together.
    pub rows: u64,
    /// Appends in flight, all tables together.
    pub appends: u64,
    pub objects: Vec<ObjectBudget>,
    pub total: u64,
    /// Container memory request and limit (bytes), rounded up to 16 MiB.
    pub request: u64,
    pub limit: u64,
}

/// The most `object`'s streams may hold: twice each stream's hold (see the module docs).
pub fn object_budget(object: &ObjectSettings) -> ObjectBudget {
    let streams = object.streams as u64;
    let (bytes, messages) = stream_hold(object);
    ObjectBudget {
        object: object.name.clone(),
        messages: streams * 2 * bytes,
        rows: streams * 2 * messages * ROW_OVERHEAD_BYTES,
    }
}

/// The process's worst case with `worker_threads` runtime threads.
pub fn budget(
    settings: &[ObjectSettings],
    app: &ApplicationSettings,
    worker_threads: u64,
) -> MemoryBudget {
    let objects: Vec<ObjectBudget> = settings.iter().map(object_budget).collect();
    let largest_batch = settings
        .iter()
        .map(|o| o.batch.max_bytes as u64)
        .max()
        .unwrap_or(0);
    let column_buffers = worker_threads * largest_batch;
    let decompressors = worker_threads
        * settings
            .iter()
            .map(|o| {
                let scratch = if o.topic_schema.is_some() {
                    RENDER_SCRATCH_BYTES
                } else {
                    0
                };
                decompressor_bytes(o.limits.max_message_bytes) + scratch
            })
            .max()
            .unwrap_or(0);
    // JSON Schema checks, and the value trees of records read before they are written (Avro
    // JSON, Protocol Buffers) draw on the same working set.
    let validation = if settings
        .iter()
        .any(|o| o.payload_schema.is_some() || o.topic_schema.is_some())
    {
        VALIDATION_BYTES
    } else {
        0
    };
    let messages: u64 = objects.iter().map(|o| o.messages).sum();
    let rows: u64 = objects.iter().map(|o| o.rows).sum();
    // An append's rows are messages held: never more than those.
    let appends = APPEND_COPIES * app.max_append_bytes.min(messages);
    let total =
        BASELINE_BYTES + column_buffers + decompressors + validation + messages + rows + appends;
    let round = |b: f64| ((b / (16.0 * MIB as f64)).ceil() as u64) * 16 * MIB;
    MemoryBudget {
        baseline: BASELINE_BYTES,
        column_buffers,
        decompressors,
        validation,
        messages,
        rows,
        appends,
        objects,
        total,
        request: round(total as f64),
        limit: round(total as f64 * LIMIT_HEADROOM),
    }
}

/// Shares the process-wide budgets among every stream: when the streams' holds (see
/// `stream_hold`, counted twice) add up to more than `application.max_outstanding_bytes`
/// or `…_messages`, each window is scaled down to its share, in proportion to what its
/// object asked for, and never below the floors. Returns whether any window changed.
pub fn share_windows(objects: &mut [ObjectSettings], app: &ApplicationSettings) -> bool {
    let asked_bytes: u64 = objects
        .iter()
        .map(|o| o.streams as u64 * 2 * stream_hold(o).0)
        .sum();
    let asked_messages: u64 = objects
        .iter()
        .map(|o| o.streams as u64 * 2 * stream_hold(o).1)
        .sum();
    let mut changed = false;
    for o in objects.iter_mut() {
        let (hold, count) = stream_hold(o);
        let m = o.limits.max_message_bytes as u64;
        if asked_bytes > app.max_outstanding_bytes {
            let share = scale(hold, app.max_outstanding_bytes, asked_bytes);
            let window = share.saturating_sub(m).max(WINDOW_FLOOR_BYTES);
            o.flow_control.max_outstanding_bytes = window as i64;
            changed = true;
        }
        if asked_messages > app.max_outstanding_messages {
            let share = scale(count, app.max_outstanding_messages, asked_messages);
            o.flow_control.max_outstanding_messages = share.max(WINDOW_FLOOR_MESSAGES) as i64;
            changed = true;
        }
    }
    changed
}

/// `part`'s share of `budget` when everything asked adds up to `asked`.
fn scale(part: u64, budget: u64, asked: u64) -> u64 {
    (part as u128 * budget as u128 / asked as u128) as u64
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

    fn app() -> ApplicationSettings {
        ApplicationSettings {
            host: "h".into(),
            port: 1,
            shutdown_deadline_secs: 1,
            objects_dir: "objects".into(),
            max_outstanding_bytes: super::super::default_max_outstanding_bytes(),
            max_outstanding_messages: super::super::default_max_outstanding_messages(),
            max_append_bytes: super::super::default_max_append_bytes(),
            stall_timeout_secs: 300,
        }
    }

    fn objects(n: usize) -> Vec<ObjectSettings> {
        (0..n).map(|i| object(&format!("o{i}"), 1)).collect()
    }

    #[test]
    fn windows_share_the_budget_counting_overshoot_and_resumes() {
        let app = app();
        let mut objects = vec![object("a", 2), object("b", 1)];
        assert!(share_windows(&mut objects, &app));
        let held: u64 = objects.iter().map(|o| object_budget(o).messages).sum();
        // Three streams, each holding at most twice its window and one message.
        assert!(held <= app.max_outstanding_bytes, "{held}");
        assert!(
            held > app.max_outstanding_bytes - 3 * 2 * 8,
            "shares left unused: {held}"
        );
        let counted: u64 = objects.iter().map(|o| object_budget(o).rows).sum();
        assert!(counted <= app.max_outstanding_messages * ROW_OVERHEAD_BYTES);
        // Shared again, nothing changes.
        assert!(!share_windows(&mut objects, &app));
    }

    #[test]
    fn a_topic_schema_counts_the_shared_decoding_working_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.avsc"),
            r#"{"type": "record", "name": "R", "fields": []}"#,
        )
        .unwrap();
        let yaml = "name: rec\nsubscription: r-sub\ningest_table: d.r\ndead_letter_table: d.r_dl\n\
                    envelope: {format: json, object_id: id}\n\
                    topic_schema: {type: avro, file: r.avsc, encoding: json}\n";
        let with = ObjectSettings::parse(yaml, &dir.path().join("r.yaml"), "p").unwrap();
        assert_eq!(budget(&[with], &app(), 1).validation, VALIDATION_BYTES);
        assert_eq!(budget(&objects(1), &app(), 1).validation, 0);
    }

    #[test]
    fn a_zstd_window_holds_a_whole_body_and_no_more() {
        assert_eq!(zstd_window_log(1 << 20), 20);
        assert_eq!(zstd_window_log((1 << 20) + 1), 21);
        assert_eq!(zstd_window_log(1), 10);
        assert_eq!(
            decompressor_bytes(1 << 20),
            MIB + DECOMPRESSOR_OVERHEAD_BYTES
        );
    }

    #[test]
    fn a_share_below_the_floor_is_raised_to_it() {
        let mut app = app();
        app.max_outstanding_bytes = MIB;
        app.max_outstanding_messages = 10;
        let mut objects = objects(3);
        assert!(share_windows(&mut objects, &app));
        for o in &objects {
            assert_eq!(
                o.flow_control.max_outstanding_bytes as u64,
                WINDOW_FLOOR_BYTES
            );
            assert_eq!(
                o.flow_control.max_outstanding_messages as u64,
                WINDOW_FLOOR_MESSAGES
            );
        }
    }

    #[test]
    fn the_worst_case_is_flat_in_the_number_of_objects() {
        let app = app();
        let total = |n: usize| {
            let mut o = objects(n);
            share_windows(&mut o, &app);
            budget(&o, &app, 2).total as f64
        };
        let one = total(1);
        for n in [10, 40] {
            let ratio = total(n) / one;
            assert!((0.9..=1.1).contains(&ratio), "{n} objects: {ratio}");
        }
    }

    #[test]
    fn the_budget_adds_messages_rows_appends_and_the_baseline() {
        let app = app();
        let mut objects = vec![object("a", 2)];
        share_windows(&mut objects, &app);
        let b = budget(&objects, &app, 2);
        let (hold, count) = stream_hold(&objects[0]);
        assert_eq!(b.messages, 2 * 2 * hold);
        assert_eq!(b.rows, 2 * 2 * count * ROW_OVERHEAD_BYTES);
        assert_eq!(b.appends, APPEND_COPIES * app.max_append_bytes);
        assert_eq!(b.column_buffers, 2 * 4 * MIB);
        assert_eq!(b.decompressors, 2 * (MIB + DECOMPRESSOR_OVERHEAD_BYTES));
        assert_eq!(
            b.total,
            BASELINE_BYTES + 8 * MIB + b.decompressors + b.messages + b.rows + b.appends
        );
        assert!(b.request >= b.total && b.limit >= b.request);
        assert_eq!(b.request % (16 * MIB), 0);
    }
}
