#!/usr/bin/env bash
# Installs everything the charm's local run and its tests need, idempotently:
# Debian packages, the real Pebble daemon, and Python venvs (Synapse, test clients).
# A second run with everything present takes well under a second per step.
set -euo pipefail

# World-readable, because workloads run as their own users (synapse) in the local pods.
TOOLS_DIR="${SYNAPSE_CHARM_TOOLS:-/opt/synapse-charm}"
PEBBLE_VERSION="v1.32.1"
SYNAPSE_VERSION="1.163.2"
mkdir -p "$TOOLS_DIR/bin"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
APT_PKGS=(python3-venv nginx postgresql prometheus redis-server zip unzip iproute2 util-linux procps curl)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages' own services from starting: tests start their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
# Debian starts these on install on some machines; the tests run their own instances.
for svc in nginx postgresql prometheus redis-server; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done

# --- Users the workloads run as (the rocks define the same names) ----------
getent group synapse >/dev/null || groupadd --system --gid 584792 synapse
getent passwd synapse >/dev/null || useradd --system --uid 584792 --gid 584792 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin synapse

# --- Pebble ----------------------------------------------------------------
if ! "$TOOLS_DIR/bin/pebble" version --client 2>/dev/null | grep -q "${PEBBLE_VERSION#v}"; then
  log "installing Pebble $PEBBLE_VERSION"
  if ! GOBIN="$TOOLS_DIR/bin" go install "github.com/canonical/pebble/cmd/pebble@$PEBBLE_VERSION"; then
    # `go install pkg@version` also asks the proxy for the module's version list (for
    # deprecation notices); where that list is refused, build the same tagged module
    # from the module cache instead.
    log "go install failed; building Pebble $PEBBLE_VERSION from the module cache"
    dir=$(go mod download -json "github.com/canonical/pebble@$PEBBLE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { log "cannot download Pebble $PEBBLE_VERSION"; exit 1; }
    (cd "$dir" && GOFLAGS=-mod=mod go build -o "$TOOLS_DIR/bin/pebble" ./cmd/pebble)
  fi
fi

# --- Python venvs ----------------------------------------------------------
PY="${PYTHON:-python3}"
make_venv() { # python name marker pip-args...
  local py=$1 name=$2 marker=$3; shift 3
  local dir="$TOOLS_DIR/$name"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$marker" ]; then return 0; fi
  log "creating venv $name ($marker)"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$marker" > "$dir/.installed"
}
# Synapse as the rock ships it (with the PostgreSQL driver).
# Debian's python3, not a per-user interpreter: the synapse user must be able to run it.
make_venv /usr/bin/python3 synapse-venv "synapse-$SYNAPSE_VERSION-2" "matrix-synapse==$SYNAPSE_VERSION" psycopg2-binary \
  "synapse-invite-checker==0.6.1"
# The S3 media storage provider, as the rock ships it (see synapse_rock/rockcraft.yaml),
# added to the existing venv rather than rebuilding it: --no-deps for its psycopg2
# (psycopg2-binary provides the module), its other run-time needs named explicitly.
if ! "$TOOLS_DIR/synapse-venv/bin/python" -c 'import s3_storage_provider, boto3' 2>/dev/null; then
  log "adding synapse-s3-storage-provider to synapse-venv"
  "$TOOLS_DIR/synapse-venv/bin/pip" install -q --disable-pip-version-check \
    "boto3>=1.36,<2" "humanize>=4,<5" "tqdm>=4.26,<5"
  "$TOOLS_DIR/synapse-venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: --no-deps \
    "synapse-s3-storage-provider==1.7.0"
fi
# Synapse's Redis support (matrix-synapse[redis]: txredisapi, hiredis), used by main and
# workers once the application runs on more than one unit; added to the existing venv.
if ! "$TOOLS_DIR/synapse-venv/bin/python" -c 'import txredisapi, hiredis' 2>/dev/null; then
  log "adding matrix-synapse[redis] to synapse-venv"
  "$TOOLS_DIR/synapse-venv/bin/pip" install -q --disable-pip-version-check \
    "matrix-synapse[redis]==$SYNAPSE_VERSION"
fi
# Independent clients used by the tests: ops (checks the Juju stand-in), matrix-nio (Matrix client).
make_venv "$PY" test-venv "test-3" "ops==3.9.0" "matrix-nio==0.26.0" pyyaml
# Jubilant (drives the `juju` CLI; here JujuLocal's `jujulocal-juju`), pytest and matrix-nio (the Matrix client), for
# the integration suite (`make integration`).
make_venv "$PY" integration-venv "integration-2" "jubilant==1.14.0" "pytest==8.4.2" "matrix-nio==0.26.0"
# A real S3-compatible server (moto's standalone server) for the `media` and `backup`
# integrations, and a real SMTP server (aiosmtpd) for the `smtp` integration.
make_venv "$PY" s3-venv "s3-1" "moto[server]==5.2.5"
make_venv "$PY" smtp-venv "smtp-1" "aiosmtpd==1.4.6"
# A real appservice for the `matrix-auth` integration: JujuLocal's bridge stand-in
# encrypts its registration with Fernet from `cryptography` (as the matrix_auth library
# does) and serves it with mautrix's appservice framework.
make_venv "$PY" appservice-venv "appservice-1" "mautrix==0.21.1" "cryptography==50.0.2" "aiohttp>=3.9,<4"
# charmcraft, for `charmcraft analyse` of the packed charm.
make_venv "$PY" charmcraft-venv "charmcraft-4.5.0-1" "charmcraft==4.5.0"

# --- cargo-deny, for `make audit` (licences, bans, sources) -----------------
# From crates.io, built once (about 2.5 minutes on 2 cores); the version check
# makes later runs instant.
CARGO_DENY_VERSION="0.20.2"
CARGO="${CARGO:-cargo}"
if ! "$CARGO" deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  log "installing cargo-deny $CARGO_DENY_VERSION"
  "$CARGO" install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi

log "tools ready in $TOOLS_DIR"
