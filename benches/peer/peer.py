"""The Python peer: what a domain team would otherwise write to land Pub/Sub events in BigQuery.

Official clients only: google-cloud-pubsub (streaming pull with flow control, the callback API)
and google-cloud-bigquery-storage (Storage Write API, default stream, Arrow rows built with
pyarrow). Same work as mesh-ingest's hot path: parse the JSON envelope, check the fields, build
the row (payload kept as JSON text), batch (1000 rows or 500 ms), append, then ack the batch.

Run by the load harness (scripts/bench.sh), which sets MESH_LOAD_ENDPOINT (host:port of its
Pub/Sub + Storage Write servers), MESH_LOAD_SUBSCRIPTION, MESH_LOAD_TABLE, MESH_LOAD_STREAMS and
MESH_LOAD_MAX_OUTSTANDING.
"""

import json
import os
import queue
import signal
import threading
import time
from datetime import datetime, timezone

import grpc
import pyarrow as pa
from google.cloud import pubsub_v1
from google.cloud.bigquery_storage_v1 import BigQueryWriteClient, types
from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
    BigQueryWriteGrpcTransport,
)

ENDPOINT = os.environ["MESH_LOAD_ENDPOINT"]
SUBSCRIPTION = os.environ["MESH_LOAD_SUBSCRIPTION"]
TABLE = os.environ["MESH_LOAD_TABLE"]
MAX_OUTSTANDING = int(os.environ.get("MESH_LOAD_MAX_OUTSTANDING", "2000"))
STREAMS = int(os.environ.get("MESH_LOAD_STREAMS", "1"))
MAX_ROWS = 1000
MAX_BYTES = 8 * 1024 * 1024  # AppendRows takes at most 10 MB per request
MAX_DELAY = 0.5

SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("object_id", pa.string()),
        ("payload", pa.string()),
        ("attributes", pa.string()),
        ("message_id", pa.string()),
        ("publish_time", pa.timestamp("us", tz="UTC")),
        ("subscription", pa.string()),
        ("ordering_key", pa.string()),
        ("delivery_attempt", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def to_row(message):
    envelope = json.loads(message.data)
    if not isinstance(envelope, dict):
        raise ValueError("not an object")
    payload = envelope["payload"]
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    return {
        "event_id": str(envelope.get("event_id") or message.message_id),
        "event_type": str(envelope["event_type"]),
        "event_time": parse_time(envelope["event_time"]),
        "object_id": str(payload["order_id"]),
        "payload": json.dumps(payload, separators=(",", ":")),
        "attributes": json.dumps(dict(message.attributes)),
        "message_id": message.message_id,
        "publish_time": message.publish_time,
        "subscription": SUBSCRIPTION,
        "ordering_key": message.ordering_key or None,
        "delivery_attempt": message.delivery_attempt,
        "ingested_at": None,
    }


class Writer:
    """One AppendRows stream on the table's default stream; batches go out in order."""

    def __init__(self):
        channel = grpc.insecure_channel(ENDPOINT)
        transport = BigQueryWriteGrpcTransport(channel=channel)
        self.client = BigQueryWriteClient(transport=transport)
        self.requests = queue.Queue()
        self.pending = queue.Queue()
        self.first = True

    def _run(self):
        # The client reads the first request before returning (for its routing header), so
        # the stream is opened once there is one, on a thread of its own.
        responses = self.client.append_rows(requests=iter(self.requests.get, None))
        for response in responses:
            messages = self.pending.get()
            if response.error.code or response.row_errors:
                for m in messages:
                    m.nack()
            else:
                for m in messages:
                    m.ack()

    def append(self, rows, messages):
        now = datetime.now(timezone.utc)
        for r in rows:
            r["ingested_at"] = now
        batch = pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
        arrow = types.AppendRowsRequest.ArrowData(
            rows=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes())
        )
        if self.first:
            arrow.writer_schema = types.ArrowSchema(serialized_schema=SCHEMA.serialize().to_pybytes())
        request = types.AppendRowsRequest(
            write_stream=f"{TABLE}/streams/_default" if self.first else "", arrow_rows=arrow
        )
        self.pending.put(messages)
        self.requests.put(request)
        if self.first:
            self.first = False
            threading.Thread(target=self._run, daemon=True).start()


def main():
    writer = Writer()
    lock = threading.Lock()
    rows, messages = [], []
    size = [0]
    oldest = [None]

    def flush():
        nonlocal rows, messages
        if rows:
            writer.append(rows, messages)
            rows, messages = [], []
            size[0] = 0
            oldest[0] = None

    def callback(message):
        try:
            row = to_row(message)
        except (ValueError, KeyError, TypeError):
            message.ack()  # a real team would dead-letter it; the harness sends none
            return
        with lock:
            if size[0] + len(message.data) > MAX_BYTES:
                flush()
            rows.append(row)
            messages.append(message)
            size[0] += len(message.data)
            if oldest[0] is None:
                oldest[0] = time.monotonic()
            if len(rows) >= MAX_ROWS:
                flush()

    # PUBSUB_EMULATOR_HOST (set by the harness) makes the client use a plaintext channel.
    subscriber = pubsub_v1.SubscriberClient()
    flow = pubsub_v1.types.FlowControl(max_messages=MAX_OUTSTANDING)
    futures = [
        subscriber.subscribe(SUBSCRIPTION, callback=callback, flow_control=flow)
        for _ in range(STREAMS)
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.05)
        with lock:
            if oldest[0] is not None and time.monotonic() - oldest[0] >= MAX_DELAY:
                flush()
    for f in futures:
        f.cancel()


if __name__ == "__main__":
    main()
