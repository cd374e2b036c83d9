#!/usr/bin/env python3
"""`make bench`: DELETE .../groups/{g}/users/{u} on both backends, beside its baselines.

Seeds a data set through the service's API on each backend (the embedded log in a temp
data dir; Kafka on a private Tansu broker on a free port), measures the removal with oha
(a fixed 500 req/s with latency correction, then saturation with 64 connections), measures
the baselines on the same machine in the same run (GET /health, synced SQLite inserts, a
raw rdkafka round trip, a rebuild of a 1,000,000-event log), prints a summary and writes
docs/benchmarks.md and docs/benchmarks-latency.svg.

Environment:
  BENCH_SCALE     scales the data set, the rebuild's log and the run lengths (default 1;
                  0.05 for a quick run)
  BENCH_KAFKA_SCALE  the Kafka backend's data set (default: BENCH_SCALE, at most 0.2)
  BENCH_KAFKA_LOW_RATE  the second, sustainable rate for Kafka (default 100 req/s)
  BENCH_REBUILD_TIMEOUT_S  stop the rebuild after this long and report its rate so far
                  (default 240)
`python3 bench/bench.py --resume target/bench/run-...` finishes a kept run whose rebuild
or report did not happen, from its results.json.
  BENCH_OUT       the report (default docs/benchmarks.md; its plot goes beside it)
  BENCH_NOTE      a sentence for the report on what else ran on the machine
  BENCH_KEEP      set to keep the work dir (target/bench/run-*) with data and logs
  OHA, TANSU      the binaries (default: on PATH, else ~/.cargo/bin)
Only the Python standard library is used.
"""

import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
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
REBUILD_TIMEOUT_S = int(os.environ.get("BENCH_REBUILD_TIMEOUT_S", "240"))
CONNECTIONS = 64
FIXED_S = max(5, round(30 * min(1.0, SCALE * 4)))
SATURATION_S = max(5, round(15 * min(1.0, SCALE * 4)))
HEALTH_S = max(5, round(10 * min(1.0, SCALE * 4)))
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "docs" / "benchmarks.md"))
SVG = OUT.with_name(OUT.stem + "-latency.svg")
MEMBERSHIPD = ROOT / "target" / "release" / "membershipd"
COMMANDS = []  # every measuring command, as run
# The bootstrap client's secret for this run, which the seeder (benches/baselines.rs) reads
# from the same variable.
os.environ.setdefault("MEMBERSHIP_ADMIN_CLIENT_SECRET", secrets.token_hex(32))


def tool(env, name):
    found = os.environ.get(env) or shutil.which(name)
    if not found:
        found = str(Path.home() / ".cargo" / "bin" / name)
    if not os.access(found, os.X_OK):
        sys.exit(f"bench: no {name} binary (run `make oha` / `make tansu`)")
    return found


OHA = tool("OHA", "oha")
TANSU = tool("TANSU", "tansu")


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited early (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: {what} did not listen on {port} within {timeout}s")


class Processes:
    """Every process started here, stopped by its own pid at the end."""

    def __init__(self):
        self.running = []

    def start(self, argv, log_path, **kwargs):
        out = open(log_path, "wb")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        self.running.append(proc)
        log(f"started {Path(argv[0]).name} pid {proc.pid} (log {log_path})")
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self):
        for proc in list(reversed(self.running)):
            self.stop(proc)


def baselines(*args):
    argv = ["cargo", "bench", "-q", "--bench", "baselines", "--", *map(str, args)]
    COMMANDS.append(" ".join(argv))
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
        "ok_per_s": sum(v for k, v in codes.items() if k.startswith("2")) / total_s,
        "p50": ms(ok.get("p50")),
        "p99": ms(ok.get("p99")),
        "p999": ms(ok.get("p99.9")),
    }


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


def save(work, m, res):
    (work / "results.json").write_text(json.dumps({"machine": m, "results": res}, indent=2))


def run_backend(name, work, procs, brokers=None):
    data = work / name
    data.mkdir(parents=True)
    port = free_port()
    env = dict(os.environ, MEMBERSHIP_HTTP_ADDR=f"127.0.0.1:{port}", MEMBERSHIP_DATA_DIR=str(data))
    env.pop("MEMBERSHIP_CONFIG", None)
    if brokers:
        env["MEMBERSHIP_KAFKA_BROKERS"] = brokers
        env["MEMBERSHIP_KAFKA_TOPIC"] = f"bench.{name}.{port}"
    server = procs.start([str(MEMBERSHIPD), "serve"], work / f"{name}.log", env=env, cwd=ROOT)
    wait_for_port(port, server, f"membershipd ({name})")
    base = f"http://127.0.0.1:{port}"
    groups, users = (KAFKA_GROUPS, KAFKA_USERS) if brokers else (GROUPS, USERS)
    log(f"{name}: seeding {groups} groups, {users} users, {2 * users} memberships")
    # Bulk adds one at a time on Kafka: several at once (hundreds of records in flight)
    # make Tansu 0.6 panic in its idempotent-producer check (see docs/benchmarks.md).
    seeded = baselines("seed", base, groups, users, 1 if brokers else 8)
    token = seeded.pop("token")
    log(f"{name}: seeded {json.dumps(seeded)}")
    # Disjoint pools: a quarter of the memberships for the fixed rate, the rest for
    # saturation. oha draws URLs at random with replacement, so a membership drawn twice
    # answers 409 the second time; only 204s are counted.
    fixed_urls, sat_urls = work / f"{name}-fixed.urls", work / f"{name}-saturation.urls"
    low_urls = work / f"{name}-low.urls"
    fixed_urls.write_text("\n".join(membership_urls(base, groups, users, lambda i, j: j == 0 and i % 2 == 0)) + "\n")
    if brokers:
        # A third pool for the sustainable rate: the saturation pool's first half.
        low_urls.write_text("\n".join(membership_urls(base, groups, users, lambda i, j: j == 1 and i % 2 == 0)) + "\n")
        sat_urls.write_text("\n".join(membership_urls(base, groups, users, lambda i, j: i % 2 == 1)) + "\n")
    else:
        sat_urls.write_text("\n".join(membership_urls(base, groups, users, lambda i, j: not (j == 0 and i % 2 == 0))) + "\n")
    r = {"seed": seeded}
    log(f"{name}: health at {RATE} req/s")
    r["health_fixed"] = oha(f"{base}/health", "-q", str(RATE), "--latency-correction",
                            "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w")
    log(f"{name}: health with {CONNECTIONS} connections")
    r["health_sat"] = oha(f"{base}/health", "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w")
    log(f"{name}: DELETE at {RATE} req/s for {FIXED_S}s")
    r["fixed"] = oha(str(fixed_urls), "--urls-from-file", "-m", "DELETE", "-q", str(RATE),
                     "--latency-correction", "-c", str(CONNECTIONS), "-z", f"{FIXED_S}s", "-w",
                     token=token)
    if brokers:
        log(f"{name}: DELETE at {LOW_RATE} req/s for {FIXED_S}s")
        r["low"] = oha(str(low_urls), "--urls-from-file", "-m", "DELETE", "-q", str(LOW_RATE),
                       "--latency-correction", "-c", str(CONNECTIONS), "-z", f"{FIXED_S}s", "-w",
                       token=token)
    log(f"{name}: DELETE with {CONNECTIONS} connections for {SATURATION_S}s")
    r["sat"] = oha(str(sat_urls), "--urls-from-file", "-m", "DELETE", "-c", str(CONNECTIONS),
                   "-z", f"{SATURATION_S}s", "-w", token=token)
    procs.stop(server)
    if not brokers:
        import sqlite3

        conn = sqlite3.connect(data / "log.db")
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


def start_tansu(work, procs):
    port = free_port()
    store = work / "tansu"
    store.mkdir()
    argv = [TANSU, "broker", "--storage-engine", "sqlite://tansu.db",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}"]
    broker = procs.start(argv, work / "tansu.log", cwd=store)
    wait_for_port(port, broker, "tansu")
    index_record_headers(store / "tansu.db")
    return f"127.0.0.1:{port}"


def index_record_headers(db):
    """Tansu 0.6 keeps record headers in a table without an index, and reads a fetched
    record's headers with a scan of that table: every record fetched costs a pass over the
    headers of every record stored, so the broker slows down as its topics grow (the
    service's records carry six CloudEvents headers each). The index it lacks, added beside
    the running broker, makes that a lookup; the broker is otherwise unchanged, and the
    baselines run on it too."""
    import sqlite3

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


def rebuild(work):
    d = work / "rebuild"
    if not (d / "log.db").exists():
        d.mkdir(exist_ok=True)
        log(f"rebuild: writing {REBUILD_EVENTS} events into {d / 'log.db'}")
        written = baselines("eventlog", d / "log.db", REBUILD_EVENTS)
        (d / "written.json").write_text(json.dumps(written))
    if not (d / "written.json").exists():  # a run stopped before it recorded this
        import sqlite3

        conn = sqlite3.connect(d / "log.db")
        types = dict(conn.execute("SELECT type, count(*) FROM events GROUP BY type"))
        conn.close()
        (d / "written.json").write_text(json.dumps(
            {"events": sum(types.values()), "types": types, "write_s": None}))
    written = json.loads((d / "written.json").read_text())
    into = d / "read.rebuilt.db"
    argv = [str(MEMBERSHIPD), "rebuild", "--into", str(into)]
    COMMANDS.append(f"MEMBERSHIP_DATA_DIR={d} " + " ".join(argv))
    env = dict(os.environ, MEMBERSHIP_DATA_DIR=str(d), RUST_LOG="warn")
    log(f"rebuild: at most {REBUILD_TIMEOUT_S}s")
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
        import sqlite3

        conn = sqlite3.connect(into)
        events = sum(o for (o,) in conn.execute("SELECT offset FROM positions"))
        conn.close()
        return {"events": events, "of": written["events"], "seconds": seconds,
                "events_per_s": events / seconds, "finished": False,
                "types": written["types"], "write_s": written["write_s"]}
    if proc.returncode != 0:
        sys.exit(f"bench: the rebuild failed with status {proc.returncode}")
    m = re.search(r"from (\d+) log entries in ([\d.]+)(ms|s|µs)", out)
    if not m:
        sys.exit(f"bench: cannot read the rebuild's output: {out}")
    seconds = float(m.group(2)) / {"s": 1, "ms": 1e3, "µs": 1e6}[m.group(3)]
    events = int(m.group(1))
    return {"events": events, "of": events, "seconds": seconds, "events_per_s": events / seconds,
            "finished": True, "types": written["types"], "write_s": written["write_s"]}


def sh(*argv):
    try:
        return subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=True).stdout.decode().strip()
    except Exception:
        return "?"


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
    }


def main():
    if sys.argv[1:2] == ["--resume"]:
        work = Path(sys.argv[2]).resolve()
        saved = json.loads((work / "results.json").read_text())
        m, res = saved["machine"], saved["results"]
        if "rebuild" in res and "minutes" in m:
            report(m, res)  # only the report again, from the saved results
            return
        started = time.time() - m.get("minutes_so_far", 0) * 60
        if "rebuild" not in res:
            res["rebuild"] = rebuild(work)
        finish(work, m, res, started)
        return
    work = ROOT / "target" / "bench" / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    procs = Processes()
    started = time.time()
    m = machine()
    res = {}
    try:
        res["embedded"] = run_backend("embedded", work, procs)
        save(work, m, res)
        payload = res["embedded"]["payload_bytes"]
        log(f"sqlite: synced inserts of {payload} bytes")
        single_n = max(200, round(2000 * min(1.0, SCALE * 4)))
        res["sqlite_1"] = baselines("sqlite", work, payload, single_n, 1)
        res["sqlite_64"] = baselines("sqlite", work, payload, single_n * 64, 64)
        brokers = start_tansu(work, procs)
        try:
            res["kafka"] = run_backend("kafka", work, procs, brokers=brokers)
        except (subprocess.CalledProcessError, SystemExit) as e:
            res["kafka_failed"] = f"{e}"
            log(f"kafka: FAILED ({e}); the broker's log: {work / 'tansu.log'}")
        log(f"kafka: raw round trip at {RATE}/s for {FIXED_S}s")
        try:
            res["roundtrip"] = round_trip(brokers, RATE, payload)
            log(f"kafka: raw round trip at {LOW_RATE}/s for {FIXED_S}s")
            res["roundtrip_low"] = round_trip(brokers, LOW_RATE, payload)
        except (subprocess.CalledProcessError, RuntimeError) as e:
            res["roundtrip_failed"] = f"{e}"
        procs.stop_all()
        m["minutes_so_far"] = (time.time() - started) / 60
        save(work, m, res)
        res["rebuild"] = rebuild(work)
    finally:
        procs.stop_all()
    finish(work, m, res, started)


def finish(work, m, res, started):
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
    fixed = ["--urls-from-file", "-m", "DELETE", "-q", str(RATE), "--latency-correction", "-c", str(CONNECTIONS), "-z", f"{FIXED_S}s", "-w", *auth]
    return [
        "MEMBERSHIP_HTTP_ADDR=127.0.0.1:$PORT MEMBERSHIP_DATA_DIR=$WORK/embedded target/release/membershipd serve",
        f"cargo bench -q --bench baselines -- seed http://127.0.0.1:$PORT {GROUPS} {USERS} 8   # embedded",
        " ".join([*o, "-q", str(RATE), "--latency-correction", "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w", "http://127.0.0.1:$PORT/health"]),
        " ".join([*o, "-c", str(CONNECTIONS), "-z", f"{HEALTH_S}s", "-w", "http://127.0.0.1:$PORT/health"]),
        " ".join([*o, *fixed, "$WORK/embedded-fixed.urls"]),
        " ".join([*o, "--urls-from-file", "-m", "DELETE", "-c", str(CONNECTIONS), "-z", f"{SATURATION_S}s", "-w", *auth, "$WORK/embedded-saturation.urls"]),
        "cargo bench -q --bench baselines -- sqlite $WORK $PAYLOAD_BYTES $N 1",
        "cargo bench -q --bench baselines -- sqlite $WORK $PAYLOAD_BYTES $((N * 64)) 64",
        "(cd $WORK/tansu && tansu broker --storage-engine sqlite://tansu.db --listener-url tcp://127.0.0.1:$BROKER_PORT "
        "--advertised-listener-url tcp://127.0.0.1:$BROKER_PORT)",
        "python3 -c 'import sqlite3; sqlite3.connect(\"$WORK/tansu/tansu.db\").execute(\"CREATE INDEX IF NOT EXISTS "
        "header_by_record ON header (topition, offset_id)\")'   # see Findings",
        "MEMBERSHIP_HTTP_ADDR=127.0.0.1:$PORT MEMBERSHIP_DATA_DIR=$WORK/kafka MEMBERSHIP_KAFKA_BROKERS=127.0.0.1:$BROKER_PORT "
        "MEMBERSHIP_KAFKA_TOPIC=bench.kafka.$PORT target/release/membershipd serve",
        f"cargo bench -q --bench baselines -- seed http://127.0.0.1:$PORT {KAFKA_GROUPS} {KAFKA_USERS} 1   # kafka",
        "(the same /health, fixed-rate and saturation oha commands against the Kafka-backed service, plus:)",
        " ".join([*o, *fixed, "$WORK/kafka-low.urls"]).replace(f"-q {RATE}", f"-q {LOW_RATE}"),
        f"cargo bench -q --bench baselines -- kafka 127.0.0.1:$BROKER_PORT {RATE} {FIXED_S} $PAYLOAD_BYTES",
        f"cargo bench -q --bench baselines -- kafka 127.0.0.1:$BROKER_PORT {LOW_RATE} {FIXED_S} $PAYLOAD_BYTES",
        f"cargo bench -q --bench baselines -- eventlog $WORK/rebuild/log.db {REBUILD_EVENTS}",
        "MEMBERSHIP_DATA_DIR=$WORK/rebuild target/release/membershipd rebuild --into $WORK/rebuild/read.rebuilt.db",
    ]


def settings_note():
    names = ("BENCH_KAFKA_SCALE", "BENCH_KAFKA_LOW_RATE", "BENCH_REBUILD_TIMEOUT_S")
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


def verdicts(res):
    e = res["embedded"]
    out = []

    def check(what, ok, numbers):
        out.append((what, "met" if ok else "MISSED", numbers))

    check("embedded, 500 req/s: p99 <= 15 ms", e["fixed"]["p99"] <= 15, f"p99 {f(e['fixed']['p99'])} ms")
    # The saturation target is the embedded log's; Kafka's saturation is in the results.
    s = e["sat"]
    check("embedded, saturation: >= 3,000 removals/s with p99 <= 50 ms",
          s["ok_per_s"] >= 3000 and s["p99"] <= 50,
          f"{f(s['ok_per_s'])} removals/s, p99 {f(s['p99'])} ms")
    k = res.get("kafka", {})
    for run, rate, baseline in (("fixed", RATE, "roundtrip"), ("low", LOW_RATE, "roundtrip_low")):
        if run in k and baseline in res:
            kafka_checks(check, k[run], res[baseline]["round_trip_ms"], rate)
        else:
            out.append((f"kafka targets at {rate} req/s", "NOT MEASURED",
                        res.get("kafka_failed") or res.get(f"{baseline}_failed") or res.get("roundtrip_failed")))
    rb = res["rebuild"]
    check("projector rebuild >= 50,000 events/s", rb["events_per_s"] >= 50_000,
          f"{f(rb['events_per_s'])} events/s")
    return out


def backends(res):
    return [name for name in ("embedded", "kafka") if name in res]


def kafka_checks(check, k, rt, rate):
    check(f"kafka, {rate} req/s: p50 <= round-trip p50 + 3 ms", k["p50"] <= rt["p50"] + 3,
          f"p50 {f(k['p50'])} ms vs limit {f(rt['p50'] + 3)} ms")
    check(f"kafka, {rate} req/s: p99 <= 2 x round-trip p99 + 5 ms", k["p99"] <= 2 * rt["p99"] + 5,
          f"p99 {f(k['p99'])} ms vs limit {f(2 * rt['p99'] + 5)} ms")


def summary_lines(res):
    lines = []
    s1, s64 = res["sqlite_1"], res["sqlite_64"]
    rt, rb = res.get("roundtrip"), res["rebuild"]
    lines.append("| measurement | p50 ms | p99 ms | p99.9 ms | per second | ratio to baseline |")
    lines.append("|---|---|---|---|---|---|")
    for name in backends(res):
        r = res[name]
        hf, hs, fx, st = r["health_fixed"], r["health_sat"], r["fixed"], r["sat"]
        lines.append(f"| {name}: GET /health, {RATE} req/s | {f(hf['p50'])} | {f(hf['p99'])} | {f(hf['p999'])} | {f(hf['ok_per_s'])} | (baseline) |")
        lines.append(f"| {name}: DELETE, {RATE} req/s | {f(fx['p50'])} | {f(fx['p99'])} | {f(fx['p999'])} | {f(fx['ok_per_s'])} 204/s | "
                     f"to /health: p50 {ratio(fx['p50'], hf['p50'])}, p99 {ratio(fx['p99'], hf['p99'])}, p99.9 {ratio(fx['p999'], hf['p999'])} |")
        lines.append(f"| {name}: GET /health, {CONNECTIONS} connections | {f(hs['p50'])} | {f(hs['p99'])} | {f(hs['p999'])} | {f(hs['ok_per_s'])} | (baseline) |")
        lines.append(f"| {name}: DELETE, {CONNECTIONS} connections | {f(st['p50'])} | {f(st['p99'])} | {f(st['p999'])} | {f(st['ok_per_s'])} 204/s | "
                     f"to /health: throughput {ratio(st['ok_per_s'], hs['ok_per_s'])}, p99 {ratio(st['p99'], hs['p99'])} |")
        if name == "embedded":
            lines.append(f"| disk: synced insert, 1 row per transaction | {f(s1['commit_ms']['p50'])} | {f(s1['commit_ms']['p99'])} | {f(s1['commit_ms']['p999'])} | {f(s1['rows_per_s'])} rows/s | "
                         f"DELETE at {RATE}/s p50 to it: {ratio(fx['p50'], s1['commit_ms']['p50'])} |")
            lines.append(f"| disk: synced insert, 64 rows per transaction | {f(s64['commit_ms']['p50'])} | {f(s64['commit_ms']['p99'])} | {f(s64['commit_ms']['p999'])} | {f(s64['rows_per_s'])} rows/s | "
                         f"saturated DELETE to it: {ratio(st['ok_per_s'], s64['rows_per_s'])} |")
        elif rt:
            d, t = rt["delivery_ms"], rt["round_trip_ms"]
            lines.append(f"| broker: produce to delivery, {RATE}/s | {f(d['p50'])} | {f(d['p99'])} | {f(d['p999'])} | {f(rt['rate'])}, {back(rt)} | "
                         f"DELETE to it: p50 {ratio(fx['p50'], d['p50'])}, p99 {ratio(fx['p99'], d['p99'])} |")
            lines.append(f"| broker: produce then consume, {RATE}/s | {f(t['p50'])} | {f(t['p99'])} | {f(t['p999'])} | {f(rt['rate'])}, {back(rt)} | "
                         f"DELETE to it: p50 {ratio(fx['p50'], t['p50'])}, p99 {ratio(fx['p99'], t['p99'])}, p99.9 {ratio(fx['p999'], t['p999'])} |")
        if name == "kafka":
            low, rl = r.get("low"), res.get("roundtrip_low")
            if low and rl:
                d, t = rl["delivery_ms"], rl["round_trip_ms"]
                lines.append(f"| {name}: DELETE, {LOW_RATE} req/s | {f(low['p50'])} | {f(low['p99'])} | {f(low['p999'])} | {f(low['ok_per_s'])} 204/s | "
                             f"to the round trip below: p50 {ratio(low['p50'], t['p50'])}, p99 {ratio(low['p99'], t['p99'])}, p99.9 {ratio(low['p999'], t['p999'])} |")
                lines.append(f"| broker: produce to delivery, {LOW_RATE}/s | {f(d['p50'])} | {f(d['p99'])} | {f(d['p999'])} | {f(rl['rate'])}, {back(rl)} | "
                             f"DELETE to it: p50 {ratio(low['p50'], d['p50'])}, p99 {ratio(low['p99'], d['p99'])} |")
                lines.append(f"| broker: produce then consume, {LOW_RATE}/s | {f(t['p50'])} | {f(t['p99'])} | {f(t['p999'])} | {f(rl['rate'])}, {back(rl)} | (baseline) |")
    done = "" if rb.get("finished", True) else f" (stopped after {rb['seconds']:.0f} s, {rb['events']:,} of {rb['of']:,} applied)"
    lines.append(f"| projector: rebuild of {rb.get('of', rb['events']):,} events{done} | | | | {f(rb['events_per_s'])} events/s | to the 50,000/s target: {ratio(rb['events_per_s'], 50_000)} |")
    return lines


def svg_plot(res):
    """Latency percentiles per backend at the fixed rate, beside their baselines (log scale)."""
    import math

    rows = [
        ("embedded DELETE", res["embedded"]["fixed"]),
        ("embedded /health", res["embedded"]["health_fixed"]),
        ("synced insert", {k: res["sqlite_1"]["commit_ms"][k] for k in ("p50", "p99", "p999")}),
    ]
    if "kafka" in res:
        rows += [("kafka DELETE", res["kafka"]["fixed"]), ("kafka /health", res["kafka"]["health_fixed"])]
    if "roundtrip" in res:
        rows.append(("round trip", {k: res["roundtrip"]["round_trip_ms"][k] for k in ("p50", "p99", "p999")}))
    if "kafka" in res and "low" in res["kafka"]:
        rows.append((f"kafka DEL {LOW_RATE}/s", res["kafka"]["low"]))
    if "roundtrip_low" in res:
        rows.append((f"round trip {LOW_RATE}/s", {k: res["roundtrip_low"]["round_trip_ms"][k] for k in ("p50", "p99", "p999")}))
    keys, colours = ("p50", "p99", "p999"), ("#4c78a8", "#f58518", "#e45756")
    w, h, left, top, bottom = 900, 380, 60, 40, 70
    values = [r[k] for _, r in rows for k in keys if r.get(k)]
    lo = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    y = lambda v: top + (h - top - bottom) * (1 - (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))  # noqa: E731
    slot = (w - left - 20) / len(rows)
    bar = slot / 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">Latency at {RATE} req/s unless marked (latency-corrected), ms, log scale</text>']
    decade = lo
    while decade <= hi * 1.001:
        out.append(f'<line x1="{left}" x2="{w - 20}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    for i, (label, r) in enumerate(rows):
        x0 = left + i * slot + bar / 2
        for j, k in enumerate(keys):
            v = r.get(k)
            if not v:
                continue
            x, yt = x0 + j * bar, y(v)
            out.append(f'<rect x="{x:.1f}" y="{yt:.1f}" width="{bar - 2:.1f}" height="{h - bottom - yt:.1f}" fill="{colours[j]}"><title>{label} {k}: {v:.2f} ms</title></rect>')
            out.append(f'<text x="{x + bar / 2 - 1:.1f}" y="{yt - 3:.1f}" text-anchor="middle" font-size="9">{v:.1f}</text>')
        out.append(f'<text x="{x0 + 1.5 * bar:.1f}" y="{h - bottom + 16}" text-anchor="middle">{label}</text>')
    for j, k in enumerate(keys):
        out.append(f'<rect x="{left + j * 90}" y="{h - 30}" width="12" height="12" fill="{colours[j]}"/>')
        out.append(f'<text x="{left + j * 90 + 16}" y="{h - 20}">{k.replace("p999", "p99.9")}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def report(m, res):
    lines = summary_lines(res)
    checks = verdicts(res)
    print("\n".join(lines))
    print()
    for what, verdict, numbers in checks:
        print(f"{verdict:6}  {what}: {numbers}")
    SVG.parent.mkdir(parents=True, exist_ok=True)
    SVG.write_text(svg_plot(res))
    e = res["embedded"]
    note = os.environ.get("BENCH_NOTE", "nothing else was started on purpose; see the load averages")
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
           f"{FIXED_S} s at {RATE} req/s, {SATURATION_S} s saturated, {HEALTH_S} s per /health run; took {m['minutes']:.1f} minutes",
           f"* load average before {' '.join(m['load'])}, after {' '.join(m['load_after'])}; {note}",
           "* everything on loopback: oha, the service (release build, `config/default.toml`,",
           "  2 HTTP workers, logging at `info` to a file), Tansu 0.6 with SQLite storage",
           "",
           "## Results", "",
           f"![Latency percentiles at {RATE} req/s per backend]({SVG.name})", "",
           *lines, "",
           "Latencies are of the successful requests (204 for DELETE); per second counts only",
           "those. oha draws URLs at random with replacement from a file of seeded memberships,",
           "so a membership drawn twice answers 409 the second time; those are not counted.", "",
           "| run | status codes | errors |", "|---|---|---|"]
    for name, r in ((n, res[n]) for n in backends(res)):
        for run in ("fixed", "low", "sat"):
            if run in r:
                doc.append(f"| {name} {run} | {r[run]['codes']} | {r[run]['errors'] or 'none'} |")
    doc += ["", "Seeding through the API (seconds): " + "; ".join(
        f"{n}: {r['seed']['groups']:,} groups {r['seed']['groups_s']:.1f}, {r['seed']['users']:,} users "
        f"{r['seed']['users_s']:.1f}, {r['seed']['memberships']:,} memberships {r['seed']['memberships_s']:.1f}"
        for n, r in ((n, res[n]) for n in backends(res))) + ".", "",
        f"The rebuild's log ({res['rebuild'].get('of', res['rebuild']['events']):,} events: "
        + ", ".join(f"{v:,} {t}" for t, v in sorted(res["rebuild"]["types"].items()))
        + f") was written through the crate's `EmbeddedLog` in {res['rebuild']['write_s'] or 0:.1f} s "
        "(`cargo bench --bench baselines -- eventlog`), 10,000 events per append.", "",
        f"Event size: a `MemberRemoved` payload in the embedded log is {e['payload_bytes']} bytes;",
        "the SQLite and Kafka baselines write records of that size.", "",
        *([f"The Kafka backend failed: {res['kafka_failed']}", ""] if "kafka_failed" in res else []),
        *([f"The raw Kafka round trip failed: {res['roundtrip_failed']}", ""] if "roundtrip_failed" in res else []),
        *([res["roundtrip_note"], ""] if "roundtrip_note" in res else []),
        "## Targets", "", "| target | verdict | numbers |", "|---|---|---|"]
    doc += [f"| {w} | {v} | {n} |" for w, v, n in checks]
    doc += ["", "## Commands", "",
            "`make bench` builds `membershipd` in release mode, installs oha when missing, and runs",
            "`python3 bench/bench.py`, which runs these (`$PORT`, `$BROKER_PORT`: free loopback ports;",
            "`$WORK`: the run's dir under `target/bench/`; `$TOKEN`: a client-credentials token;",
            "`$PAYLOAD_BYTES`: the event size below; `$N`: 2,000 at full scale):", "", "```"]
    doc += command_templates()
    doc += ["```", "", "Raw results: `target/bench/run-*/results.json` with `BENCH_KEEP=1`.", ""]
    findings = ROOT / "bench" / "findings.md"
    if findings.exists():
        doc += [findings.read_text().rstrip(), ""]
    OUT.write_text("\n".join(doc))
    log(f"wrote {OUT} and {SVG}")


if __name__ == "__main__":
    main()
