# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint unit

## Build in release mode and serve on the embedded log (data in ./data).
run:
	$(CARGO) run --release --bin membershipd -- serve

## Formatting, lints, then every test: unit tests and the HTTP suite against the real server.
test: lint
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Only the fast, pure tests (domain, settings, tokens).
unit:
	$(CARGO) test --lib
