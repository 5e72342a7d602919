"""Is the worst case `mesh-ingest check` predicts a true bound? Peak RSS (VmHWM) of one build
under the loads that push memory hardest on the real emulators, each next to what `check`
predicts for the same configuration and worker threads (issue 24):

- hostile bodies at `limits.max_message_bytes` against the `order` JSON Schema, with 1, 2 and
  4 worker threads: a flat array of tiny items, an object of tiny members, arrays nested to
  just under `limits.max_json_depth` — all waiting on the subscription before the service
  starts, so they arrive at once;
- 40 objects all bursting at once: a backlog of 4 KiB events on each of 40 subscriptions;
- records of a schema'd topic (issue 27): Avro bodies of about 0.9 MiB holding a map of tiny
  members, in JSON encoding (parsed into a value tree first) and in binary; Protocol Buffer
  binary bodies of about 0.9 MiB holding a map of 80,000 entries (read by the wire reader; the
  topic is not bound: the Pub/Sub emulator cannot create Protocol Buffer schemas);
- compressed bodies (issue 27): the `members` body zstd-compressed (inflates to just under the
  limit, then meets the schema check), and gzip bombs (8 KiB that would inflate to 8 MiB).

`measure(binary, config_dir, tag)` runs them with that build's own configuration (base.yaml,
local.yaml, and its `order` object and schema; the burst's objects are written here). Provisioning and publishing use this tree's
release binary. Emulators started, their variables exported (scripts/bench.sh does both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "target/release/mesh-ingest"
PROJECT = "mesh-local"
QUICK = os.environ.get("BENCH_QUICK") == "1"
HOSTILE_BODIES = 6 if QUICK else 16
HOSTILE_SHAPES = ["zeros", "members", "deep"]
# Published compressed (`publish --compress`): shape, encoding.
COMPRESSED_SHAPES = [("members", "zstd"), ("bomb", "gzip")]
THREADS = [1, 2, 4]
BURST_OBJECTS = 40
BURST_EVENTS = 200 if QUICK else 1000
BURST_EVENT_BYTES = 4096
TIMEOUT_SECS = 600


def rows(sql: str) -> list[list[str]]:
    url = os.environ["BIGQUERY_EMULATOR_HOST"].rstrip("/")
    if not url.startswith("http"):
        url = "http://" + url
    body = json.dumps({"query": sql, "useLegacySql": False}).encode()
    req = urllib.request.Request(f"{url}/bigquery/v2/projects/{PROJECT}/queries", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return [[c["v"] for c in row["f"]] for row in json.load(r).get("rows", [])]


def count(sql: str) -> int:
    try:
        return int(rows(sql)[0][0])
    except (OSError, KeyError, IndexError, ValueError):
        return 0


def predicted_mib(binary: Path, cfg: Path, threads: int) -> float:
    out = subprocess.run([str(binary), "--config", str(cfg), "--env", "local", "check", "--cpus", str(threads)],
                         capture_output=True, text=True, check=True)
    m = re.search(r"memory budget \(worst case, \d+ worker thread\(s\)\): ([\d.,]+) MiB", out.stderr)
    if not m:
        raise SystemExit(f"no memory budget in `check`:\n{out.stderr}")
    return float(m.group(1).replace(",", ""))


def limits(binary: Path, cfg: Path, obj: str) -> dict:
    """The object's `limits` as that build resolves them (its defaults may differ)."""
    out = subprocess.run([str(binary), "--config", str(cfg), "--env", "local", "check"],
                         capture_output=True, text=True, check=True)
    return next(o for o in json.loads(out.stdout)["objects"] if o["name"] == obj)["limits"]


def run_until(binary: Path, cfg: Path, threads: int | None, sql: str, want: int) -> dict:
    """Starts `binary run`, waits until `sql` counts `want`, returns seconds and peak RSS."""
    env = dict(os.environ, APP__APPLICATION__PORT="0")
    if threads:
        env["TOKIO_WORKER_THREADS"] = str(threads)
    log = open(cfg / "run.log", "w")
    proc = subprocess.Popen([str(binary), "--config", str(cfg), "--env", "local", "run"],
                            env=env, stdout=log, stderr=log)
    start = time.monotonic()
    landed = 0
    while time.monotonic() - start < TIMEOUT_SECS and proc.poll() is None:
        landed = count(sql)
        if landed >= want:
            break
        time.sleep(1)
    seconds = time.monotonic() - start
    peak_kib = 0
    if proc.poll() is None:
        m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{proc.pid}/status").read_text())
        peak_kib = int(m.group(1)) if m else 0
        proc.terminate()
    code = proc.wait()
    log.close()
    return {"landed": landed, "wanted": want, "seconds": round(seconds, 1),
            "peak_rss_mib": round(peak_kib / 1024, 1), "exit": code}


def config_dir(name: str, build_config: Path) -> Path:
    cfg = Path(f"/tmp/mesh-bench-memory/{name}")
    shutil.rmtree(cfg, ignore_errors=True)
    (cfg / "objects").mkdir(parents=True)
    for f in ["base.yaml", "local.yaml"]:
        shutil.copy(build_config / f, cfg / f)
    return cfg


def publish(cfg: Path, obj: str, lines: list[str], compress: str | None = None) -> None:
    (cfg / f"{obj}.jsonl").write_text("\n".join(lines) + "\n")
    extra = ["--compress", compress] if compress else []
    subprocess.run([str(TOOL), "--config", str(cfg), "--env", "local", "publish", "--object", obj,
                    "--file", str(cfg / f"{obj}.jsonl"), "--lines", "body", *extra],
                   check=True, capture_output=True)


def hostile_body(shape: str, i: int, limit: int, depth: int) -> str:
    head = ('{"event_id":"h-%s-%d","event_type":"OrderCreated","event_time":"2026-12-05T10:00:00Z",'
            '"payload":{"order_id":"h%d","items":' % (shape, i, i))
    room = limit - len(head) - 3
    if shape == "bomb":  # 8 MiB of one string: about 8 KiB gzip, far beyond the limit
        return head + '"' + "x" * (64 << 20) + '"}}'
    if shape == "zeros":
        items = "[" + ",".join(["0"] * ((room - 1) // 2)) + "]"
    elif shape == "members":
        members, size, j = [], 2, 0
        while True:
            m = f'"m{j}":0'
            if size + len(m) + 1 > room:
                break
            members.append(m)
            size += len(m) + 1
            j += 1
        items = "{" + ",".join(members) + "}"
    else:  # arrays nested to just under the depth limit (envelope and payload take 3 levels)
        nest = depth - 4
        one = "[" * nest + "0" + "]" * nest
        items = "[" + ",".join([one] * ((room - 2) // (len(one) + 1))) + "]"
    body = head + items + "}}"
    assert len(body) <= limit, (shape, len(body), limit)
    return body


def hostile(binary: Path, build_config: Path, tag: str, shape: str, threads: int,
            compress: str | None = None) -> dict:
    suffix = f"{tag}_{shape}{compress or ''}_{threads}_{int(time.time())}"
    cfg = config_dir(f"hostile-{suffix}", build_config)
    shutil.copytree(build_config / "schemas", cfg / "schemas")
    order = (build_config / "objects/order.yaml").read_text()
    for key, value in [("subscription", f"hostile-{suffix}-sub"), ("topic", f"hostile-{suffix}"),
                       ("ingest_table", f"hostile_{suffix}.events"),
                       ("dead_letter_table", f"hostile_{suffix}.dead_letter")]:
        order = re.sub(rf"^{key}: .*$", f"{key}: {value}", order, flags=re.M)
    (cfg / "objects/order.yaml").write_text(order)
    subprocess.run([str(TOOL), "--config", str(cfg), "--env", "local", "provision"], check=True, capture_output=True)
    limit = limits(binary, cfg, "order")["max_message_bytes"]
    depth = limits(binary, cfg, "order")["max_json_depth"]
    publish(cfg, "order", [hostile_body(shape, i, limit, depth) for i in range(HOSTILE_BODIES)], compress)
    case = f"hostile {shape}" + (f" ({compress})" if compress else "")
    return {"case": case, "threads": threads, "body_bytes": limit,
            **run_and_tally(binary, cfg, threads, f"hostile_{suffix}")}


def run_and_tally(binary: Path, cfg: Path, threads: int, dataset: str) -> dict:
    """Runs `binary` on `cfg` until the HOSTILE_BODIES published to the object whose tables
    are `<dataset>.events` / `.dead_letter` are all there; the prediction, the outcome by
    reason, and `run_until`'s figures. Removes `cfg`."""
    sql = (f"SELECT (SELECT COUNT(*) FROM {dataset}.events) + "
           f"(SELECT COUNT(*) FROM {dataset}.dead_letter) AS n")
    predicted = predicted_mib(binary, cfg, threads)
    result = run_until(binary, cfg, threads, sql, HOSTILE_BODIES)
    outcome = rows(f"SELECT reason_code, COUNT(*) FROM {dataset}.dead_letter GROUP BY reason_code")
    outcome.append(["landed", str(count(f"SELECT COUNT(*) FROM {dataset}.events"))])
    shutil.rmtree(cfg, ignore_errors=True)
    return {"predicted_mib": predicted,
            "outcome": ", ".join(f"{k} {n}" for k, n in sorted(outcome) if n != "0"), **result}


RECORD_AVSC = json.dumps({"type": "record", "name": "Rec", "fields": [
    {"name": "event_id", "type": "string"}, {"name": "event_type", "type": "string"},
    {"name": "event_time", "type": "string"},
    {"name": "payload", "type": {"type": "record", "name": "P", "fields": [
        {"name": "id", "type": "string"},
        {"name": "members", "type": {"type": "map", "values": "long"}}]}}]})


def records(binary: Path, build_config: Path, tag: str, encoding: str, threads: int = 2) -> dict:
    """Avro records of about 0.9 MiB (a map of tiny members) on a schema'd topic."""
    suffix = f"{tag}_rec{encoding}_{threads}_{int(time.time())}"
    cfg = config_dir(f"records-{suffix}", build_config)
    (cfg / "objects/rec.avsc").write_text(RECORD_AVSC)
    ident = suffix.replace("_", "-")
    (cfg / "objects/rec.yaml").write_text(
        f"name: rec\nsubscription: {ident}-sub\ntopic: {ident}\n"
        f"ingest_table: rec_{suffix}.events\ndead_letter_table: rec_{suffix}.dead_letter\n"
        f"topic_schema:\n  type: avro\n  file: rec.avsc\n  encoding: {encoding}\n  schema_id: s-{ident}\n"
        "envelope:\n  format: json\n  object_id: payload.id\n")
    subprocess.run([str(TOOL), "--config", str(cfg), "--env", "local", "provision"], check=True, capture_output=True)
    members = {f"m{j}": 0 for j in range(80_000)}  # about 0.9 MiB as JSON
    lines = [json.dumps({"event_id": f"r-{i}", "event_type": "Changed", "event_time": "2026-12-05T10:00:00Z",
                         "payload": {"id": f"r{i}", "members": members}}) for i in range(HOSTILE_BODIES)]
    publish(cfg, "rec", lines)
    return {"case": f"Avro records ({encoding}), map of 80,000 members", "threads": threads,
            "body_bytes": len(lines[0]), **run_and_tally(binary, cfg, threads, f"rec_{suffix}")}


RECORD_PROTO = """syntax = "proto3";
message Rec {
  string event_id = 1;
  string event_type = 2;
  string event_time = 3;
  message P { string id = 1; map<string, int32> members = 2; }
  P payload = 4;
}
"""


def records_protobuf(binary: Path, build_config: Path, tag: str, threads: int = 2) -> dict:
    """Protocol Buffer records of about 0.9 MiB (a map of 80,000 entries), binary."""
    suffix = f"{tag}_recpb_{threads}_{int(time.time())}"
    cfg = config_dir(f"records-{suffix}", build_config)
    (cfg / "objects/rec.proto").write_text(RECORD_PROTO)
    ident = suffix.replace("_", "-")
    plain = (f"name: rec\nsubscription: {ident}-sub\ntopic: {ident}\n"
             f"ingest_table: rec_{suffix}.events\ndead_letter_table: rec_{suffix}.dead_letter\n"
             "envelope:\n  format: json\n  object_id: payload.id\n")
    # Provisioned without the schema (the emulator cannot create it), run and published with it.
    (cfg / "objects/rec.yaml").write_text(plain)
    subprocess.run([str(TOOL), "--config", str(cfg), "--env", "local", "provision"], check=True, capture_output=True)
    (cfg / "objects/rec.yaml").write_text(
        plain + "topic_schema:\n  type: protobuf\n  file: rec.proto\n  encoding: binary\n  message: Rec\n")
    members = {f"m{j}": 0 for j in range(80_000)}
    lines = [json.dumps({"event_id": f"r-{i}", "event_type": "Changed", "event_time": "2026-12-05T10:00:00Z",
                         "payload": {"id": f"r{i}", "members": members}}) for i in range(HOSTILE_BODIES)]
    publish(cfg, "rec", lines)
    return {"case": "Protocol Buffer records (binary), map of 80,000 entries", "threads": threads,
            "body_bytes": len(lines[0]), **run_and_tally(binary, cfg, threads, f"rec_{suffix}")}


def burst(binary: Path, build_config: Path, tag: str) -> dict:
    suffix = f"{tag}_{int(time.time())}"
    cfg = config_dir(f"burst-{suffix}", build_config)
    for i in range(BURST_OBJECTS):
        (cfg / f"objects/obj{i}.yaml").write_text(
            f"name: obj{i}\nsubscription: burst-{suffix}-{i}-sub\ntopic: burst-{suffix}-{i}\n"
            f"ingest_table: burst_{suffix}.obj{i}_events\ndead_letter_table: burst_{suffix}.obj{i}_dead\n"
            "envelope:\n  format: json\n  object_id: payload.id\n")
    subprocess.run([str(TOOL), "--config", str(cfg), "--env", "local", "provision"], check=True, capture_output=True)
    pad = "x" * BURST_EVENT_BYTES
    lines = [json.dumps({"event_id": f"e-{i}", "event_type": "Changed", "event_time": "2026-12-05T10:00:00Z",
                         "payload": {"id": str(i), "blob": pad}}) for i in range(BURST_EVENTS)]
    (cfg / "events.jsonl").write_text("\n".join(lines) + "\n")
    publishers = [subprocess.Popen([str(TOOL), "--config", str(cfg), "--env", "local", "publish",
                                    "--object", f"obj{i}", "--file", str(cfg / "events.jsonl")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for i in range(BURST_OBJECTS)]
    if any(p.wait() != 0 for p in publishers):
        raise SystemExit("burst: a publish failed")
    sql = "SELECT " + " + ".join(f"(SELECT COUNT(*) FROM burst_{suffix}.obj{i}_events)"
                                 for i in range(BURST_OBJECTS)) + " AS n"
    predicted = predicted_mib(binary, cfg, os.cpu_count() or 1)
    result = run_until(binary, cfg, None, sql, BURST_OBJECTS * BURST_EVENTS)
    shutil.rmtree(cfg, ignore_errors=True)
    return {"case": f"{BURST_OBJECTS} objects bursting", "threads": os.cpu_count(),
            "body_bytes": BURST_EVENT_BYTES, "predicted_mib": predicted, **result}


def by_objects(binary: Path, build_config: Path, tag: str) -> dict:
    """`check`'s worst case for 1, 10 and 40 objects of default settings, 2 worker threads."""
    out = {}
    for n in [1, 10, 40]:
        cfg = config_dir(f"objects-{tag}-{n}", build_config)
        for i in range(n):
            (cfg / f"objects/obj{i}.yaml").write_text(
                f"name: obj{i}\nsubscription: obj{i}-sub\ntopic: obj{i}\n"
                f"ingest_table: d.obj{i}_events\ndead_letter_table: d.obj{i}_dead\n"
                "envelope:\n  format: json\n  object_id: payload.id\n")
        out[n] = predicted_mib(binary, cfg, 2)
        shutil.rmtree(cfg, ignore_errors=True)
    return out


def measure(binary: Path, build_config: Path, tag: str) -> list[dict]:
    runs = [{"case": "objects", "predicted_mib_by_objects": by_objects(binary, build_config, tag)}]
    for threads in THREADS:
        for shape in HOSTILE_SHAPES:
            runs.append(hostile(binary, build_config, tag, shape, threads))
            print(json.dumps({"build": tag, **runs[-1]}), file=sys.stderr, flush=True)
    for shape, encoding in COMPRESSED_SHAPES:
        runs.append(hostile(binary, build_config, tag, shape, 2, encoding))
        print(json.dumps({"build": tag, **runs[-1]}), file=sys.stderr, flush=True)
    for encoding in ["json", "binary"]:
        runs.append(records(binary, build_config, tag, encoding))
        print(json.dumps({"build": tag, **runs[-1]}), file=sys.stderr, flush=True)
    runs.append(records_protobuf(binary, build_config, tag))
    print(json.dumps({"build": tag, **runs[-1]}), file=sys.stderr, flush=True)
    runs.append(burst(binary, build_config, tag))
    print(json.dumps({"build": tag, **runs[-1]}), file=sys.stderr, flush=True)
    return runs


if __name__ == "__main__" and sys.argv[1:2] == ["compressed"]:
    # python3 benches/memory_bound.py compressed BINARY CONFIG_DIR: the issue-27 shapes only
    # (compressed bodies, records of a schema'd topic).
    for shape, encoding in COMPRESSED_SHAPES:
        print(json.dumps(hostile(Path(sys.argv[2]), Path(sys.argv[3]), "now", shape, 2, encoding)))
    for encoding in ["json", "binary"]:
        print(json.dumps(records(Path(sys.argv[2]), Path(sys.argv[3]), "now", encoding)))
    print(json.dumps(records_protobuf(Path(sys.argv[2]), Path(sys.argv[3]), "now")))
elif __name__ == "__main__" and sys.argv[1:2] == ["protobuf"]:
    # python3 benches/memory_bound.py protobuf BINARY CONFIG_DIR: the Protocol Buffer case only.
    print(json.dumps(records_protobuf(Path(sys.argv[2]), Path(sys.argv[3]), "now")))
elif __name__ == "__main__":
    # python3 benches/memory_bound.py BINARY CONFIG_DIR [TAG]
    for r in measure(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "now"):
        print(json.dumps(r))
