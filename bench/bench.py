#!/usr/bin/env python3
"""`make bench`: DELETE .../groups/{g}/users/{u} on both backends, beside its baselines.

Every figure is the median of BENCH_RUNS (3) independent, equal runs, with the spread
(min-max) beside it; each target is judged on the median.

Each backend is seeded once through the service's API (the embedded log in a temp data
dir; Kafka on a private Tansu broker on a free port), and the service (and for Kafka the
broker) stopped: the data dir (and the broker's store) is kept as a pristine copy, whose
log.db, read.db and -wal sizes are reported. Each run starts from a fresh copy of it
(`shutil.copytree`, then `os.sync()`, so that a run does not wait for the copy's write-back;
for Kafka the broker is started again on its store's copy, on the same
port, so the topic and the advertised listener stay the same), starts the service, waits
for GET /health/ready to answer 200, and measures with oha: GET /health at 500 req/s and
with 64 connections, then DELETE of seeded memberships at a fixed 500 req/s with latency
correction (on Kafka also at a second, sustainable rate) and saturated with 64 connections,
from disjoint pools, so no run lacks a membership another removed. Around each DELETE run
the service's (and the broker's) /proc/PID/io `write_bytes` is read, for the bytes written
to disk per removal (log and read model, WAL and checkpoints included); just before it is
stopped, its peak resident memory (VmHWM in /proc/PID/status). Then the service is started
again on that run's data dir, already projected, and timed from the spawn until
/health/ready answers 200 (the restart).

The baselines are run as many times, on the same machine in the same invocation: synced
SQLite inserts; on each Kafka run's broker, a raw rdkafka round trip at each fixed rate and
the broker saturated (64 records in flight in a closed loop, for as long as the saturated
DELETE run); a rebuild of a 1,000,000-event log. Prints a summary and writes
docs/benchmarks.md and docs/benchmarks-latency.svg, with bench/findings.md at its end.

Environment:
  BENCH_SCALE     scales the data set, the rebuild's log and the run lengths (default 1;
                  0.05 for a quick run)
  BENCH_RUNS      runs per figure (default 3)
  BENCH_KAFKA_SCALE  the Kafka backend's data set (default: BENCH_SCALE, at most 0.2)
  BENCH_KAFKA_LOW_RATE  the second, sustainable rate for Kafka (default 100 req/s)
  BENCH_REBUILD_TIMEOUT_S  stop a rebuild after this long and report its rate so far
                  (default 180)
  BENCH_OUT       the report (default docs/benchmarks.md; its plot goes beside it)
  BENCH_NOTE      a sentence for the report on what else ran on the machine
  BENCH_KEEP      set to keep the work dir (target/bench/run-*) with data and logs
  OHA, TANSU      the binaries (default: on PATH, else ~/.cargo/bin)
A run that stops part way keeps its work dir: `python3 bench/bench.py --resume
target/bench/run-...` goes on from its results.json, keeping the runs done and starting
the others from the seeded copies kept there (with the same settings).
Only the Python standard library is used.
"""

import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3")))
GROUPS = max(4, round(1000 * SCALE))
USERS = max(GROUPS, round(100_000 * SCALE))
REBUILD_EVENTS = max(10_000, round(1_000_000 * SCALE))
RATE = 500
# Tansu 0.6 with SQLite storage still slows down as its topics grow, even with the index
# `index_record_headers` adds (DELETE at 500 req/s: p50 19.8 ms on 10,000 memberships,
# 23.0 ms on 40,000), so the Kafka backend is seeded with a fifth of the data set by
# default, and is also measured at a second, lower rate.
KAFKA_SCALE = float(os.environ.get("BENCH_KAFKA_SCALE", min(SCALE, 0.2)))
KAFKA_GROUPS = max(4, round(1000 * KAFKA_SCALE))
KAFKA_USERS = max(KAFKA_GROUPS, round(100_000 * KAFKA_SCALE))
LOW_RATE = int(os.environ.get("BENCH_KAFKA_LOW_RATE", "100"))
REBUILD_TIMEOUT_S = int(os.environ.get("BENCH_REBUILD_TIMEOUT_S", "180"))
CONNECTIONS = 64
FIXED_S = max(5, round(30 * min(1.0, SCALE * 4)))
SATURATION_S = max(5, round(15 * min(1.0, SCALE * 4)))
HEALTH_S = max(5, round(10 * min(1.0, SCALE * 4)))
SQLITE_N = max(200, round(2000 * min(1.0, SCALE * 4)))
READY_TIMEOUT_S = 600  # the service's own catch-up limit (projector.catch_up_timeout_ms)
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "docs" / "benchmarks.md"))
SVG = OUT.with_name(OUT.stem + "-latency.svg")
# The release build of membershipd and the baselines binary, copied into the work dir at
# the start (`binaries`), so that every run uses the same two even if they are rebuilt.
# Where cargo builds them: CARGO_TARGET_DIR if set (relative to the root), else target/.
MEMBERSHIPD = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "membershipd"
BASELINES = None
COMMANDS = []  # every measuring command, as run
STARTED = time.monotonic()


def tool(env, name):
    found = os.environ.get(env) or shutil.which(name)
    if not found:
        found = str(Path.home() / ".cargo" / "bin" / name)
    if not os.access(found, os.X_OK):
        sys.exit(f"bench: no {name} binary (run `make oha` / `make tansu`)")
    return found


OHA = tool("OHA", "oha")
TANSU = tool("TANSU", "tansu")


class BenchError(Exception):
    """A measurement that could not be made (a process exited, a port never opened)."""


def log(*args):
    elapsed = int(time.monotonic() - STARTED)
    print(f"bench: [{elapsed // 60:02d}:{elapsed % 60:02d}]", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited early (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{what} did not listen on {port} within {timeout}s")


def wait_ready(port, proc, what, spawned):
    """Seconds from `spawned` (a time.monotonic()) until GET /health/ready answers 200,
    polled every 10 ms."""
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited early (status {proc.returncode})")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health/ready")
            answer = conn.getresponse()
            answer.read()
            conn.close()
            if answer.status == 200:
                return time.monotonic() - spawned
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() - spawned > READY_TIMEOUT_S:
            raise BenchError(f"{what} was not ready within {READY_TIMEOUT_S}s")
        time.sleep(0.01)


class Processes:
    """Every process started here, stopped by its own pid at the end."""

    def __init__(self):
        self.running = []

    def start(self, argv, log_path, **kwargs):
        out = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        out.close()
        self.running.append(proc)
        log(f"started {Path(argv[0]).name} pid {proc.pid} (log {log_path})")
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} did not stop within 30 s; killed")
                proc.kill()
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)
        return proc.returncode

    def stop_all(self):
        for proc in list(reversed(self.running)):
            self.stop(proc)


def vm_hwm_kib(pid):
    """The process's peak resident memory so far, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def write_bytes(pid):
    """Bytes the process (all its threads) caused to be written to storage so far."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return None


def binaries(work):
    """Copies membershipd and the baselines binary (built by `cargo bench --bench baselines
    --no-run`, which is asked for its path, and builds it if it is not up to date) into
    the work dir, and uses the copies from then on."""
    global MEMBERSHIPD, BASELINES
    if not (work / "membershipd").exists():
        if not os.access(MEMBERSHIPD, os.X_OK):
            sys.exit(f"bench: no {MEMBERSHIPD} (cargo build --release --bin membershipd)")
        out = subprocess.run(["cargo", "bench", "-q", "--bench", "baselines", "--no-run", "--message-format=json"],
                             cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.decode()
        # The bench's own executable: cargo builds (and lists) the package's binaries too.
        messages = [json.loads(line) for line in out.splitlines() if '"executable"' in line]
        built = [m["executable"] for m in messages
                 if m.get("executable") and m.get("target", {}).get("name") == "baselines"]
        if not built:
            sys.exit("bench: cargo did not say where the baselines binary is")
        shutil.copy2(MEMBERSHIPD, work / "membershipd")
        shutil.copy2(built[-1], work / "baselines")
    MEMBERSHIPD, BASELINES = work / "membershipd", work / "baselines"


def baselines(*args):
    argv = [str(BASELINES), *map(str, args)]
    COMMANDS.append(" ".join(argv))
    # From the package's root, as `cargo bench` runs it: it reads config/default.toml.
    out = subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out.decode().strip().splitlines()[-1])


def oha(url, *options, token=None):
    # The breakdown gives the percentiles of the 2xx answers alone.
    argv = [OHA, "--no-tui", "--output-format", "json", "--stats-success-breakdown", *options]
    if token:
        argv += ["-H", "Authorization: Bearer $TOKEN"]
    argv.append(url)
    COMMANDS.append(" ".join(argv))
    if token:
        argv = [a.replace("$TOKEN", token) for a in argv]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout
    result = json.loads(out)
    codes = {str(k): v for k, v in result["statusCodeDistribution"].items()}
    total_s = result["summary"]["total"]
    ok = result["latencyPercentilesSuccessful"]
    ms = lambda v: None if v is None else v * 1000.0  # noqa: E731
    return {
        "codes": codes,
        "errors": result.get("errorDistribution", {}),
        "seconds": total_s,
        "rps": result["summary"]["requestsPerSec"],
        "ok": sum(v for k, v in codes.items() if k.startswith("2")),
        "ok_per_s": sum(v for k, v in codes.items() if k.startswith("2")) / total_s,
        "p50": ms(ok.get("p50")),
        "p99": ms(ok.get("p99")),
        "p999": ms(ok.get("p99.9")),
    }


def token(port):
    """A client-credentials token of the bootstrap client."""
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": "membership-admin",
        "client_secret": os.environ["MEMBERSHIP_ADMIN_CLIENT_SECRET"]}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/authenticate/connect/token", body, timeout=30) as answer:
        return json.loads(answer.read())["access_token"]


def membership_urls(base, groups, users, pick):
    """The DELETE URLs of the seeded memberships `pick` selects: user i is in groups
    i % groups and (i + groups // 2) % groups (benches/baselines.rs, `seed`)."""
    api = f"{base}/api/management/security"
    urls = []
    for i in range(users):
        for j, g in enumerate((i % groups, (i + groups // 2) % groups)):
            if pick(i, j):
                urls.append(f"{api}/groups/bench-g{g:04d}/users/bench-u{i:06d}")
    return urls


# Disjoint pools of the seeded memberships, one per DELETE run: a quarter for the fixed
# rate, the rest for saturation (on Kafka, half of the rest for the sustainable rate). oha
# draws URLs at random with replacement, so a membership drawn twice answers 409 the second
# time; only 204s are counted.
POOLS = {
    "embedded": {"fixed": lambda i, j: j == 0 and i % 2 == 0,
                 "sat": lambda i, j: not (j == 0 and i % 2 == 0)},
    "kafka": {"fixed": lambda i, j: j == 0 and i % 2 == 0,
              "low": lambda i, j: j == 1 and i % 2 == 0,
              "sat": lambda i, j: i % 2 == 1},
}


def save(work, m, res):
    tmp = work / "results.json.tmp"
    tmp.write_text(json.dumps({"machine": m, "results": res}, indent=2))
    tmp.replace(work / "results.json")


def file_sizes(d, names):
    return {n: (d / n).stat().st_size if (d / n).exists() else 0 for n in names}


def service_env(data, port, kafka):
    env = dict(os.environ, MEMBERSHIP_HTTP_ADDR=f"127.0.0.1:{port}", MEMBERSHIP_DATA_DIR=str(data))
    env.pop("MEMBERSHIP_CONFIG", None)
    if kafka:
        env["MEMBERSHIP_KAFKA_BROKERS"] = kafka["brokers"]
        env["MEMBERSHIP_KAFKA_TOPIC"] = kafka["topic"]
    return env


def start_service(name, work, procs, data, port, kafka=None):
    """The service on `data`; returns it once /health/ready answers 200, with the seconds
    from its spawn until then."""
    env = service_env(data, port, kafka)
    spawned = time.monotonic()
    server = procs.start([str(MEMBERSHIPD), "serve"], work / f"{name}.log", env=env, cwd=ROOT)
    return server, wait_ready(port, server, f"membershipd ({name})", spawned)


class Broker:
    """Tansu on one port for the whole invocation, started on a store dir and stopped."""

    def __init__(self, work, procs, port):
        self.work, self.procs, self.port, self.proc = work, procs, port, None
        self.brokers = f"127.0.0.1:{port}"

    def start(self, store):
        argv = [TANSU, "broker", "--storage-engine", "sqlite://tansu.db",
                "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}"]
        # The port was in use a moment ago (the previous run's broker): a few tries.
        for attempt in range(5):
            self.proc = self.procs.start(argv, self.work / "tansu.log", cwd=store)
            try:
                wait_for_port(self.port, self.proc, "tansu")
                break
            except BenchError:
                self.procs.stop(self.proc)
                if attempt == 4:
                    raise
                time.sleep(2)
        index_record_headers(store / "tansu.db")

    def stop(self):
        if self.proc:
            self.procs.stop(self.proc)
            self.proc = None


def index_record_headers(db):
    """Tansu 0.6 keeps record headers in a table without an index, and reads a fetched
    record's headers with a scan of that table: every record fetched costs a pass over the
    headers of every record stored, so the broker slows down as its topics grow (the
    service's records carry six CloudEvents headers each). The index it lacks, added beside
    the running broker, makes that a lookup; the broker is otherwise unchanged, and the
    baselines run on it too. It is kept in the store's copies."""
    deadline = time.time() + 30
    while True:
        conn = sqlite3.connect(db, timeout=10)
        try:
            conn.execute("CREATE INDEX IF NOT EXISTS header_by_record ON header (topition, offset_id)")
            conn.commit()
            return
        except sqlite3.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)  # the broker has not made its tables yet
        finally:
            conn.close()


def seed(name, work, procs, r, kafka=None, broker=None):
    """Seeds `name` once, stops it (and the broker), and keeps the data dir (and the
    broker's store) as the pristine copies every run starts from."""
    data, pristine = work / f"{name}-seed", work / f"{name}-pristine"
    for d in (data, pristine):
        shutil.rmtree(d, ignore_errors=True)
    data.mkdir()
    port = free_port()
    server, _ = start_service(name, work, procs, data, port, kafka)
    groups, users = (KAFKA_GROUPS, KAFKA_USERS) if kafka else (GROUPS, USERS)
    log(f"{name}: seeding {groups} groups, {users} users, {2 * users} memberships")
    # Bulk adds one at a time on Kafka: several at once (hundreds of records in flight)
    # make Tansu 0.6 panic in its idempotent-producer check (see docs/benchmarks.md).
    seeded = baselines("seed", f"http://127.0.0.1:{port}", groups, users, 1 if kafka else 8)
    seeded.pop("token")
    log(f"{name}: seeded {json.dumps(seeded)}")
    status = procs.stop(server)
    if status != 0:
        raise BenchError(f"membershipd ({name}) stopped with status {status} after seeding")
    data.rename(pristine)
    r["sizes"] = file_sizes(pristine, ("log.db", "log.db-wal", "read.db", "read.db-wal"))
    if broker:
        broker.stop()
        shutil.rmtree(work / "tansu-pristine", ignore_errors=True)
        (work / "tansu-seed").rename(work / "tansu-pristine")
        r["broker_sizes"] = file_sizes(work / "tansu-pristine", ("tansu.db", "tansu.db-wal"))
    r["seed"] = seeded  # last: the mark that the copies are complete


def delete_run(server, broker, url_file, options, tok, rate_text):
    """One oha DELETE run, with the disk writes of the service (and the broker) around it."""
    before = write_bytes(server.pid), broker and write_bytes(broker.proc.pid)
    result = oha(str(url_file), "--urls-from-file", "-m", "DELETE", *options,
                 "-c", str(CONNECTIONS), "-w", token=tok)
    after = write_bytes(server.pid), broker and write_bytes(broker.proc.pid)
    result["written_bytes"] = after[0] - before[0]
    result["written_per_removal"] = result["written_bytes"] / result["ok"] if result["ok"] else None
    if broker:
        result["broker_written_bytes"] = after[1] - before[1]
        result["broker_written_per_removal"] = result["broker_written_bytes"] / result["ok"] if result["ok"] else None
    log(f"  {rate_text}: {result['ok_per_s']:.0f} 204/s, p50 {result['p50']} ms, p99 {result['p99']} ms, "
        f"{result['written_per_removal'] or 0:.0f} bytes written per removal")
    return result


def service_run(name, work, procs, kafka=None, broker=None):
    """One run of `name` from a fresh copy of its seeded data dir."""
    data = work / f"{name}-run"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(work / f"{name}-pristine", data)
    # The copy's pages on disk before the run, so that the run's syncs do not wait for
    # the copy's write-back (at full scale it put 70 ms stalls in the first second).
    os.sync()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    groups, users = (KAFKA_GROUPS, KAFKA_USERS) if kafka else (GROUPS, USERS)
    urls = {}
    for run, pick in POOLS[name].items():
        urls[run] = work / f"{name}-{run}.urls"
        urls[run].write_text("\n".join(membership_urls(base, groups, users, pick)) + "\n")
    server, ready_s = start_service(name, work, procs, data, port, kafka)
    r = {"ready_s": ready_s}
    tok = token(port)
    log(f"{name}: ready {ready_s:.2f}s after the start; health at {RATE} req/s")
    r["health_fixed"] = oha(f"{base}/health", "-q", str(RATE), "--latency-correction",
                            "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w")
    log(f"{name}: health with {CONNECTIONS} connections")
    r["health_sat"] = oha(f"{base}/health", "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w")
    log(f"{name}: DELETE at {RATE} req/s for {FIXED_S}s")
    fixed = ["-q", str(RATE), "--latency-correction", "-z", f"{FIXED_S}s"]
    r["fixed"] = delete_run(server, broker, urls["fixed"], fixed, tok, f"{RATE} req/s")
    if "low" in urls:
        log(f"{name}: DELETE at {LOW_RATE} req/s for {FIXED_S}s")
        low = ["-q", str(LOW_RATE), "--latency-correction", "-z", f"{FIXED_S}s"]
        r["low"] = delete_run(server, broker, urls["low"], low, tok, f"{LOW_RATE} req/s")
    log(f"{name}: DELETE with {CONNECTIONS} connections for {SATURATION_S}s")
    r["sat"] = delete_run(server, broker, urls["sat"], ["-z", f"{SATURATION_S}s"], tok,
                          f"{CONNECTIONS} connections")
    r["vm_hwm_kib"] = vm_hwm_kib(server.pid)
    if broker:
        r["broker_vm_hwm_kib"] = vm_hwm_kib(broker.proc.pid)
    status = procs.stop(server)
    if status != 0:
        raise BenchError(f"membershipd ({name}) stopped with status {status}")
    r["sizes_after"] = file_sizes(data, ("log.db", "log.db-wal", "read.db", "read.db-wal"))
    # The restart: the same data dir, already projected.
    server, r["restart_s"] = start_service(name, work, procs, data, free_port(), kafka)
    procs.stop(server)
    log(f"{name}: restart ready in {r['restart_s']:.3f}s; peak RSS {r['vm_hwm_kib'] / 1024:.0f} MiB")
    if not kafka:
        conn = sqlite3.connect(data / "log.db")  # the run's copy, removed with the next
        r["payload_bytes"] = round(conn.execute(
            "SELECT avg(length(payload)) FROM events WHERE type = 'MemberRemoved'").fetchone()[0])
        conn.close()
    return r


def round_trip(brokers, rate, payload):
    """The raw round trip; a run in which records did not come back (the broker failed)
    measures nothing and is reported as failed rather than as figures."""
    rt = baselines("kafka", brokers, rate, FIXED_S, payload)
    if rt["round_trip_ms"]["count"] < 0.99 * rt["records"]:
        raise RuntimeError(f"at {rate}/s only {back(rt)}; see the broker's log")
    return rt


def round_trip_saturated(brokers, payload):
    rt = baselines("kafka", brokers, "closed", CONNECTIONS, SATURATION_S, payload)
    if rt["round_trip_ms"]["count"] < 0.99 * rt["records"]:
        raise RuntimeError(f"with {CONNECTIONS} in flight only {back(rt)}; see the broker's log")
    return rt


def embedded(work, procs, m, res):
    r = res.setdefault("embedded", {"runs": []})
    if "seed" not in r or not (work / "embedded-pristine").exists():
        r["runs"] = []
        seed("embedded", work, procs, r)
        save(work, m, res)
    while len(r["runs"]) < RUNS:
        log(f"embedded: run {len(r['runs']) + 1} of {RUNS}")
        r["runs"].append(service_run("embedded", work, procs))
        save(work, m, res)
    r["payload_bytes"] = r["runs"][0]["payload_bytes"]


def sqlite_baselines(work, procs, m, res):
    payload = res["embedded"]["payload_bytes"]
    for key, count, batch in (("sqlite_1", SQLITE_N, 1), ("sqlite_64", SQLITE_N * 64, 64)):
        runs = res.setdefault(key, [])
        while len(runs) < RUNS:
            log(f"sqlite: synced inserts of {payload} bytes, {batch} per transaction, run {len(runs) + 1} of {RUNS}")
            runs.append(baselines("sqlite", work, payload, count, batch))
            save(work, m, res)


def kafka(work, procs, m, res):
    """The Kafka backend and the broker's baselines, run by run on a restored broker."""
    payload = res["embedded"]["payload_bytes"]
    res.pop("kafka_failed", None)
    k = res.setdefault("kafka", {"runs": []})
    port = k.setdefault("broker_port", free_port())
    broker = Broker(work, procs, port)
    save(work, m, res)
    try:
        if "seed" not in k or not (work / "tansu-pristine").exists() or not (work / "kafka-pristine").exists():
            k["runs"] = []
            shutil.rmtree(work / "tansu-seed", ignore_errors=True)
            (work / "tansu-seed").mkdir()
            broker.start(work / "tansu-seed")
            k["topic"] = f"bench.kafka.{port}"
            seed("kafka", work, procs, k, {"brokers": broker.brokers, "topic": k["topic"]}, broker)
            save(work, m, res)
        spec = {"brokers": broker.brokers, "topic": k["topic"]}
        while len(k["runs"]) < RUNS:
            log(f"kafka: run {len(k['runs']) + 1} of {RUNS}")
            store = work / "tansu-run"
            shutil.rmtree(store, ignore_errors=True)
            shutil.copytree(work / "tansu-pristine", store)
            os.sync()
            broker.start(store)
            r = service_run("kafka", work, procs, spec, broker)
            for key, what, measure in (
                    ("roundtrip", f"at {RATE}/s for {FIXED_S}s", lambda: round_trip(broker.brokers, RATE, payload)),
                    ("roundtrip_low", f"at {LOW_RATE}/s for {FIXED_S}s", lambda: round_trip(broker.brokers, LOW_RATE, payload)),
                    ("roundtrip_sat", f"with {CONNECTIONS} in flight for {SATURATION_S}s", lambda: round_trip_saturated(broker.brokers, payload))):
                log(f"kafka: raw round trip {what}")
                try:
                    r[key] = measure()
                except (subprocess.CalledProcessError, RuntimeError) as e:
                    r[f"{key}_failed"] = f"{e}"
                    log(f"kafka: the round trip {what} FAILED ({e})")
            broker.stop()
            k["runs"].append(r)
            save(work, m, res)
    except (subprocess.CalledProcessError, BenchError, urllib.error.URLError) as e:
        res["kafka_failed"] = f"{e}"
        log(f"kafka: FAILED ({e}); the broker's log: {work / 'tansu.log'}")
    finally:
        broker.stop()
    save(work, m, res)


def rebuild(work, procs, m, res):
    d = work / "rebuild"
    rb = res.setdefault("rebuild", {"runs": []})
    if "written" not in rb or not (d / "log.db").exists():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        log(f"rebuild: writing {REBUILD_EVENTS} events into {d / 'log.db'}")
        rb["written"] = baselines("eventlog", d / "log.db", REBUILD_EVENTS)
        rb["runs"] = []
        save(work, m, res)
    while len(rb["runs"]) < RUNS:
        log(f"rebuild: run {len(rb['runs']) + 1} of {RUNS}, at most {REBUILD_TIMEOUT_S}s")
        rb["runs"].append(rebuild_once(d))
        save(work, m, res)


def rebuild_once(d):
    into = d / "read.rebuilt.db"  # removed by the rebuild before it starts
    argv = [str(MEMBERSHIPD), "rebuild", "--into", str(into)]
    COMMANDS.append(f"MEMBERSHIP_DATA_DIR={d} " + " ".join(argv))
    env = dict(os.environ, MEMBERSHIP_DATA_DIR=str(d), RUST_LOG="warn")
    started = time.time()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        out = proc.communicate(timeout=REBUILD_TIMEOUT_S)[0].decode()
    except subprocess.TimeoutExpired:
        # Unfinished: the rate so far, from the positions the rebuild committed (every
        # 10,000 events, with the changes).
        seconds = time.time() - started
        proc.kill()
        proc.wait()
        conn = sqlite3.connect(into)
        events = sum(o for (o,) in conn.execute("SELECT offset FROM positions"))
        conn.close()
        return {"events": events, "seconds": seconds, "events_per_s": events / seconds, "finished": False}
    if proc.returncode != 0:
        raise BenchError(f"the rebuild failed with status {proc.returncode}")
    found = re.search(r"from (\d+) log entries in ([\d.]+)(ms|s|µs)", out)
    if not found:
        raise BenchError(f"cannot read the rebuild's output: {out}")
    seconds = float(found.group(2)) / {"s": 1, "ms": 1e3, "µs": 1e6}[found.group(3)]
    events = int(found.group(1))
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds, "finished": True}


def sh(*argv):
    try:
        return subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=True).stdout.decode().strip()
    except Exception:
        return "?"


def settings():
    return {"scale": SCALE, "runs": RUNS, "kafka_scale": KAFKA_SCALE, "low_rate": LOW_RATE,
            "rebuild_timeout_s": REBUILD_TIMEOUT_S}


def machine():
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    dirty = sh("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": sh("nproc"), "cpu": model, "kernel": platform.release(),
        "commit": sh("git", "rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else ""),
        "load": Path("/proc/loadavg").read_text().split()[:3],
        "oha": sh(OHA, "--version"), "tansu": sh(TANSU, "--version"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": settings(),
    }


def main():
    if sys.argv[1:2] == ["--resume"]:
        work = Path(sys.argv[2]).resolve()
        saved = json.loads((work / "results.json").read_text())
        m, res = saved["machine"], saved["results"]
        if m.get("settings") != settings():
            sys.exit(f"bench: {work} was run with {m.get('settings')}, not {settings()}: "
                     "set the same BENCH_* variables to resume it")
        os.environ["MEMBERSHIP_ADMIN_CLIENT_SECRET"] = (work / "secret").read_text().strip()
        if "minutes" in m:
            report(m, res)  # only the report again, from the saved results
            return
        started = time.time() - m.get("minutes_so_far", 0) * 60
    else:
        work = ROOT / "target" / "bench" / time.strftime("run-%Y%m%d-%H%M%S")
        work.mkdir(parents=True)
        m, res, started = machine(), {}, time.time()
        # The bootstrap client's secret for this run, which the seeder (benches/baselines.rs)
        # reads from the same variable; kept for --resume.
        os.environ.setdefault("MEMBERSHIP_ADMIN_CLIENT_SECRET", secrets.token_hex(32))
        (work / "secret").write_text(os.environ["MEMBERSHIP_ADMIN_CLIENT_SECRET"])
        (work / "secret").chmod(0o600)
    binaries(work)
    procs = Processes()
    try:
        for phase in (embedded, sqlite_baselines, kafka, rebuild):
            phase(work, procs, m, res)
            m["minutes_so_far"] = (time.time() - started) / 60
            save(work, m, res)
    except BaseException:
        log(f"stopped part way; the work dir is kept: `python3 bench/bench.py --resume {work}` goes on")
        raise
    finally:
        procs.stop_all()
    m["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    m["minutes"] = (time.time() - started) / 60
    save(work, m, res)
    report(m, res)
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work}")


def command_templates():
    """The measuring commands, with the run's ports, paths and token as placeholders."""
    auth = ["-H", "'Authorization: Bearer $TOKEN'"]
    o = ["oha", "--no-tui", "--output-format", "json", "--stats-success-breakdown"]
    delete = ["--urls-from-file", "-m", "DELETE"]
    fixed = [*delete, "-q", str(RATE), "--latency-correction", "-z", f"{FIXED_S}s", "-c", str(CONNECTIONS), "-w", *auth]
    low = [*delete, "-q", str(LOW_RATE), "--latency-correction", "-z", f"{FIXED_S}s", "-c", str(CONNECTIONS), "-w", *auth]
    sat = [*delete, "-z", f"{SATURATION_S}s", "-c", str(CONNECTIONS), "-w", *auth]
    serve = "MEMBERSHIP_HTTP_ADDR=127.0.0.1:$PORT MEMBERSHIP_DATA_DIR=$WORK/{dir} {kafka}$WORK/membershipd serve"
    on_kafka = "MEMBERSHIP_KAFKA_BROKERS=127.0.0.1:$BROKER_PORT MEMBERSHIP_KAFKA_TOPIC=bench.kafka.$BROKER_PORT "
    tansu = ("(cd $WORK/{dir} && tansu broker --storage-engine sqlite://tansu.db --listener-url tcp://127.0.0.1:$BROKER_PORT "
             "--advertised-listener-url tcp://127.0.0.1:$BROKER_PORT)")
    ready = "(until GET http://127.0.0.1:$PORT/health/ready answers 200)"
    run = [
        "  " + " ".join([*o, "-q", str(RATE), "--latency-correction", "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w", "http://127.0.0.1:$PORT/health"]),
        "  " + " ".join([*o, "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w", "http://127.0.0.1:$PORT/health"]),
        "  " + " ".join([*o, *fixed, "$WORK/$BACKEND-fixed.urls"]) + "   # write_bytes of /proc/$PID/io before and after",
        "  " + " ".join([*o, *low, "$WORK/kafka-low.urls"]) + "   # kafka only",
        "  " + " ".join([*o, *sat, "$WORK/$BACKEND-sat.urls"]) + "   # write_bytes before and after",
        "  (VmHWM of /proc/$PID/status; stop the service with SIGTERM)",
        "  " + serve.format(dir="$BACKEND-run", kafka="[...] ") + "   # the restart: timed from the spawn " + ready,
    ]
    return [
        "# embedded: seeded once, then stopped and kept as $WORK/embedded-pristine",
        serve.format(dir="embedded-seed", kafka=""),
        f"$WORK/baselines seed http://127.0.0.1:$PORT {GROUPS} {USERS} 8",
        f"# each of {RUNS} runs (BACKEND=embedded):",
        "  cp -a $WORK/embedded-pristine $WORK/embedded-run",
        "  " + serve.format(dir="embedded-run", kafka="") + "   " + ready,
        "  (a token: POST /authenticate/connect/token, client_credentials)",
        *run,
        f"# {RUNS} times each:",
        f"$WORK/baselines sqlite $WORK $PAYLOAD_BYTES {SQLITE_N} 1",
        f"$WORK/baselines sqlite $WORK $PAYLOAD_BYTES {SQLITE_N * 64} 64",
        "# kafka: seeded once on a broker of its own, then both stopped and kept as $WORK/kafka-pristine, $WORK/tansu-pristine",
        tansu.format(dir="tansu-seed"),
        "python3 -c 'import sqlite3; sqlite3.connect(\"$WORK/tansu-seed/tansu.db\").execute(\"CREATE INDEX IF NOT EXISTS "
        "header_by_record ON header (topition, offset_id)\")'   # see Findings",
        serve.format(dir="kafka-seed", kafka=on_kafka),
        f"$WORK/baselines seed http://127.0.0.1:$PORT {KAFKA_GROUPS} {KAFKA_USERS} 1",
        f"# each of {RUNS} runs (BACKEND=kafka), the broker's write_bytes and VmHWM read beside the service's:",
        "  cp -a $WORK/tansu-pristine $WORK/tansu-run; cp -a $WORK/kafka-pristine $WORK/kafka-run",
        "  " + tansu.format(dir="tansu-run") + "   # the same $BROKER_PORT",
        "  " + serve.format(dir="kafka-run", kafka=on_kafka) + "   " + ready,
        "  (the same commands as on the embedded log, then:)",
        f"  $WORK/baselines kafka 127.0.0.1:$BROKER_PORT {RATE} {FIXED_S} $PAYLOAD_BYTES",
        f"  $WORK/baselines kafka 127.0.0.1:$BROKER_PORT {LOW_RATE} {FIXED_S} $PAYLOAD_BYTES",
        f"  $WORK/baselines kafka 127.0.0.1:$BROKER_PORT closed {CONNECTIONS} {SATURATION_S} $PAYLOAD_BYTES",
        "  (stop the broker)",
        f"$WORK/baselines eventlog $WORK/rebuild/log.db {REBUILD_EVENTS}",
        f"MEMBERSHIP_DATA_DIR=$WORK/rebuild $WORK/membershipd rebuild --into $WORK/rebuild/read.rebuilt.db   # {RUNS} times",
    ]


def settings_note():
    names = ("BENCH_RUNS", "BENCH_KAFKA_SCALE", "BENCH_KAFKA_LOW_RATE", "BENCH_REBUILD_TIMEOUT_S")
    return "".join(f" {n}={os.environ[n]}" for n in names if n in os.environ)


def back(rt):
    return f"{rt['round_trip_ms']['count']:,} of {rt['records']:,} came back"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"


def f(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def pick(items, *keys):
    """The number at `keys` in each of `items` that has one."""
    out = []
    for item in items:
        for k in keys:
            item = item.get(k) if isinstance(item, dict) else None
        if isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item):
            out.append(item)
    return out


def med(items, *keys):
    values = pick(items, *keys)
    return statistics.median(values) if values else None


def spread(values, digits=2, scale=1.0):
    """`median (min–max)` of the values; the median alone for one."""
    if not values:
        return "n/a"
    values = [v * scale for v in values]
    text = f(statistics.median(values), digits)
    if len(values) > 1:
        text += f" ({f(min(values), digits)}–{f(max(values), digits)})"
    return text


def cell(items, *keys, digits=2, scale=1.0):
    return spread(pick(items, *keys), digits, scale)


def runs_of(res, name):
    return res.get(name, {}).get("runs", [])


def kafka_baseline(res, key):
    return [r[key] for r in runs_of(res, "kafka") if key in r]


def of_runs(items):
    """How many runs a verdict's numbers come from, when fewer than asked for."""
    return "" if len(items) >= RUNS else f"; from {len(items)} of {RUNS} runs"


def verdicts(res):
    out = []

    def check(what, ok, numbers):
        out.append((what, "NOT MEASURED" if ok is None else "met" if ok else "MISSED", numbers))

    e = runs_of(res, "embedded")
    p99, p999 = med(e, "fixed", "p99"), med(e, "fixed", "p999")
    check("embedded DELETE, 500 req/s: p99 <= 5 ms and p99.9 <= 20 ms",
          None if p99 is None or p999 is None else p99 <= 5 and p999 <= 20,
          f"p99 {cell(e, 'fixed', 'p99')} ms, p99.9 {cell(e, 'fixed', 'p999')} ms{of_runs(e)}")
    rate, p99 = med(e, "sat", "ok_per_s"), med(e, "sat", "p99")
    check(f"embedded DELETE, {CONNECTIONS} connections: >= 10,000 removals/s with p99 <= 25 ms",
          None if rate is None or p99 is None else rate >= 10_000 and p99 <= 25,
          f"{cell(e, 'sat', 'ok_per_s')} removals/s, p99 {cell(e, 'sat', 'p99')} ms{of_runs(e)}")
    rb = res.get("rebuild", {})
    rebuilt = rb.get("runs", [])
    events = rb.get("written", {}).get("events", REBUILD_EVENTS)
    rate = med(rebuilt, "events_per_s")
    check(f"projector rebuild of the {events:,}-event log: >= 100,000 events/s",
          None if rate is None else rate >= 100_000,
          f"{cell(rebuilt, 'events_per_s')} events/s{of_runs(rebuilt)}")
    for name in ("embedded", "kafka"):
        runs = runs_of(res, name)
        restart = med(runs, "restart_s")
        check(f"{name}: a restart on a projected data dir serves (/health/ready 200) within 1 s",
              None if restart is None else restart <= 1.0,
              f"{cell(runs, 'restart_s', digits=3)} s{of_runs(runs)}" if runs else res.get("kafka_failed", "no runs"))
    sizes = res.get("embedded", {}).get("sizes")
    if sizes:
        read, logged = sizes["read.db"] + sizes["read.db-wal"], sizes["log.db"] + sizes["log.db-wal"]
        check("read.db <= log.db at the bench data set (each with its -wal)", read <= logged,
              f"read.db {mib(sizes['read.db'])} + -wal {mib(sizes['read.db-wal'])} = {mib(read)} MiB, "
              f"log.db {mib(sizes['log.db'])} + -wal {mib(sizes['log.db-wal'])} = {mib(logged)} MiB")
    else:
        check("read.db <= log.db at the bench data set (each with its -wal)", None, "no seeded data dir")
    k = runs_of(res, "kafka")
    for run, rate, baseline in (("fixed", RATE, "roundtrip"), ("low", LOW_RATE, "roundtrip_low")):
        rt = kafka_baseline(res, baseline)
        p50, limit = med(k, run, "p50"), med(rt, "round_trip_ms", "p50")
        check(f"kafka DELETE, {rate} req/s: p50 <= round-trip p50 + 1 ms",
              None if p50 is None or limit is None else p50 <= limit + 1,
              f"p50 {cell(k, run, 'p50')} ms vs limit {f(limit + 1) if limit is not None else 'n/a'} ms "
              f"(round trip p50 {cell(rt, 'round_trip_ms', 'p50')}){of_runs(min(k, rt, key=len))}"
              if k and rt else res.get("kafka_failed") or failure(res, baseline))
    rt = kafka_baseline(res, "roundtrip_sat")
    if k and rt:
        out.append((f"kafka DELETE vs the broker, both with {CONNECTIONS} in flight (no target)", "info",
                    f"{cell(k, 'sat', 'ok_per_s')} removals/s (p99 {cell(k, 'sat', 'p99')} ms) vs "
                    f"{cell(rt, 'rate')} round trips/s (p99 {cell(rt, 'round_trip_ms', 'p99')} ms): "
                    f"{ratio(med(k, 'sat', 'ok_per_s'), med(rt, 'rate'))} of the broker's rate"))
    return out


def failure(res, key):
    for r in runs_of(res, "kafka"):
        if f"{key}_failed" in r:
            return r[f"{key}_failed"]
    return "not measured"


def mib(n):
    return f"{n / 2**20:.1f}"


def backends(res):
    return [name for name in ("embedded", "kafka") if runs_of(res, name)]


def row(label, items, lat, rate=None, unit="", note=""):
    """A results row: the p50, p99 and p99.9 at `lat` (keys to a dict of them), the rate
    at `rate`, each as median (min–max) over `items`."""
    cells = [cell(items, *lat, k) for k in ("p50", "p99", "p999")] if lat else ["", "", ""]
    per = (cell(items, *rate) + unit) if rate else ""
    return f"| {label} | {len(items)} | {' | '.join(cells)} | {per} | {note} |"


def summary_lines(res):
    s1, s64 = res.get("sqlite_1", []), res.get("sqlite_64", [])
    lines = ["| measurement | runs | p50 ms | p99 ms | p99.9 ms | per second | ratio of medians to the baseline |",
             "|---|---|---|---|---|---|---|"]
    for name in backends(res):
        r = runs_of(res, name)
        hf = lambda k: med(r, "health_fixed", k)  # noqa: E731
        hs = lambda k: med(r, "health_sat", k)  # noqa: E731
        fx = lambda k: med(r, "fixed", k)  # noqa: E731
        st = lambda k: med(r, "sat", k)  # noqa: E731
        lines.append(row(f"{name}: GET /health, {RATE} req/s", r, ("health_fixed",), ("health_fixed", "ok_per_s"), note="(baseline)"))
        lines.append(row(f"{name}: DELETE, {RATE} req/s", r, ("fixed",), ("fixed", "ok_per_s"), " 204/s",
                         f"to /health: p50 {ratio(fx('p50'), hf('p50'))}, p99 {ratio(fx('p99'), hf('p99'))}, p99.9 {ratio(fx('p999'), hf('p999'))}"))
        lines.append(row(f"{name}: GET /health, {CONNECTIONS} connections", r, ("health_sat",), ("health_sat", "ok_per_s"), note="(baseline)"))
        lines.append(row(f"{name}: DELETE, {CONNECTIONS} connections", r, ("sat",), ("sat", "ok_per_s"), " 204/s",
                         f"to /health: throughput {ratio(st('ok_per_s'), hs('ok_per_s'))}, p99 {ratio(st('p99'), hs('p99'))}"))
        if name == "embedded":
            lines.append(row("disk: synced insert, 1 row per transaction", s1, ("commit_ms",), ("rows_per_s",), " rows/s",
                             f"DELETE at {RATE}/s p50 to it: {ratio(fx('p50'), med(s1, 'commit_ms', 'p50'))}"))
            lines.append(row("disk: synced insert, 64 rows per transaction", s64, ("commit_ms",), ("rows_per_s",), " rows/s",
                             f"saturated DELETE to it: {ratio(st('ok_per_s'), med(s64, 'rows_per_s'))}"))
            continue
        rt, rl, rs = (kafka_baseline(res, key) for key in ("roundtrip", "roundtrip_low", "roundtrip_sat"))
        if rs:
            lines.append(row(f"broker: produce to delivery, {CONNECTIONS} in flight", rs, ("delivery_ms",), ("rate",), " round trips/s",
                             f"DELETE to it: p50 {ratio(st('p50'), med(rs, 'delivery_ms', 'p50'))}, p99 {ratio(st('p99'), med(rs, 'delivery_ms', 'p99'))}"))
            lines.append(row(f"broker: produce then consume, {CONNECTIONS} in flight", rs, ("round_trip_ms",), ("rate",), " round trips/s",
                             f"DELETE to it: throughput {ratio(st('ok_per_s'), med(rs, 'rate'))}, p50 {ratio(st('p50'), med(rs, 'round_trip_ms', 'p50'))}, "
                             f"p99 {ratio(st('p99'), med(rs, 'round_trip_ms', 'p99'))}"))
        if rt:
            lines.append(row(f"broker: produce to delivery, {RATE}/s", rt, ("delivery_ms",), ("rate",), "",
                             f"DELETE to it: p50 {ratio(fx('p50'), med(rt, 'delivery_ms', 'p50'))}, p99 {ratio(fx('p99'), med(rt, 'delivery_ms', 'p99'))}"))
            lines.append(row(f"broker: produce then consume, {RATE}/s", rt, ("round_trip_ms",), ("rate",), "",
                             f"DELETE to it: p50 {ratio(fx('p50'), med(rt, 'round_trip_ms', 'p50'))}, p99 {ratio(fx('p99'), med(rt, 'round_trip_ms', 'p99'))}, "
                             f"p99.9 {ratio(fx('p999'), med(rt, 'round_trip_ms', 'p999'))}"))
        lw = lambda k: med(r, "low", k)  # noqa: E731
        if pick(r, "low", "p50"):
            lines.append(row(f"{name}: DELETE, {LOW_RATE} req/s", r, ("low",), ("low", "ok_per_s"), " 204/s",
                             f"to the round trip below: p50 {ratio(lw('p50'), med(rl, 'round_trip_ms', 'p50'))}, "
                             f"p99 {ratio(lw('p99'), med(rl, 'round_trip_ms', 'p99'))}, p99.9 {ratio(lw('p999'), med(rl, 'round_trip_ms', 'p999'))}"))
        if rl:
            lines.append(row(f"broker: produce to delivery, {LOW_RATE}/s", rl, ("delivery_ms",), ("rate",), "",
                             f"DELETE to it: p50 {ratio(lw('p50'), med(rl, 'delivery_ms', 'p50'))}, p99 {ratio(lw('p99'), med(rl, 'delivery_ms', 'p99'))}"))
            lines.append(row(f"broker: produce then consume, {LOW_RATE}/s", rl, ("round_trip_ms",), ("rate",), "", "(baseline)"))
    rb = res.get("rebuild", {})
    rebuilt = rb.get("runs", [])
    if rebuilt:
        unfinished = [x for x in rebuilt if not x.get("finished", True)]
        done = f" ({len(unfinished)} stopped after {REBUILD_TIMEOUT_S} s)" if unfinished else ""
        events = rb.get("written", {}).get("events", REBUILD_EVENTS)
        lines.append(row(f"projector: rebuild of {events:,} events{done}", rebuilt, None, ("events_per_s",), " events/s",
                         f"to the 100,000/s target: {ratio(med(rebuilt, 'events_per_s'), 100_000)}"))
    return lines


def resource_lines(res):
    """Memory, disk writes per removal and start-up times, per backend."""
    lines = ["| process | runs | peak resident memory, MiB | bytes written per removal, "
             f"{RATE} req/s | {LOW_RATE} req/s (kafka) | {CONNECTIONS} connections | from a fresh copy until ready, s | restart until ready, s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in backends(res):
        r = runs_of(res, name)
        low = cell(r, "low", "written_per_removal", digits=0) if name == "kafka" else ""
        lines.append(f"| membershipd, {name} | {len(r)} | {cell(r, 'vm_hwm_kib', digits=1, scale=1 / 1024)} | "
                     f"{cell(r, 'fixed', 'written_per_removal', digits=0)} | {low} | {cell(r, 'sat', 'written_per_removal', digits=0)} | "
                     f"{cell(r, 'ready_s', digits=3)} | {cell(r, 'restart_s', digits=3)} |")
        if name == "kafka":
            lines.append(f"| Tansu, the broker of the runs above | {len(r)} | {cell(r, 'broker_vm_hwm_kib', digits=1, scale=1 / 1024)} | "
                         f"{cell(r, 'fixed', 'broker_written_per_removal', digits=0)} | {cell(r, 'low', 'broker_written_per_removal', digits=0)} | "
                         f"{cell(r, 'sat', 'broker_written_per_removal', digits=0)} | | |")
    return lines


def size_lines(res):
    lines = ["| data dir | log.db | log.db-wal | read.db | read.db-wal |", "|---|---|---|---|---|"]
    e = res.get("embedded", {})
    if "sizes" in e:
        s = e["sizes"]
        lines.append(f"| embedded, seeded ({GROUPS:,} groups, {USERS:,} users, {2 * USERS:,} memberships) | "
                     f"{mib(s['log.db'])} | {mib(s['log.db-wal'])} | {mib(s['read.db'])} | {mib(s['read.db-wal'])} |")
        after = [x["sizes_after"] for x in runs_of(res, "embedded") if "sizes_after" in x]
        if after:
            lines.append(f"| embedded, after a run ({len(after)} runs) | " + " | ".join(
                spread([a[n] for a in after], 1, 1 / 2**20) for n in ("log.db", "log.db-wal", "read.db", "read.db-wal")) + " |")
    k = res.get("kafka", {})
    if "sizes" in k:
        s, b = k["sizes"], k.get("broker_sizes", {})
        lines.append(f"| kafka, seeded ({KAFKA_GROUPS:,} groups, {KAFKA_USERS:,} users, {2 * KAFKA_USERS:,} memberships); "
                     f"the log column is the broker's store, tansu.db | {mib(b.get('tansu.db', 0))} | {mib(b.get('tansu.db-wal', 0))} | "
                     f"{mib(s['read.db'])} | {mib(s['read.db-wal'])} |")
    return lines


def svg_plot(res):
    """Latency percentiles at the fixed rate beside their baselines (log scale): the bar is
    the median, the line across it the runs' min–max."""
    e, k = runs_of(res, "embedded"), runs_of(res, "kafka")
    rows = [
        ("embedded DELETE", e, ("fixed",)),
        ("embedded /health", e, ("health_fixed",)),
        ("synced insert", res.get("sqlite_1", []), ("commit_ms",)),
    ]
    if k:
        rows += [("kafka DELETE", k, ("fixed",)), ("kafka /health", k, ("health_fixed",))]
    if kafka_baseline(res, "roundtrip"):
        rows.append(("round trip", kafka_baseline(res, "roundtrip"), ("round_trip_ms",)))
    if pick(k, "low", "p50"):
        rows.append((f"kafka DEL {LOW_RATE}/s", k, ("low",)))
    if kafka_baseline(res, "roundtrip_low"):
        rows.append((f"round trip {LOW_RATE}/s", kafka_baseline(res, "roundtrip_low"), ("round_trip_ms",)))
    rows = [(label, items, at) for label, items, at in rows if items]
    keys, colours = ("p50", "p99", "p999"), ("#4c78a8", "#f58518", "#e45756")
    w, h, left, top, bottom = 900, 380, 60, 40, 70
    values = [v for _, items, at in rows for key in keys for v in pick(items, *at, key) if v > 0]
    if not values:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>\n'
    lo = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    y = lambda v: top + (h - top - bottom) * (1 - (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))  # noqa: E731
    slot = (w - left - 20) / len(rows)
    bar = slot / 4
    n = max(len(items) for _, items, _ in rows)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">Latency at {RATE} req/s unless marked (latency-corrected), ms, log scale; '
           f'median of {n} runs, min–max line</text>']
    decade = lo
    while decade <= hi * 1.001:
        out.append(f'<line x1="{left}" x2="{w - 20}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    for i, (label, items, at) in enumerate(rows):
        x0 = left + i * slot + bar / 2
        for j, key in enumerate(keys):
            vs = pick(items, *at, key)
            if not vs:
                continue
            v = statistics.median(vs)
            x, yt = x0 + j * bar, y(v)
            out.append(f'<rect x="{x:.1f}" y="{yt:.1f}" width="{bar - 2:.1f}" height="{h - bottom - yt:.1f}" fill="{colours[j]}">'
                       f'<title>{label} {key}: {spread(vs)} ms</title></rect>')
            if len(vs) > 1:
                cx = x + bar / 2 - 1
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(min(vs)):.1f}" y2="{y(max(vs)):.1f}" stroke="black"/>')
            out.append(f'<text x="{x + bar / 2 - 1:.1f}" y="{y(max(vs)) - 3:.1f}" text-anchor="middle" font-size="9">{v:.1f}</text>')
        out.append(f'<text x="{x0 + 1.5 * bar:.1f}" y="{h - bottom + 16}" text-anchor="middle" font-size="10">{label}</text>')
    for j, key in enumerate(keys):
        out.append(f'<rect x="{left + j * 90}" y="{h - 30}" width="12" height="12" fill="{colours[j]}"/>')
        out.append(f'<text x="{left + j * 90 + 16}" y="{h - 20}">{key.replace("p999", "p99.9")}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def codes(result):
    text = ", ".join(f"{c} ×{n:,}" for c, n in sorted(result["codes"].items()))
    if result.get("errors"):
        text += f"; errors {result['errors']}"
    return text


def report(m, res):
    lines = summary_lines(res)
    checks = verdicts(res)
    resources, sizes = resource_lines(res), size_lines(res)
    print("\n".join(lines))
    print()
    print("\n".join(resources))
    print()
    print("\n".join(sizes))
    print()
    for what, verdict, numbers in checks:
        print(f"{verdict:6}  {what}: {numbers}")
    SVG.parent.mkdir(parents=True, exist_ok=True)
    SVG.write_text(svg_plot(res))
    note = os.environ.get("BENCH_NOTE", "nothing else was started on purpose; see the load averages")
    e = res.get("embedded", {})
    rb = res.get("rebuild", {})
    doc = ["# Benchmarks", "",
           "`make bench` measures `DELETE /api/management/security/groups/{g}/users/{u}` on both",
           "backends and, in the same run on the same machine, the baselines that bound it. This",
           "file is written by `bench/bench.py`; the findings at the end are kept in",
           "`bench/findings.md`.", "",
           "## Machine and run", "",
           f"* {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}",
           f"* commit {m['commit']}, {m['date']}; {m['oha']}, {m['tansu']}",
           f"* `make bench BENCH_SCALE={SCALE:g}{settings_note()}`: {GROUPS:,} groups, {USERS:,} users, {2 * USERS:,} memberships on the embedded log, "
           f"{KAFKA_GROUPS:,} groups, {KAFKA_USERS:,} users, {2 * KAFKA_USERS:,} memberships on Kafka (`BENCH_KAFKA_SCALE={KAFKA_SCALE:g}`, see below); "
           f"{FIXED_S} s at {RATE} req/s (and {LOW_RATE} req/s on Kafka), {SATURATION_S} s saturated, {HEALTH_S} s per /health run; "
           f"took {m['minutes']:.1f} minutes",
           f"* every figure is the median of {RUNS} runs with the spread (min–max) beside it, and each target is judged on the",
           "  median. Each backend is seeded once and stopped; each run starts the service (and for Kafka the broker, on the",
           "  same port) on a fresh copy of that data dir (and the broker's store), so every run removes from the same",
           "  memberships, and the DELETE runs of one run draw from disjoint pools of them",
           f"* load average before {' '.join(m['load'])}, after {' '.join(m['load_after'])}; {note}",
           "* everything on loopback: oha, the service (release build, `config/default.toml`,",
           "  2 HTTP workers, logging at `info` to a file), Tansu 0.6 with SQLite storage",
           "",
           "## Results", "",
           f"![Latency percentiles at {RATE} req/s per backend]({SVG.name})", "",
           *lines, "",
           "Latencies are of the successful requests (204 for DELETE); per second counts only",
           "those. oha draws URLs at random with replacement from a file of seeded memberships,",
           "so a membership drawn twice answers 409 the second time; those are not counted.",
           f"The broker's saturated baseline keeps {CONNECTIONS} records in flight in a closed loop (a record is produced",
           "each time one comes back to the consumer), with the service's producer and consumer settings, for as long",
           "as the saturated DELETE run; per second counts the round trips completed within that time.", "",
           "### Memory, disk writes and start-up", "",
           *resources, "",
           "Peak resident memory is VmHWM of `/proc/PID/status`, read just before the service is stopped. Bytes written",
           "per removal: `write_bytes` of `/proc/PID/io` read just before and just after the DELETE run, over the",
           "run's 204s; on the embedded log that is the log and the read model together, WAL and checkpoints",
           "included (and the service's own log file, a line per request); on Kafka the service writes only the read",
           "model (and its log file), and the broker's writes are on their own row.",
           "From a fresh copy until ready: from the spawn of the service on the run's copy of the seeded data dir until",
           "`GET /health/ready` answers 200 (polled every 10 ms); the restart: the same, started again on that run's",
           "data dir after the run (already projected, with the run's removals).", "",
           "### Sizes", "",
           *sizes, "",
           "MiB, after the service stopped cleanly (SIGTERM).", "",
           "| run | status codes |", "|---|---|"]
    for name in backends(res):
        for run in ("fixed", "low", "sat"):
            for i, r in enumerate(runs_of(res, name), 1):
                if run in r:
                    doc.append(f"| {name} {run}, run {i} | {codes(r[run])} |")
    doc += ["", "Seeding through the API (seconds): " + "; ".join(
        f"{n}: {r['seed']['groups']:,} groups {r['seed']['groups_s']:.1f}, {r['seed']['users']:,} users "
        f"{r['seed']['users_s']:.1f}, {r['seed']['memberships']:,} memberships {r['seed']['memberships_s']:.1f}"
        for n, r in ((n, res[n]) for n in ("embedded", "kafka") if "seed" in res.get(n, {}))) + ".", ""]
    if "written" in rb:
        w = rb["written"]
        doc += [f"The rebuild's log ({w['events']:,} events: "
                + ", ".join(f"{v:,} {t}" for t, v in sorted(w["types"].items()))
                + f") was written through the crate's `EmbeddedLog` in {w['write_s']:.1f} s "
                "(`baselines eventlog`), 10,000 events per append, and rebuilt "
                f"{len(rb.get('runs', []))} times, each into a new file.", ""]
    if "payload_bytes" in e:
        doc += [f"Event size: a `MemberRemoved` payload in the embedded log is {e['payload_bytes']} bytes;",
                "the SQLite and Kafka baselines write records of that size.", ""]
    if "kafka_failed" in res:
        doc += [f"The Kafka backend failed: {res['kafka_failed']}", ""]
    for r in runs_of(res, "kafka"):
        for key in ("roundtrip", "roundtrip_low", "roundtrip_sat"):
            if f"{key}_failed" in r:
                doc += [f"A raw Kafka round trip failed: {r[key + '_failed']}", ""]
    doc += ["## Targets", "", "Judged on the medians; the numbers are median (min–max).", "",
            "| target | verdict | numbers |", "|---|---|---|"]
    doc += [f"| {w} | {v} | {n} |" for w, v, n in checks]
    doc += ["", "## Commands", "",
            "`make bench` builds `membershipd` in release mode and the `baselines` bench binary (`cargo bench --bench",
            "baselines --no-run`, from `benches/baselines.rs`), installs oha and Tansu when missing, and runs",
            "`python3 bench/bench.py`, which copies both binaries into `$WORK` (so that every run uses the same two)",
            "and runs these (`$PORT`, `$BROKER_PORT`: free loopback ports, a new `$PORT` for each start; `$WORK`: the",
            "run's dir under `target/bench/`; `$TOKEN`: a client-credentials token; `$PAYLOAD_BYTES`: the event size",
            "above; the binaries run from the repository's root, where they read `config/default.toml`):", "", "```"]
    doc += command_templates()
    doc += ["```", "", "Raw results: `target/bench/run-*/results.json` with `BENCH_KEEP=1`.", ""]
    findings = ROOT / "bench" / "findings.md"
    if findings.exists():
        doc += [findings.read_text().rstrip(), ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(doc))
    log(f"wrote {OUT} and {SVG}")


if __name__ == "__main__":
    main()
