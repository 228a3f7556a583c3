#!/usr/bin/env bash
# Refuses at once when the host ports that some tests need are taken: the tests that
# reach PostgreSQL on the host's loopback run their pods on the host network, where a
# `make run` deployment (or anything else) on these ports would make them fail late.
set -euo pipefail
busy=()
for port in 8008 8080 9000 9877; do
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    busy+=("$port")
  fi
done
if [ "${#busy[@]}" -gt 0 ]; then
  echo "make test: host port(s) ${busy[*]} are in use, and the PostgreSQL tests run pods on the host network." >&2
  if [ -d "$(dirname "$0")/../.jujulocal" ]; then
    echo "A 'make run' deployment is up: stop it with 'make stop', then run 'make test' again." >&2
  else
    echo "Free these ports (see 'ss -ltnp'), then run 'make test' again." >&2
  fi
  exit 1
fi
