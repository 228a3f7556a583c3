#!/usr/bin/env bash
# The charm's main job, locally: deploy it under JujuLocal with real pods (real Pebble,
# Synapse and NGINX), configure a server name, and leave a homeserver answering on
# http://localhost:8080. `run-local.sh --stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${SYNAPSE_CHARM_TOOLS:-/opt/synapse-charm}"
export JUJULOCAL_HOME="${JUJULOCAL_HOME:-$PWD/.jujulocal}"
J=target/release/jujulocal
SERVER_NAME="${SERVER_NAME:-synapse.localhost}"

if [ -f "$JUJULOCAL_HOME/model.json" ]; then
  echo "Stopping the previous local deployment in $JUJULOCAL_HOME"
  "$J" destroy || true
  rm -rf "$JUJULOCAL_HOME"
fi
[ "${1:-}" = "--stop" ] && exit 0

for port in 8080 8008 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "Port $port is already in use on this machine; stop what uses it first." >&2
    exit 1
  fi
done

"$J" bootstrap --name local
"$J" deploy build/charm synapse --pods --pebble "$TOOLS/bin/pebble" \
  --mount "synapse:/opt/synapse=$TOOLS/synapse-venv" \
  --mount "synapse:/usr/local/bin/synapse-stats-exporter=$PWD/target/release/synapse-stats-exporter" \
  --mount "synapse-nginx:/etc/nginx=$PWD/nginx_rock/etc/nginx" \
  --mount "synapse-nginx:/var/lib/nginx=tmpfs" \
  --mount "synapse-nginx:/var/log/nginx=tmpfs" >/dev/null
echo "Deployed; setting server_name=$SERVER_NAME"
"$J" config synapse "server_name=$SERVER_NAME"

echo -n "Waiting for Synapse behind NGINX on http://localhost:8080 "
for _ in $(seq 1 180); do
  if curl -sf -o /dev/null http://localhost:8080/_matrix/client/versions; then break; fi
  echo -n .; sleep 1
done
echo
# Let Pebble's ready checks run once, then report like `juju status`.
for _ in $(seq 1 15); do
  "$J" update-status
  "$J" status | grep -q '^synapse/0\*  *active' && break
  sleep 2
done
"$J" status
cat <<MSG

Synapse ($SERVER_NAME) answers on http://localhost:8080
  curl http://localhost:8080/_matrix/client/versions
Create a user:   JUJULOCAL_HOME=$JUJULOCAL_HOME $J run synapse/0 register-user username=alice
                 then read its password: JUJULOCAL_HOME=$JUJULOCAL_HOME $J show-secret <password-secret-id> --reveal
Logs:            $J debug-log ; Synapse: $JUJULOCAL_HOME/pods/synapse-0/synapse.log
Stop it:         make stop
MSG
