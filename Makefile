# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo
NPM ?= npm
PYTHON ?= python3
SCIM_VENV := target/scim-venv
OPENAPI_VENV := target/openapi-venv
TANSU_VERSION := 0.6.0
OHA_VERSION := 1.16.0
TANSU ?= $(shell command -v tansu || echo $(HOME)/.cargo/bin/tansu)
OHA ?= $(shell command -v oha || echo $(HOME)/.cargo/bin/oha)

.PHONY: run test lint unit tansu client-deps scim-tester api-fuzzer kafka run-kafka bench oha

## Build in release mode and serve on the embedded log (data in ./data).
run:
	$(CARGO) run --release --bin membershipd -- serve

## Formatting, lints, then every test: unit tests and the HTTP suite against the real
## server, on the embedded log and on a Kafka-compatible broker (Tansu) started for the run,
## the official JavaScript client's scenario (needs Node.js 18 or newer), and the SCIM
## compliance tester and the OpenAPI fuzzer schemathesis (need Python 3.11 or newer).
test: lint tansu client-deps scim-tester api-fuzzer
	tests/with-broker.sh $(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --bench baselines -- -D warnings

## Only the fast, pure tests (domain, settings, tokens).
unit:
	$(CARGO) test --lib

## Install the broker Tansu $(TANSU_VERSION) (about 10 minutes), unless it is already there.
tansu:
	@for t in "$$(command -v tansu)" "$$HOME/.cargo/bin/tansu"; do \
	  [ -x "$$t" ] && "$$t" --version | grep -qx 'tansu $(TANSU_VERSION)' && exit 0; \
	done; \
	$(CARGO) install tansu --version $(TANSU_VERSION) --locked --features libsql

## Install the official JavaScript client pinned in tests/client/package-lock.json, unless
## tests/client/node_modules is already there and newer than the lock file.
client-deps: tests/client/node_modules

tests/client/node_modules: tests/client/package-lock.json
	$(NPM) ci --prefix tests/client --no-audit --no-fund
	@touch $@

## Install the SCIM compliance tester (scim2-cli, every package pinned with its hashes in
## tests/scim/requirements.txt) into a virtualenv in $(SCIM_VENV), made anew unless its
## `scim2` is already there and newer than that file.
scim-tester: $(SCIM_VENV)/bin/scim2

$(SCIM_VENV)/bin/scim2: tests/scim/requirements.txt
	rm -rf $(SCIM_VENV)
	$(PYTHON) -m venv $(SCIM_VENV)
	$(SCIM_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
	  --only-binary :all: --requirement tests/scim/requirements.txt
	@touch $@

## Install schemathesis and openapi-spec-validator (every package pinned with its hashes in
## tests/openapi/requirements.txt) into a virtualenv in $(OPENAPI_VENV), made anew unless
## its `schemathesis` is already there and newer than that file.
api-fuzzer: $(OPENAPI_VENV)/bin/schemathesis

$(OPENAPI_VENV)/bin/schemathesis: tests/openapi/requirements.txt
	rm -rf $(OPENAPI_VENV)
	$(PYTHON) -m venv $(OPENAPI_VENV)
	$(OPENAPI_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
	  --only-binary :all: --requirement tests/openapi/requirements.txt
	@touch $@

## A broker in the foreground on 127.0.0.1:9092, its storage in target/tansu/dev.
kafka: tansu
	mkdir -p target/tansu/dev
	cd target/tansu/dev && $(TANSU) broker --storage-engine sqlite://tansu.db \
	  --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092

## Like `run`, with the log in that broker (the read model in ./data/kafka).
run-kafka:
	MEMBERSHIP_KAFKA_BROKERS=127.0.0.1:9092 MEMBERSHIP_DATA_DIR=data/kafka \
	  $(CARGO) run --release --bin membershipd -- serve

## Benchmarks, not part of `make test`: DELETE of a membership on both backends, with its
## baselines (GET /health, synced SQLite inserts, a raw Kafka round trip at a fixed rate and
## saturated, a rebuild of 1,000,000 events), the service's peak memory, disk writes per
## removal and restart time, into docs/benchmarks.md; every figure the median of 3 runs.
## About 15 to 20 minutes; BENCH_SCALE=0.05 for a quick run (see bench/bench.py for the
## other settings).
bench: tansu oha
	$(CARGO) build --release --bin membershipd
	$(CARGO) bench --bench baselines --no-run
	OHA=$(OHA) TANSU=$(TANSU) python3 bench/bench.py

## Install the load generator oha $(OHA_VERSION), unless it is already there.
oha:
	@for t in "$$(command -v oha)" "$$HOME/.cargo/bin/oha"; do \
	  [ -x "$$t" ] && "$$t" --version | grep -qx 'oha $(OHA_VERSION)' && exit 0; \
	done; \
	$(CARGO) install oha --version $(OHA_VERSION) --locked
