# Common tasks. The two entry points an operator or developer needs:
#   make run    deploy the charm under JujuLocal and serve Synapse on http://localhost:8080
#   make test   run every test (installs what is missing first)

SHELL := /bin/bash
CARGO ?= cargo
TOOLS ?= /opt/synapse-charm
export SYNAPSE_CHARM_TOOLS := $(TOOLS)

.PHONY: setup build charm run stop test lint size-check analyse analyse-debug nginx-test rules-test integration bench clean

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

test: setup lint
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace
	$(MAKE) nginx-test rules-test analyse-debug
	@# How many bad configurations the table tried (the test asserts each).
	$(CARGO) test -q --lib charm::bad_configs -- --nocapture 2>&1 | grep -E "^bad configurations: "

# The Jubilant suite (tests/integration/): Jubilant drives the charm through JujuLocal's
# `juju` client (jujulocal-juju) with real pods. The charm is packed from the debug
# build (as analyse-debug does) into build/charm; PYTEST_ARGS passes options to pytest.
# Not part of `make test` (yet).
integration: setup
	$(CARGO) build -p synapse-k8s-charm -p synapse-stats-exporter -p jujulocal
	bash scripts/pack-charm.sh target/debug/synapse-k8s-charm
	cd tests/integration && $(TOOLS)/integration-venv/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: setup charm
	bash scripts/bench.sh

clean:
	rm -rf build target .jujulocal
