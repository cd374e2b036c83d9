#!/usr/bin/env bash
# Usage: tests/with-broker.sh CMD...
#
# Runs CMD with a Kafka-compatible broker of its own: Tansu on a free loopback port, with
# its storage in a fresh dir under target/tansu/. CMD sees the broker as
# MEMBERSHIP_TEST_KAFKA_BROKERS=127.0.0.1:PORT, and the Tansu binary as MEMBERSHIP_TEST_TANSU
# (for tests that start private brokers). The broker is stopped whatever happens, and the
# script exits with CMD's status.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tansu=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
startup_timeout_s=30

if [[ ! -x "$tansu" ]]; then
    echo "with-broker: no tansu binary (looked in PATH and ~/.cargo/bin); run \`make tansu\`" >&2
    exit 1
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$root/target/tansu"
dir=$(mktemp -d "$root/target/tansu/test-$port.XXXXXX")
log="$dir/broker.log"

(cd "$dir" && exec "$tansu" broker --storage-engine sqlite://tansu.db \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port") >"$log" 2>&1 &
broker=$!

stop_broker() {
    local status=$?
    if kill -0 "$broker" 2>/dev/null; then
        kill "$broker" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$broker" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$broker" 2>/dev/null || true
    fi
    wait "$broker" 2>/dev/null || true
    if [[ $status -eq 0 ]]; then
        rm -rf "$dir"
    else
        echo "with-broker: the broker's storage and log are kept in $dir" >&2
    fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deadline=$((SECONDS + startup_timeout_s))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$broker" 2>/dev/null; then
        echo "with-broker: tansu exited before accepting connections on port $port:" >&2
        cat "$log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "with-broker: tansu did not accept connections on port $port within ${startup_timeout_s}s:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "with-broker: tansu listening on 127.0.0.1:$port (storage in $dir)" >&2

# Tansu 0.6 reads a fetched record's headers by scanning every header it stores, so each
# fetch slows as the suite's topics grow (bench/findings.md, finding 4). The index it lacks
# makes that a lookup; the broker is otherwise unchanged.
python3 - "$dir/tansu.db" <<'PY'
import sqlite3, sys, time
deadline = time.time() + 30
while True:
    conn = sqlite3.connect(sys.argv[1], timeout=10)
    try:
        conn.execute("CREATE INDEX IF NOT EXISTS header_by_record ON header (topition, offset_id)")
        conn.commit()
        break
    except sqlite3.OperationalError as error:
        if time.time() > deadline:
            sys.exit(f"with-broker: cannot index the broker's record headers: {error}")
        time.sleep(0.2)  # the broker has not made its tables yet
    finally:
        conn.close()
PY

export MEMBERSHIP_TEST_KAFKA_BROKERS="127.0.0.1:$port"
export MEMBERSHIP_TEST_TANSU="$tansu"
status=0
"$@" || status=$?
exit "$status"
