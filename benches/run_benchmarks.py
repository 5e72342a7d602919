"""Runs every benchmark and rewrites the tables in docs/BENCHMARKS.md (scripts/bench.sh calls it).

1. criterion micro-benchmarks (target/criterion/*/new/estimates.json): per-event path vs floor;
2. the load harness (target/release/mesh-load) against the release mesh-ingest: payload sizes,
   streams 1..8, a 5k events/s steady run, a 60 s sink stall;
3. the same harness against the Python peer (benches/peer/peer.py);
4. mesh-ingest against the real emulators (CPU per event cross-check), if their variables are set;
5. on the emulators too: peak RSS under hostile bodies and 40 objects bursting against the worst
   case `check` predicts (benches/memory_bound.py), for this tree and the baseline.
"""

import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "target/release/mesh-load"
INGEST = ROOT / "target/release/mesh-ingest"
PEER_PY = Path(os.environ.get("MESH_PEER_PYTHON", Path.home() / ".cache/mesh-ingest/peer-venv/bin/python"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
# The baseline build (scripts/bench.sh with BENCH_BASELINE=<rev>): measured in the same run.
BASELINE = ROOT / "target/baseline/mesh-ingest"
HEAP_NOW = ROOT / "target/heap_profile.json"
HEAP_BEFORE = ROOT / "target/baseline/heap_profile.json"
# The baseline's own config/ (its defaults and its `order` object), saved by scripts/bench.sh.
BASELINE_CONFIG = ROOT / "target/baseline/config"


def harness(*args, label="mesh-ingest", ingest=INGEST):
    cmd = [str(LOAD), "--mesh-ingest", str(ingest), "--label", label, *map(str, args)]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(report), file=sys.stderr)
    return report


def criterion(directory="target/criterion"):
    results = {}
    for est in (ROOT / directory).glob("**/new/estimates.json"):
        bench = est.parent.parent.relative_to(ROOT / directory).as_posix()
        results[bench] = json.loads(est.read_text())["mean"]["point_estimate"]  # ns
    return results


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}"


def emulator_run(events=20000):
    """mesh-ingest (release) on the Pub/Sub emulator + bqemulator: CPU seconds per million."""
    env = dict(os.environ)
    if "PUBSUB_EMULATOR_HOST" not in env or "BIGQUERY_STORAGE_EMULATOR_HOST" not in env:
        return None
    cfg = Path(f"/tmp/mesh-bench-emu-{os.getpid()}")
    (cfg / "objects").mkdir(parents=True, exist_ok=True)
    suffix = str(int(time.time()))
    port = 18000 + os.getpid() % 1000
    (cfg / "base.yaml").write_text(
        f"application:\n  host: 127.0.0.1\n  port: {port}\n  shutdown_deadline_secs: 20\n"
        "gcp:\n  project: mesh-local\nlog:\n  format: json\n  level: warn\n")
    (cfg / "bench.yaml").write_text("log:\n  level: warn\n")
    (cfg / "objects/orders.yaml").write_text(
        f"name: orders\nsubscription: bench-{suffix}-sub\ntopic: bench-{suffix}\n"
        f"ingest_table: bench_{suffix}.events\ndead_letter_table: bench_{suffix}.dead_letter\n"
        "envelope:\n  format: json\n  object_id: payload.order_id\nstreams: 2\n")
    pad = "x" * 900
    lines = [json.dumps({"event_id": f"e{i}", "event_type": "OrderUpdated",
                         "event_time": "2026-11-20T10:00:00Z",
                         "payload": {"order_id": f"o-{i % 500}", "status": "paid", "pad": pad}})
             for i in range(events)]
    (cfg / "events.jsonl").write_text("\n".join(lines) + "\n")
    base = [str(INGEST), "--config", str(cfg), "--env", "bench"]
    subprocess.run(base + ["provision"], check=True, env=env, capture_output=True)
    subprocess.run(base + ["publish", "--object", "orders", "--file", str(cfg / "events.jsonl")],
                   check=True, env=env, capture_output=True)
    proc = subprocess.Popen(base + ["run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu():
        f = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / ticks

    def acked():
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return 0
        m = re.search(r'^mesh_ingest_messages_acked_total\{object="orders"\} (\S+)', text, re.M)
        return float(m.group(1)) if m else 0

    while acked() == 0 and proc.poll() is None:
        time.sleep(0.02)
    t0, c0 = time.monotonic(), cpu()
    while acked() < events and proc.poll() is None:
        time.sleep(0.1)
    t1, c1 = time.monotonic(), cpu()
    proc.terminate()
    proc.wait()
    return {"events": events, "seconds": t1 - t0, "events_per_sec": events / (t1 - t0),
            "cpu_seconds_per_million": (c1 - c0) / events * 1e6}


SIZES = [256, 1024, 16384]
# Events per load: 16 KiB runs are a quarter as long.
EVENTS = 20000 if QUICK else 200000


def events_for(size):
    return EVENTS if size < 16384 else EVENTS // 4


def main():
    n = EVENTS
    ingest = {s: harness("--events", events_for(s), "--payload-bytes", s) for s in SIZES}
    peer = {}
    if PEER_PY.exists():
        for s in SIZES:
            peer[s] = harness("--events", 20000 if not QUICK else 5000, "--payload-bytes", s,
                              "--peer", str(PEER_PY), str(ROOT / "benches/peer/peer.py"), label="python-peer")
    streams = {k: harness("--events", n, "--payload-bytes", 1024, "--streams", k) for k in [1, 2, 4, 8]}
    steady = harness("--events", 50000 if not QUICK else 10000, "--payload-bytes", 1024, "--rate", 5000)
    stall = harness("--events", 400000 if not QUICK else 50000, "--payload-bytes", 1024,
                    "--stall-secs", 60 if not QUICK else 10, "--stall-after-secs", 2, "--timeout-secs", 600)
    emu = emulator_run()
    memory = memory_bound()
    semantic = semantic_cost()
    crit = criterion()
    compare = before_after(ingest)
    write_doc(ingest, peer, streams, steady, stall, emu, crit, semantic, compare, memory)


def memory_bound():
    """Peak RSS vs `check`'s prediction on the emulators (benches/memory_bound.py)."""
    if "BIGQUERY_EMULATOR_HOST" not in os.environ:
        return {}
    sys.path.insert(0, str(ROOT / "benches"))
    import memory_bound as mb

    out = {"after": mb.measure(INGEST, ROOT / "config", "after")}
    if BASELINE.exists() and BASELINE_CONFIG.exists():
        out["before"] = mb.measure(BASELINE, BASELINE_CONFIG, "before")
    return out


def memory_lines(memory):
    if not memory:
        return ["## Memory: the predicted worst case against peak RSS (emulators)", "", "Not run (emulator variables not set).", ""]
    builds = [b for b in ["before", "after"] if b in memory]
    lines = [
        "## Memory: the predicted worst case against peak RSS (emulators)",
        "",
        "`benches/memory_bound.py`, release builds on the Pub/Sub emulator and bqemulator, each build"
        " with its own configuration. Predicted = `mesh-ingest check --cpus N` for that configuration"
        " and N worker threads (`TOKIO_WORKER_THREADS`); peak = the process's `VmHWM` once every"
        " message is in a table. Hostile: bodies of exactly `limits.max_message_bytes` against the"
        " shipped `order` JSON Schema — `zeros` a flat array of tiny items, `members` an object of"
        " tiny members, `deep` arrays nested to just under `limits.max_json_depth` — all waiting"
        " before the service starts. Burst: 40 objects, each with a backlog of 4 KiB events.",
        "",
    ]
    objects = {b: next(r for r in memory[b] if r["case"] == "objects")["predicted_mib_by_objects"] for b in builds}
    lines += ["| build | predicted, 1 object | 10 objects | 40 objects | 40 ÷ 1 |", "|---|---|---|---|---|"]
    for b in builds:
        o = {int(k): v for k, v in objects[b].items()}
        lines.append(f"| {b} | {fmt(o[1])} MiB | {fmt(o[10])} MiB | {fmt(o[40])} MiB | {o[40] / o[1]:.2f}× |")
    lines += ["", "| case | threads | " + " | ".join(f"{b}: body | {b}: outcome | {b}: peak MiB | {b}: predicted MiB"
                                                     for b in builds) + " |",
              "|---|---|" + "---|---|---|---|" * len(builds)]
    keys = [(r["case"], r["threads"]) for r in memory["after"] if r["case"] != "objects"]
    for case, threads in keys:
        cells = []
        for b in builds:
            r = next((r for r in memory[b] if (r.get("case"), r.get("threads")) == (case, threads)), None)
            if r is None:
                cells.append("| | | ")
                continue
            within = "" if r["peak_rss_mib"] <= r["predicted_mib"] else " **over**"
            outcome = r.get("outcome") or f"{r['landed']:,} of {r['wanted']:,} landed"
            if r["landed"] < r["wanted"]:
                outcome += f" ({r['landed']:,} of {r['wanted']:,} in a table at {r['seconds']} s)"
            cells.append(f"{r['body_bytes']:,} B | {outcome} | {fmt(r['peak_rss_mib'])}{within} | {fmt(r['predicted_mib'])}")
        lines.append(f"| {case} | {threads} | " + " | ".join(cells) + " |")
    return lines + [""]


def before_after(ingest):
    """The large-object figures of the baseline and of this tree, from this one run."""
    out = {"now": {}, "before": {}, "heap_now": None, "heap_before": None}
    n = EVENTS
    stall_secs = 10 if QUICK else 60
    for who, binary in [("now", INGEST), ("before", BASELINE)]:
        if not binary.exists():
            continue
        runs = out[who]
        for s in SIZES:
            runs[s] = ingest[s] if who == "now" else harness(
                "--events", events_for(s), "--payload-bytes", s, label="baseline", ingest=binary)
        runs["mixed"] = harness("--events", n // 10, "--payload-bytes", 1024, "--large-every", 10,
                                "--large-bytes", 262144, label=f"mixed-{who}", ingest=binary)
        runs["stall16k"] = harness("--events", n // 2, "--payload-bytes", 16384, "--stall-secs", stall_secs,
                                   "--stall-after-secs", 2, "--timeout-secs", 900,
                                   label=f"stall16k-{who}", ingest=binary)
    for key, path in [("heap_now", HEAP_NOW), ("heap_before", HEAP_BEFORE)]:
        if path.exists():
            out[key] = json.loads(path.read_text().strip().splitlines()[-1])
    out["crit_before"] = criterion("target/criterion-baseline")
    return out


def semantic_cost():
    """The semantic layer's state table vs the whole-log view, on bqemulator (see
    benches/semantic_cost.py); BENCH_SEMANTIC_10M=1 adds a 10M-event log."""
    if "BIGQUERY_EMULATOR_HOST" not in os.environ:
        return []
    sys.path.insert(0, str(ROOT / "benches"))
    import semantic_cost as cost

    sizes = [100_000] if QUICK else [100_000, 1_000_000]
    if os.environ.get("BENCH_SEMANTIC_10M") == "1":
        sizes.append(10_000_000)
    return [cost.measure(str(INGEST), n) for n in sizes]


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def compare_lines(c, crit):
    """Large objects: before (the baseline revision) and after (this tree), one run."""
    now, before = c["now"], c["before"]
    if not before:
        return []
    lines = ["## Large objects: before and after", "",
             f"Both builds measured in this run: before = `{os.environ.get('BENCH_BASELINE', 'baseline')}`,"
             " after = this tree; each with its own default configuration. Predicted = the worst case"
             " `mesh-ingest check` computes for the harness's configuration on this machine's CPUs.", "",
             "| load | CPU s / 1M before | after | peak RSS MiB before | after | predicted MiB | events/s before | after |",
             "|---|---|---|---|---|---|---|---|"]
    names = {256: "256 B", 1024: "1 KiB", 16384: "16 KiB", "mixed": "90% 1 KiB + 10% 256 KiB",
             "stall16k": "16 KiB, sink frozen"}
    for key, name in names.items():
        a, b = before.get(key), now.get(key)
        if not a or not b:
            continue
        lines.append(f"| {name} | {fmt(a['cpu_seconds_per_million'])} | {fmt(b['cpu_seconds_per_million'])} |"
                     f" {fmt(a['peak_rss_mib'])} | {fmt(b['peak_rss_mib'])} | {fmt(b.get('predicted_budget_mib'))} |"
                     f" {fmt(a['events_per_sec'], 0)} | {fmt(b['events_per_sec'], 0)} |")
    st = now.get("stall16k")
    if st:
        lines += ["", f"Sink frozen (16 KiB): RSS during the stall {fmt(st['stall_rss_mib_min'])}–"
                      f"{fmt(st['stall_rss_mib_max'])} MiB (predicted worst case {fmt(st.get('predicted_budget_mib'))} MiB);"
                      f" {st['acked']:,} of {st['events']:,} acked, {st['acked_more_than_once']} twice,"
                      f" {st['never_acked']} never."]
    cb = c.get("crit_before") or {}
    lines += ["", "Per-event path (criterion), ratio to the floor measured in the same run:", "",
              "| payload | path | before ns | ratio | after ns | ratio |", "|---|---|---|---|---|---|"]
    for size in SIZES:
        g = f"payload_{size}"
        rows = [(f"decode {f}", f"{g}/decode_{f}", f"{g}/floor_scan_{f}", 1) for f in ["json", "attributes", "cloudevents"]]
        rows.append(("Arrow encode (per row)", f"{g}/encode_arrow_1000_rows", f"{g}/floor_scan_1000_json", 1000))
        for label, key, floor_key, per in rows:
            if key in cb and key in crit:
                lines.append(f"| {size} B | {label} | {cb[key] / per:,.0f} | {cb[key] / cb[floor_key]:.2f}× |"
                             f" {crit[key] / per:,.0f} | {crit[key] / crit[floor_key]:.2f}× |")
    hb, hn = c.get("heap_before"), c.get("heap_now")
    if hb and hn:
        lines += ["", "Heap profile (dhat, `cargo bench --bench heap_profile`: 20,000 events of 16 KiB decoded and"
                      " encoded into 500-row appends; the body's own allocation, as the Pub/Sub client makes it, included):", "",
                  "| | bytes allocated per event | in bodies | blocks per event | peak heap MiB |", "|---|---|---|---|---|"]
        for name, h in [("before", hb), ("after", hn)]:
            lines.append(f"| {name} | {h['allocated_bytes_per_event']:,.0f} | {h['allocated_bodies_per_event']:.2f} |"
                         f" {h['blocks_per_event']:.1f} | {h['peak_heap_mib']:.1f} |")
    lines.append("")
    return lines


def write_doc(ingest, peer, streams, steady, stall, emu, crit, semantic, compare, memory):
    doc = ROOT / "docs/BENCHMARKS.md"
    lines = [
        f"Machine: {machine()}. Generated by `scripts/bench.sh` on {time.strftime('%Y-%m-%d')};"
        " every table below is rewritten by it.",
        "",
        *compare_lines(compare, crit),
        *memory_lines(memory),
        "## Per-event path vs the floor (criterion, `cargo bench --bench envelope`)",
        "",
        "Floor: `serde_json::from_slice::<IgnoredAny>` over the same bytes — a validating JSON scan, the"
        " least any ingester must do. Decode = parse envelope, validate, build the row (payload borrowed,"
        " not re-serialised). Encode = Arrow IPC for the append, per row of a 1000-row batch.",
        "",
        "| payload | format | floor ns/event | decode ns/event | ratio | floor MB/s | decode MB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        g = f"payload_{size}"
        for fmt_name in ["json", "attributes", "cloudevents"]:
            floor = crit.get(f"{g}/floor_scan_{fmt_name}")
            dec = crit.get(f"{g}/decode_{fmt_name}")
            if floor is None or dec is None:
                continue
            body = envelope_len(size, fmt_name)
            lines.append(f"| {size} B | {fmt_name} | {floor:,.0f} | {dec:,.0f} | {dec / floor:.2f}× |"
                         f" {body / floor * 1e3:,.0f} | {body / dec * 1e3:,.0f} |")
    lines += ["", "| payload | floor ns/event | decode + Arrow encode ns/event (1000-row batch) | ratio | Arrow encode alone ns/row |",
              "|---|---|---|---|---|"]
    for size in SIZES:
        g = f"payload_{size}"
        floor = crit.get(f"{g}/floor_scan_1000_json")
        full = crit.get(f"{g}/decode_and_encode_1000_json")
        enc = crit.get(f"{g}/encode_arrow_1000_rows")
        if floor and full and enc:
            lines.append(f"| {size} B | {floor / 1000:,.0f} | {full / 1000:,.0f} | {full / floor:.2f}× | {enc / 1000:,.0f} |")
    lines += [
        "",
        "## End to end: load harness (`target/release/mesh-load`)",
        "",
        "The harness serves pre-generated JSON envelopes over StreamingPull as fast as they are"
        " acknowledged and accepts the Arrow appends; harness and consumer share the machine's cores."
        " CPU = user + system seconds of the consumer process (/proc), from the first message served."
        " Latency = served → acknowledged (includes batching delay and the append).",
        "",
        "| consumer | payload | events | events/s | CPU s / 1M events | events per CPU-second | peak RSS MiB | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in ingest.items():
        lines.append(row(r))
    for size, r in peer.items():
        lines.append(row(r))
    if peer:
        lines += ["", "| payload | CPU per event, peer ÷ mesh-ingest | events/s, mesh-ingest ÷ peer |", "|---|---|---|"]
        for size in peer:
            a, b = ingest[size], peer[size]
            lines.append(f"| {size} B | {b['cpu_seconds_per_million'] / a['cpu_seconds_per_million']:.1f}× |"
                         f" {a['events_per_sec'] / b['events_per_sec']:.1f}× |")
    lines += ["", "### Streams (1 KiB payload)", "",
              "| streams | events/s | CPU s / 1M events | peak RSS MiB | p99 ms |", "|---|---|---|---|---|"]
    for k, r in streams.items():
        lines.append(f"| {k} | {fmt(r['events_per_sec'], 0)} | {fmt(r['cpu_seconds_per_million'])} |"
                     f" {fmt(r['peak_rss_mib'])} | {fmt(r['latency_ms_p99'])} |")
    lines += ["", "### Steady 5,000 events/s (1 KiB)", "",
              f"Peak RSS {fmt(steady['peak_rss_mib'])} MiB, CPU {fmt(steady['cpu_seconds_per_million'])} s per"
              f" million events, p50 {fmt(steady['latency_ms_p50'])} ms, p99 {fmt(steady['latency_ms_p99'])} ms,"
              f" {steady['events']:,} events.",
              "", "### Sink stalled", "",
              f"Every append held for the stall ({stall['events']:,} events served, 1 KiB, starting 2 s in):"
              f" RSS during the stall min {fmt(stall['stall_rss_mib_min'])} MiB, max {fmt(stall['stall_rss_mib_max'])} MiB;"
              f" peak over the run {fmt(stall['peak_rss_mib'])} MiB. Flow control (2,000 outstanding per stream) and"
              f" the bounded channel stop intake; after the stall all {stall['acked']:,} events were acked"
              f" ({stall['acked_more_than_once']} twice, {stall['never_acked']} never).",
              ""]
    lines += ["## Cross-check on the real emulators", ""]
    if emu:
        lines.append(f"mesh-ingest (release) on the Pub/Sub emulator + bqemulator, {emu['events']:,} events of ~1 KiB:"
                     f" {fmt(emu['events_per_sec'], 0)} events/s (the emulators' ceiling on this machine),"
                     f" {fmt(emu['cpu_seconds_per_million'])} CPU s per million events in mesh-ingest.")
    else:
        lines.append("Not run (emulator variables not set).")
    lines += ["", "## Semantic layer: state table vs whole-log view (bqemulator)", ""]
    if semantic:
        lines += [
            "`benches/semantic_cost.py`: an ingest log of N events about N/10 orders, 1% of them new since"
            " the last `materialize`. bqemulator runs DuckDB underneath: the times are DuckDB's on this"
            " machine, not BigQuery's; what carries over is how each grows with the history.",
            "",
            "| events in the log | objects | new (slice) | rows merged | first `materialize` (full) | incremental `materialize` | read via state table | read via whole-log view | ratio |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in semantic:
            lines.append(
                f"| {m['events']:,} | {m['objects']:,} | {m['slice']:,} | {m['merged']:,} | "
                f"{m['first_materialize_s']:.2f} s | {m['materialize_s']:.2f} s | "
                f"{m['state_read_s'] * 1000:.0f} ms | {m['history_read_s'] * 1000:.0f} ms | "
                f"{m['history_read_s'] / max(m['state_read_s'], 1e-6):.0f}× |")
    else:
        lines.append("Not run (emulator variables not set).")
    lines += ["", "## Raw reports", "", "```json"]
    extra = [] if not compare else [*compare["before"].values(), *[v for k, v in compare["now"].items() if k not in ingest]]
    for r in [*ingest.values(), *peer.values(), *streams.values(), steady, stall, *extra]:
        lines.append(json.dumps(r, sort_keys=True))
    if emu:
        lines.append(json.dumps({"label": "emulators", **emu}))
    for build, runs in memory.items():
        for r in runs:
            lines.append(json.dumps({"label": f"memory-{build}", **r}, sort_keys=True))
    lines += ["```", ""]
    text = doc.read_text() if doc.exists() else ""
    marker = "<!-- generated below: do not edit by hand -->"
    head = text.split(marker)[0] if marker in text else ""
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(head + marker + "\n" + "\n".join(lines))
    print(f"wrote {doc}", file=sys.stderr)


def envelope_len(size, fmt_name):
    # Approximate body length per format (the payload dominates); used only for MB/s columns.
    return size + {"json": 110, "attributes": 0, "cloudevents": 170}[fmt_name]


def row(r):
    return (f"| {r['label']} | {r['payload_bytes']} B | {r['events']:,} | {fmt(r['events_per_sec'], 0)} |"
            f" {fmt(r['cpu_seconds_per_million'])} | {fmt(r['events_per_cpu_second'], 0)} | {fmt(r['peak_rss_mib'])} |"
            f" {fmt(r['latency_ms_p50'])} | {fmt(r['latency_ms_p99'])} |")


if __name__ == "__main__":
    main()
