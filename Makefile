# Common tasks. The two entry points an operator or developer needs:
#   make run    deploy the charm under JujuLocal and serve Synapse on http://localhost:8080
#   make test   run every test (installs what is missing first)

SHELL := /bin/bash
CARGO ?= cargo
TOOLS ?= /opt/synapse-charm
export SYNAPSE_CHARM_TOOLS := $(TOOLS)

.PHONY: setup build charm run stop ports test fuzz lint size-check analyse analyse-debug nginx-test rules-test audit integration bench clean

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --release --workspace

charm: build
	bash scripts/pack-charm.sh target/release/synapse-k8s-charm

run: setup charm
	bash scripts/run-local.sh

stop:
	bash scripts/run-local.sh --stop

lint: size-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# No Rust module over 600 lines before its tests.
size-check:
	bash scripts/check-size.sh

# charmcraft (from PyPI) checks the packed charm the way the Charmhub upload does.
analyse: charm
	bash scripts/analyse.sh build/synapse_amd64.charm

# The same check in `make test`, on the debug build it already has (packaging is
# what is checked, and a release build would double CI's build time).
analyse-debug:
	bash scripts/pack-charm.sh target/debug/synapse-k8s-charm
	bash scripts/analyse.sh build/synapse_amd64.charm

nginx-test:
	bash tests/nginx_config.sh

rules-test:
	bash tests/prometheus_rules.sh

# Licences (permissive only), banned crates and sources (crates.io only) of the whole
# dependency graph, offline, in under a second (cargo-deny comes from scripts/setup.sh).
# Advisories are not checked: their database cannot be fetched here.
audit:
	$(CARGO) deny --log-level error --config scripts/deny.toml check licenses bans sources

# Refuses at once while a `make run` deployment (or anything else) holds the host
# ports that the host-network tests need.
ports:
	bash scripts/check-ports.sh

test: ports setup lint
	$(CARGO) build --workspace --all-targets
	mkdir -p target
	set -o pipefail; $(CARGO) test --workspace 2>&1 | tee target/test-output.txt
	@# How many property cases ran (every parser of outside input, never a panic).
	bash scripts/property-count.sh target/test-output.txt
	$(MAKE) nginx-test rules-test analyse-debug audit
	python3 scripts/bench_test.py
	@# How many bad configurations the table tried (the test asserts each).
	$(CARGO) test -q --lib charm::bad_configs -- --nocapture 2>&1 | grep -E "^bad configurations: "
	$(MAKE) integration

# Only the property tests (every parser of outside input), 100000 cases each instead of
# the 2000 of `make test`; optimised, as the cases, not the build, take the time.
PROPERTY_PACKAGES := -p synapse-k8s-charm -p http1 -p pebble -p juju-hook -p jujulocal
fuzz:
	mkdir -p target
	set -o pipefail; PROPTEST_CASES=$${PROPTEST_CASES:-100000} $(CARGO) test --release $(PROPERTY_PACKAGES) --test properties 2>&1 | tee target/fuzz-output.txt
	bash scripts/property-count.sh target/fuzz-output.txt

# The Jubilant suite (tests/integration/): Jubilant drives the charm through JujuLocal's
# `juju` client (jujulocal-juju) with real pods. The charm is packed from the debug
# build (as analyse-debug does) into build/charm; PYTEST_ARGS passes options to pytest.
# Part of `make test` (its last step); pytest prints its own summary line.
integration: setup
	$(CARGO) build -p synapse-k8s-charm -p synapse-stats-exporter -p jujulocal
	bash scripts/pack-charm.sh target/debug/synapse-k8s-charm
	cd tests/integration && $(TOOLS)/integration-venv/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Figures, not pass/fail (docs/explanation/performance.md); not part of `make test`,
# which only runs the driver's own unit tests (scripts/bench_test.py).
bench: setup charm
	python3 scripts/bench.py

clean:
	rm -rf build target .jujulocal
