"""What the state table saves: for ingest logs of growing size with 1% new since the last
`materialize`, the time of reading the live objects from the state-backed view and from the
view that ranks the whole log, and the time of one incremental `materialize`.

Runs against bqemulator (DuckDB underneath: absolute times are DuckDB's on this machine, not
BigQuery's; the ratio and how it grows with the history are the point). Writes a Markdown
table on stdout. Usage (emulators started, their variables exported):

    python3 benches/semantic_cost.py target/debug/mesh-ingest 100000 1000000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

PROJECT = "mesh-local"
OBJECTS_PER_EVENT = 10  # ten events per object on average
RUNS = 3  # each read is timed this many times; the median is reported


def query(sql: str) -> dict:
    url = os.environ["BIGQUERY_EMULATOR_HOST"].rstrip("/")
    if not url.startswith("http"):
        url = "http://" + url
    body = json.dumps({"query": sql, "useLegacySql": False, "timeoutMs": 600000}).encode()
    req = urllib.request.Request(
        f"{url}/bigquery/v2/projects/{PROJECT}/queries",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=900) as r:
        answer = json.load(r)
    if answer.get("errors"):
        raise SystemExit(f"query failed: {answer['errors']}\n{sql}")
    return answer


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def config(dir_: str, n: int) -> str:
    os.makedirs(f"{dir_}/objects", exist_ok=True)
    with open(f"{dir_}/base.yaml", "w") as f:
        f.write(
            "application:\n  host: 127.0.0.1\n  port: 0\n  shutdown_deadline_secs: 5\n"
            f"gcp:\n  project: {PROJECT}\nlog:\n  format: json\n  level: warn\n"
        )
    with open(f"{dir_}/bench.yaml", "w") as f:
        f.write("log:\n  level: warn\n")
    dataset = f"cost_{n}_{os.getpid()}_{int(time.time())}"
    with open(f"{dir_}/objects/orders.yaml", "w") as f:
        f.write(
            f"name: orders\nsubscription: orders-sub\ningest_table: {dataset}.events\n"
            f"dead_letter_table: {dataset}.dead_letter\n"
            "envelope:\n  format: json\n  object_id: payload.order_id\n"
            f"semantic:\n  dataset: {dataset}_sem\n  view: orders\n  deleted_when: [OrderDeleted]\n"
            "  fields:\n"
            "    - {name: order_id, type: STRING, required: true}\n"
            "    - {name: status, type: STRING, required: true}\n"
            "    - {name: total, type: NUMERIC, required: true}\n"
            "    - {name: paid, type: BOOL}\n"
        )
    return dataset


def mesh(binary: str, dir_: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    out = subprocess.run(
        [binary, "--config", dir_, "--env", "bench", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"mesh-ingest {args} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def insert(table: str, first: int, count: int, objects: int, age: str, step_ms: int) -> None:
    """Appends `count` OrderUpdated events (ids first..first+count) about `objects` orders,
    ingested one every `step_ms` up to `age` ago (as a steady stream would have been)."""
    query(
        f"""INSERT INTO `{PROJECT}.{table}`
        (event_id, event_type, event_time, object_id, payload, attributes, message_id,
         publish_time, subscription, ingested_at)
        SELECT FORMAT('e-%d', i), 'OrderUpdated',
          TIMESTAMP_ADD(TIMESTAMP '2026-01-01 00:00:00', INTERVAL i SECOND),
          FORMAT('o-%d', MOD(i, {objects})),
          PARSE_JSON(FORMAT('{{"order_id": "o-%d", "status": "paid", "total": "%d.50", "paid": true}}',
            MOD(i, {objects}), MOD(i, 1000))),
          JSON '{{}}', FORMAT('m-%d', i),
          TIMESTAMP_ADD(TIMESTAMP '2026-01-01 00:00:00', INTERVAL i SECOND), 's',
          TIMESTAMP_SUB(TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {age}), INTERVAL (({first + count} - i) * {step_ms}) MILLISECOND)
        FROM UNNEST(GENERATE_ARRAY({first}, {first + count - 1})) AS i"""
    )


def measure(binary: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as dir_:
        dataset = config(dir_, n)
        mesh(binary, dir_, "provision")
        objects = max(1, n // OBJECTS_PER_EVENT)
        old = n - n // 100
        insert(f"{dataset}.events", 0, old, objects, "2 HOUR", 1000)
        first = timed(lambda: mesh(binary, dir_, "materialize"))
        insert(f"{dataset}.events", old, n - old, objects, "1 MINUTE", 10)
        report = {}
        incremental = timed(lambda: report.update(json.loads(mesh(binary, dir_, "materialize"))))
        read = "SELECT COUNT(*) AS n, COUNT(DISTINCT status) AS s, MAX(updated_at) AS u, SUM(total) AS t FROM `{}`"
        state = median([timed(lambda: query(read.format(f"{PROJECT}.{dataset}_sem.orders"))) for _ in range(RUNS)])
        history = median(
            [timed(lambda: query(read.format(f"{PROJECT}.{dataset}_sem.orders_history"))) for _ in range(RUNS)]
        )
        return {
            "events": n,
            "objects": objects,
            "slice": report["slice_events"],
            "merged": report["rows_merged"],
            "first_materialize_s": first,
            "materialize_s": incremental,
            "state_read_s": state,
            "history_read_s": history,
        }


def main() -> None:
    binary, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
    print("| events in the log | objects | new (slice) | rows merged | first `materialize` (full) | incremental `materialize` | read via state table | read via whole-log view | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        m = measure(binary, n)
        ratio = m["history_read_s"] / max(m["state_read_s"], 1e-6)
        print(
            f"| {m['events']:,} | {m['objects']:,} | {m['slice']:,} | {m['merged']:,} | "
            f"{m['first_materialize_s']:.2f} s | {m['materialize_s']:.2f} s | "
            f"{m['state_read_s'] * 1000:.0f} ms | {m['history_read_s'] * 1000:.0f} ms | {ratio:.1f}× |",
            flush=True,
        )


if __name__ == "__main__":
    main()
