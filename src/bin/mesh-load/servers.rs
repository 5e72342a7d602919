//! The two peers of the load harness, on loopback gRPC: a Pub/Sub Subscriber that serves
//! pre-generated envelopes over StreamingPull as fast as the client acknowledges them and counts
//! every ack per message, and a BigQuery Storage Write server that accepts AppendRows with Arrow
//! rows, counts rows and bytes, and can add latency, stall, fail a fraction of appends with a
//! chosen status, or report row errors.

use crate::arrow_check::check_schema;
use crate::faults::Schedule;
use crate::proto::*;
use bytes::Bytes;
use mesh_ingest::tables::{DEAD_LETTER_COLUMNS, INGEST_COLUMNS};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::body::Body;

/// A gRPC handler for one method; the codec's type names its response and request.
fn codec<E, D>() -> tonic::server::Grpc<tonic_prost::ProstCodec<E, D>>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
}

/// The tower plumbing every hand-written gRPC service here shares; `$body` routes by path
/// and evaluates to the HTTP response.
macro_rules! grpc_service {
    ($service:ident, $name:literal, |$state:ident, $req:ident| $body:expr) => {
        impl tonic::server::NamedService for $service {
            const NAME: &'static str = $name;
        }

        impl tower_service::Service<http::Request<Body>> for $service {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = BoxFuture<Result<Self::Response, Infallible>>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, $req: http::Request<Body>) -> Self::Future {
                let $state = self.0.clone();
                Box::pin(async move { $body })
            }
        }
    };
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Per message: how often it was acknowledged, when it was last served, until when it is
/// leased and how often it was delivered. Like Pub/Sub, a lease the client neither extends
/// nor settles expires, and the message is delivered again with its delivery attempt raised.
pub struct PubsubState {
    bodies: Vec<Bytes>,
    /// Every n-th message (1-based) has a body that is not JSON (0: none).
    bad_every: usize,
    total: usize,
    next: AtomicUsize,
    redeliver: Mutex<VecDeque<usize>>,
    ack_counts: Vec<AtomicU8>,
    served_at_us: Vec<AtomicU64>,
    /// Lease end, µs since `start` (0: not leased); the stream holding it, plus one.
    lease_until_us: Vec<AtomicU64>,
    holder: Vec<AtomicUsize>,
    attempts: Vec<AtomicU32>,
    /// The lease a delivery gets before the client extends it (StreamingPull's
    /// `stream_ack_deadline_seconds`).
    ack_deadline_us: AtomicU64,
    pub expired_leases: AtomicUsize,
    pub acked: AtomicUsize,
    pub duplicate_acks: AtomicUsize,
    pub nacks: AtomicUsize,
    pub served: AtomicUsize,
    streams: Mutex<Vec<Arc<StreamState>>>,
    latencies_us: Mutex<Vec<u64>>,
    start: Instant,
    /// Serve at most this many fresh messages per second (None: as fast as they are acked).
    rate: Option<f64>,
    pub all_acked: Notify,
}

struct StreamState {
    outstanding: AtomicI64,
    outstanding_bytes: AtomicI64,
    wake: Notify,
}

impl PubsubState {
    /// `bodies` are cycled through to make `total` messages (message ids are unique).
    pub fn new(bodies: Vec<Bytes>, bad_every: usize, total: usize, rate: Option<f64>) -> Arc<Self> {
        Arc::new(PubsubState {
            bodies,
            bad_every,
            total,
            next: AtomicUsize::new(0),
            redeliver: Mutex::new(VecDeque::new()),
            ack_counts: (0..total).map(|_| AtomicU8::new(0)).collect(),
            served_at_us: (0..total).map(|_| AtomicU64::new(0)).collect(),
            lease_until_us: (0..total).map(|_| AtomicU64::new(0)).collect(),
            holder: (0..total).map(|_| AtomicUsize::new(0)).collect(),
            attempts: (0..total).map(|_| AtomicU32::new(0)).collect(),
            ack_deadline_us: AtomicU64::new(60_000_000),
            expired_leases: AtomicUsize::new(0),
            acked: AtomicUsize::new(0),
            duplicate_acks: AtomicUsize::new(0),
            nacks: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            streams: Mutex::new(Vec::new()),
            latencies_us: Mutex::new(Vec::with_capacity(total)),
            start: Instant::now(),
            rate,
            all_acked: Notify::new(),
        })
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Messages acknowledged more than once, and never.
    pub fn ack_anomalies(&self) -> (usize, usize) {
        let mut more = 0;
        let mut never = 0;
        for c in &self.ack_counts {
            match c.load(Ordering::Relaxed) {
                0 => never += 1,
                1 => {}
                _ => more += 1,
            }
        }
        (more, never)
    }

    /// How many messages the run serves.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether message `index` is served with a body that is not JSON.
    pub fn is_bad(&self, index: usize) -> bool {
        self.bad_every > 0 && (index + 1).is_multiple_of(self.bad_every)
    }

    /// When message `index` was last served.
    pub fn served_at(&self, index: usize) -> Instant {
        self.start + Duration::from_micros(self.served_at_us[index].load(Ordering::Relaxed))
    }

    /// The highest delivery attempt of any message.
    pub fn max_delivery_attempt(&self) -> u32 {
        self.attempts
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Expires leases the client let lapse, every 200 ms, until the process ends: the
    /// message goes back to the queue and its next delivery has a higher attempt.
    pub async fn expire_leases(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.now_us();
            let served = self.next.load(Ordering::Relaxed).min(self.total);
            for i in 0..served {
                let until = self.lease_until_us[i].load(Ordering::Relaxed);
                if until == 0 || until > now || self.ack_counts[i].load(Ordering::Relaxed) > 0 {
                    continue;
                }
                if self.lease_until_us[i]
                    .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    self.expired_leases.fetch_add(1, Ordering::Relaxed);
                    self.redeliver.lock().unwrap().push_back(i);
                    let holder = self.holder[i].swap(0, Ordering::Relaxed);
                    if holder > 0 {
                        self.release(holder - 1, i);
                    }
                }
            }
        }
    }

    /// Served → acknowledged latencies (first ack of each message), microseconds, sorted.
    pub fn latencies(&self) -> Vec<u64> {
        let mut l = self.latencies_us.lock().unwrap().clone();
        l.sort_unstable();
        l
    }

    fn take(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        {
            let mut q = self.redeliver.lock().unwrap();
            while out.len() < n {
                match q.pop_front() {
                    Some(i) => out.push(i),
                    None => break,
                }
            }
        }
        let limit = match self.rate {
            Some(r) => ((self.start.elapsed().as_secs_f64() * r) as usize).min(self.total),
            None => self.total,
        };
        while out.len() < n {
            if self.next.load(Ordering::Relaxed) >= limit {
                break;
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.total {
                self.next.store(self.total, Ordering::Relaxed);
                break;
            }
            out.push(i);
        }
        out
    }

    fn ack_id(stream: usize, index: usize) -> String {
        format!("{stream}:{index}")
    }

    fn parse_ack_id(id: &str) -> Option<(usize, usize)> {
        let (s, i) = id.split_once(':')?;
        Some((s.parse().ok()?, i.parse().ok()?))
    }

    /// Pub/Sub's size of message `index` for flow control: its body (attributes are few).
    fn size(&self, index: usize) -> i64 {
        self.bodies[index % self.bodies.len()].len() as i64
    }

    fn release(&self, stream: usize, index: usize) {
        if let Some(s) = self.streams.lock().unwrap().get(stream) {
            s.outstanding.fetch_sub(1, Ordering::Relaxed);
            s.outstanding_bytes
                .fetch_sub(self.size(index), Ordering::Relaxed);
            s.wake.notify_one();
        }
    }

    fn ack(&self, ids: &[String]) {
        let now = self.now_us();
        let mut samples = Vec::with_capacity(ids.len());
        for id in ids {
            let Some((stream, index)) = Self::parse_ack_id(id) else {
                continue;
            };
            if index >= self.total {
                continue;
            }
            self.lease_until_us[index].store(0, Ordering::Relaxed);
            if self.ack_counts[index].fetch_add(1, Ordering::Relaxed) == 0 {
                samples.push(now.saturating_sub(self.served_at_us[index].load(Ordering::Relaxed)));
                if self.acked.fetch_add(1, Ordering::Relaxed) + 1 == self.total {
                    self.all_acked.notify_waiters();
                }
            } else {
                self.duplicate_acks.fetch_add(1, Ordering::Relaxed);
            }
            // An ack of a message whose lease expired releases nothing: expiry did.
            if self.holder[index].swap(0, Ordering::Relaxed) > 0 {
                self.release(stream, index);
            }
        }
        self.latencies_us.lock().unwrap().extend(samples);
    }

    fn modify(&self, ids: &[String], seconds: i32) {
        let now = self.now_us();
        for id in ids {
            let Some((stream, index)) = Self::parse_ack_id(id) else {
                continue;
            };
            if index >= self.total {
                continue;
            }
            if seconds > 0 {
                // A lease extension, for a message still leased.
                let until = &self.lease_until_us[index];
                let _ = until.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    (u != 0).then_some(now + seconds as u64 * 1_000_000)
                });
            } else if self.holder[index].swap(0, Ordering::Relaxed) > 0 {
                self.lease_until_us[index].store(0, Ordering::Relaxed);
                self.nacks.fetch_add(1, Ordering::Relaxed);
                self.redeliver.lock().unwrap().push_back(index);
                self.release(stream, index);
            }
        }
    }

    fn message(&self, stream: usize, index: usize) -> ReceivedMessage {
        let now = self.now_us();
        self.served_at_us[index].store(now, Ordering::Relaxed);
        let lease = self.ack_deadline_us.load(Ordering::Relaxed);
        self.lease_until_us[index].store(now + lease, Ordering::Relaxed);
        self.holder[index].store(stream + 1, Ordering::Relaxed);
        let attempt = self.attempts[index].fetch_add(1, Ordering::Relaxed) + 1;
        let data = if self.is_bad(index) {
            Bytes::from(format!("not json {index}"))
        } else {
            self.bodies[index % self.bodies.len()].clone()
        };
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ReceivedMessage {
            ack_id: Self::ack_id(stream, index),
            message: Some(PubsubMessage {
                data,
                attributes: Default::default(),
                message_id: index.to_string(),
                publish_time: Some(Timestamp {
                    seconds: wall.as_secs() as i64,
                    nanos: wall.subsec_nanos() as i32,
                }),
                ordering_key: String::new(),
            }),
            // As on a subscription with a dead-letter policy (deploy/terraform's).
            delivery_attempt: attempt as i32,
        }
    }

    /// Serves one StreamingPull stream: keeps at most `(messages, bytes)` outstanding in the
    /// client's hands, as Pub/Sub's flow control does (one message even if larger).
    async fn serve_stream(
        self: Arc<Self>,
        stream: usize,
        (max_outstanding, max_bytes): (i64, i64),
        tx: mpsc::Sender<Result<StreamingPullResponse, Status>>,
    ) {
        let state = self.streams.lock().unwrap()[stream].clone();
        // Like Pub/Sub, keep each response to a few MB (clients cap what they receive;
        // gRPC's default is 4 MiB).
        let largest = self.bodies.iter().map(Bytes::len).max().unwrap_or(0);
        let per_response = (3 * 1024 * 1024 / (largest + 64)).clamp(1, 500);
        loop {
            let room = max_outstanding - state.outstanding.load(Ordering::Relaxed);
            let mut batch = if room > 0 {
                self.take((room as usize).min(per_response))
            } else {
                Vec::new()
            };
            let mut bytes = state.outstanding_bytes.load(Ordering::Relaxed);
            let fits = batch
                .iter()
                .position(|&i| {
                    let over = bytes > 0 && bytes + self.size(i) > max_bytes;
                    bytes += self.size(i);
                    over
                })
                .unwrap_or(batch.len());
            if fits < batch.len() {
                let mut q = self.redeliver.lock().unwrap();
                for &i in batch[fits..].iter().rev() {
                    q.push_front(i);
                }
                batch.truncate(fits);
            }
            let batch_bytes: i64 = batch.iter().map(|&i| self.size(i)).sum();
            state
                .outstanding_bytes
                .fetch_add(batch_bytes, Ordering::Relaxed);
            if batch.is_empty() {
                // Nothing to send (flow control, or all served): wait for an ack or a nack.
                tokio::select! {
                    _ = state.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = tx.closed() => return,
                }
                continue;
            }
            state
                .outstanding
                .fetch_add(batch.len() as i64, Ordering::Relaxed);
            self.served.fetch_add(batch.len(), Ordering::Relaxed);
            let response = StreamingPullResponse {
                received_messages: batch.iter().map(|&i| self.message(stream, i)).collect(),
            };
            if tx.send(Ok(response)).await.is_err() {
                // The client went away: whatever it held comes back.
                let mut q = self.redeliver.lock().unwrap();
                for i in batch {
                    self.holder[i].store(0, Ordering::Relaxed);
                    self.lease_until_us[i].store(0, Ordering::Relaxed);
                    if self.ack_counts[i].load(Ordering::Relaxed) == 0 {
                        q.push_back(i);
                    }
                }
                return;
            }
        }
    }
}

/// `google.pubsub.v1.Subscriber`: StreamingPull, Acknowledge, ModifyAckDeadline.
#[derive(Clone)]
pub struct SubscriberService(pub Arc<PubsubState>);

grpc_service!(
    SubscriberService,
    "google.pubsub.v1.Subscriber",
    |state, req| {
        Ok(match req.uri().path() {
            "/google.pubsub.v1.Subscriber/StreamingPull" => {
                let svc = tower::service_fn(
                    move |request: tonic::Request<tonic::Streaming<StreamingPullRequest>>| {
                        let state = state.clone();
                        async move {
                            let mut incoming = request.into_inner();
                            let first = incoming
                                .message()
                                .await?
                                .ok_or_else(|| Status::invalid_argument("no initial request"))?;
                            if first.stream_ack_deadline_seconds > 0 {
                                state.ack_deadline_us.store(
                                    first.stream_ack_deadline_seconds as u64 * 1_000_000,
                                    Ordering::Relaxed,
                                );
                            }
                            let max = if first.max_outstanding_messages > 0 {
                                first.max_outstanding_messages
                            } else {
                                1000
                            };
                            let stream = {
                                let mut streams = state.streams.lock().unwrap();
                                streams.push(Arc::new(StreamState {
                                    outstanding: AtomicI64::new(0),
                                    outstanding_bytes: AtomicI64::new(0),
                                    wake: Notify::new(),
                                }));
                                streams.len() - 1
                            };
                            let max_bytes = if first.max_outstanding_bytes > 0 {
                                first.max_outstanding_bytes
                            } else {
                                i64::MAX
                            };
                            let (tx, rx) = mpsc::channel(4);
                            tokio::spawn(state.clone().serve_stream(stream, (max, max_bytes), tx));
                            // Acks / nacks / keepalives sent on the stream itself.
                            let reader = state.clone();
                            tokio::spawn(async move {
                                while let Some(Ok(r)) = incoming.next().await {
                                    reader.ack(&r.ack_ids);
                                    for (id, s) in r
                                        .modify_deadline_ack_ids
                                        .iter()
                                        .zip(&r.modify_deadline_seconds)
                                    {
                                        reader.modify(std::slice::from_ref(id), *s);
                                    }
                                }
                            });
                            Ok::<_, Status>(tonic::Response::new(ReceiverStream::new(rx)))
                        }
                    },
                );
                codec().streaming(svc, req).await
            }
            "/google.pubsub.v1.Subscriber/Acknowledge" => {
                let svc = tower::service_fn(move |r: tonic::Request<AcknowledgeRequest>| {
                    state.ack(&r.get_ref().ack_ids);
                    async { Ok::<_, Status>(tonic::Response::new(Empty {})) }
                });
                codec().unary(svc, req).await
            }
            "/google.pubsub.v1.Subscriber/ModifyAckDeadline" => {
                let svc = tower::service_fn(move |r: tonic::Request<ModifyAckDeadlineRequest>| {
                    let m = r.get_ref();
                    state.modify(&m.ack_ids, m.ack_deadline_seconds);
                    async { Ok::<_, Status>(tonic::Response::new(Empty {})) }
                });
                codec().unary(svc, req).await
            }
            other => {
                Status::unimplemented(format!("{other} is not served by the harness")).into_http()
            }
        })
    }
);

/// What the Storage Write server does to appends.
#[derive(Clone, Debug, Default)]
pub struct WriteFaults {
    /// Added to every append.
    pub latency: Duration,
    /// Fraction of appends answered with `fail_code` instead (0.0–1.0).
    pub fail_fraction: f64,
    /// gRPC code for injected failures (14 UNAVAILABLE, 8 RESOURCE_EXHAUSTED, …).
    pub fail_code: i32,
    /// Every n-th append reports a row error for its first row (0: never).
    pub row_error_every: u64,
}

pub struct WriteState {
    pub faults: Mutex<WriteFaults>,
    /// Windows of injected failures per table.
    pub schedule: Arc<Schedule>,
    /// Appends answered from a fault window.
    pub fault_appends: AtomicU64,
    /// Message ids of the dead-letter rows that landed, and when.
    pub dead_letters: Mutex<Vec<(usize, Instant)>>,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub appends: AtomicU64,
    pub failed_appends: AtomicU64,
    pub row_errors: AtomicU64,
    /// Rows appended to a table whose name ends in `dead_letter` (also counted in `rows`).
    pub dead_letter_rows: AtomicU64,
    /// While set and in the future, appends wait until then (a stalled sink).
    pub stall_until: Mutex<Option<Instant>>,
    /// Appends refused because their connection's Arrow schema breaks BigQuery's documented
    /// mapping (`arrow_check`).
    pub schema_refusals: AtomicU64,
    counter: AtomicU64,
}

impl WriteState {
    pub fn new(faults: WriteFaults, schedule: Arc<Schedule>) -> Arc<Self> {
        Arc::new(WriteState {
            faults: Mutex::new(faults),
            schedule,
            fault_appends: AtomicU64::new(0),
            dead_letters: Mutex::new(Vec::new()),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            failed_appends: AtomicU64::new(0),
            row_errors: AtomicU64::new(0),
            dead_letter_rows: AtomicU64::new(0),
            stall_until: Mutex::new(None),
            schema_refusals: AtomicU64::new(0),
            counter: AtomicU64::new(0),
        })
    }

    /// `dead_letter`: the connection's stream belongs to a dead-letter table; `schema`: the
    /// Arrow schema the connection's first request carried, and why it is refused, if it is.
    async fn append(
        &self,
        request: AppendRowsRequest,
        dead_letter: bool,
        (schema, refused): (Option<Bytes>, Option<String>),
    ) -> AppendRowsResponse {
        if let Some(reason) = refused {
            self.schema_refusals.fetch_add(1, Ordering::Relaxed);
            return error_response(3, &reason);
        }
        let stall = *self.stall_until.lock().unwrap();
        if let Some(until) = stall {
            tokio::time::sleep_until(until.into()).await;
        }
        let faults = self.faults.lock().unwrap().clone();
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        if let Some(failure) = self.injected_failure(&faults, n, dead_letter) {
            return failure;
        }
        let Some(batch) = request.arrow_rows.and_then(|a| a.rows) else {
            return error_response(3, "the harness accepts Arrow rows only");
        };
        let bytes = batch.serialized_record_batch;
        let Some(rows) = record_batch_rows(&bytes) else {
            return error_response(3, "not an Arrow IPC record batch message");
        };
        if faults.row_error_every > 0 && (n + 1).is_multiple_of(faults.row_error_every) && rows > 0
        {
            // BigQuery refuses the whole append when it reports row errors.
            self.row_errors.fetch_add(1, Ordering::Relaxed);
            return AppendRowsResponse {
                append_result: None,
                error: None,
                row_errors: vec![RowError {
                    index: 0,
                    code: 1,
                    message: "injected row error".into(),
                }],
                write_stream: String::new(),
            };
        }
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        if dead_letter {
            self.dead_letter_rows.fetch_add(rows, Ordering::Relaxed);
            let ids = schema
                .and_then(|s| message_ids(&s, &bytes))
                .unwrap_or_default();
            let now = Instant::now();
            let mut landed = self.dead_letters.lock().unwrap();
            landed.extend(ids.into_iter().map(|i| (i, now)));
        }
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        AppendRowsResponse {
            append_result: Some(AppendResult { offset: None }),
            error: None,
            row_errors: Vec::new(),
            write_stream: String::new(),
        }
    }

    /// The failure the n-th append gets: from an open fault window, or (deterministically
    /// spread: the n-th fails while the running share is below the target) `--fail-fraction`.
    fn injected_failure(
        &self,
        faults: &WriteFaults,
        n: u64,
        dead_letter: bool,
    ) -> Option<AppendRowsResponse> {
        if let Some(code) = self.schedule.fault(dead_letter) {
            self.fault_appends.fetch_add(1, Ordering::Relaxed);
            let message = match code {
                3 => "Input schema has more fields than BigQuery schema (injected)",
                _ => "injected by the load harness (fault window)",
            };
            return Some(error_response(code, message));
        }
        let fail_target = (faults.fail_fraction * (n + 1) as f64).floor() as u64;
        if faults.fail_fraction > 0.0 && self.failed_appends.load(Ordering::Relaxed) < fail_target {
            self.failed_appends.fetch_add(1, Ordering::Relaxed);
            return Some(error_response(
                faults.fail_code,
                "injected by the load harness",
            ));
        }
        None
    }
}

/// An AppendRows response carrying `AppendRowsResponse.error`.
fn error_response(code: i32, message: &str) -> AppendRowsResponse {
    AppendRowsResponse {
        append_result: None,
        error: Some(RpcStatus {
            code,
            message: message.into(),
        }),
        row_errors: Vec::new(),
        write_stream: String::new(),
    }
}

/// The `message_id` column of a record batch, as message indexes (the harness's message ids
/// are their indexes).
fn message_ids(schema: &[u8], batch: &[u8]) -> Option<Vec<usize>> {
    use arrow_array::{Array, StringArray};
    let stream = [schema, batch].concat();
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).ok()?;
    let mut ids = Vec::new();
    for b in reader {
        let b = b.ok()?;
        let column = b.column_by_name("message_id")?;
        let column = column.as_any().downcast_ref::<StringArray>()?;
        ids.extend((0..column.len()).filter_map(|i| column.value(i).parse::<usize>().ok()));
    }
    Some(ids)
}

/// Row count of an encapsulated Arrow IPC record batch message (continuation marker, length,
/// flatbuffer `Message`, body), read from its header without decoding the columns.
fn record_batch_rows(bytes: &[u8]) -> Option<u64> {
    let (len_at, start) = if bytes.get(0..4)? == [0xff; 4] {
        (4, 8)
    } else {
        (0, 4)
    };
    let len = i32::from_le_bytes(bytes.get(len_at..len_at + 4)?.try_into().ok()?) as usize;
    let message = arrow_ipc::root_as_message(bytes.get(start..start + len)?).ok()?;
    Some(message.header_as_record_batch()?.length() as u64)
}

/// `google.cloud.bigquery.storage.v1.BigQueryWrite`: AppendRows.
#[derive(Clone)]
pub struct WriteService(pub Arc<WriteState>);

grpc_service!(
    WriteService,
    "google.cloud.bigquery.storage.v1.BigQueryWrite",
    |state, req| {
        let mut grpc = codec().max_decoding_message_size(16 * 1024 * 1024);
        Ok(match req.uri().path() {
            "/google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows" => {
                let svc = tower::service_fn(
                    move |request: tonic::Request<tonic::Streaming<AppendRowsRequest>>| {
                        let state = state.clone();
                        async move {
                            let mut incoming = request.into_inner();
                            let (tx, rx) = mpsc::channel(16);
                            // Appends on one connection are worked on concurrently (so
                            // injected latency overlaps, as BigQuery's does) and answered
                            // in order.
                            let (order_tx, mut order_rx) =
                                mpsc::channel::<tokio::task::JoinHandle<AppendRowsResponse>>(64);
                            tokio::spawn(async move {
                                while let Some(handle) = order_rx.recv().await {
                                    let Ok(response) = handle.await else { return };
                                    if tx.send(Ok(response)).await.is_err() {
                                        return;
                                    }
                                }
                            });
                            tokio::spawn(async move {
                                // Only the first request of a connection must name the
                                // stream; later ones may leave it empty.
                                let mut dead_letter = false;
                                let mut schema: Option<Bytes> = None;
                                let mut refused: Option<String> = None;
                                while let Some(Ok(r)) = incoming.next().await {
                                    if !r.write_stream.is_empty() {
                                        dead_letter = r.write_stream.contains("dead_letter/");
                                    }
                                    if let Some(s) =
                                        r.arrow_rows.as_ref().and_then(|a| a.writer_schema.as_ref())
                                    {
                                        schema = Some(s.serialized_schema.clone());
                                        let columns = if dead_letter {
                                            &DEAD_LETTER_COLUMNS[..]
                                        } else {
                                            &INGEST_COLUMNS[..]
                                        };
                                        refused = check_schema(&s.serialized_schema, columns).err();
                                    }
                                    let state = state.clone();
                                    let schema = (schema.clone(), refused.clone());
                                    let handle = tokio::spawn(async move {
                                        state.append(r, dead_letter, schema).await
                                    });
                                    if order_tx.send(handle).await.is_err() {
                                        return;
                                    }
                                }
                            });
                            Ok::<_, Status>(tonic::Response::new(ReceiverStream::new(rx)))
                        }
                    },
                );
                grpc.streaming(svc, req).await
            }
            other => {
                Status::unimplemented(format!("{other} is not served by the harness")).into_http()
            }
        })
    }
);

/// Serves both services on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    pubsub: Arc<PubsubState>,
    write: Arc<WriteState>,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(SubscriberService(pubsub))
        .add_service(WriteService(write))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
