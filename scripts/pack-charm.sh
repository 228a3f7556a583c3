#!/usr/bin/env bash
# Assembles the charm without charmcraft: build/charm/ (unpacked, what JujuLocal deploys)
# and build/synapse_amd64.charm (the zip Juju deploys). Usage: pack-charm.sh [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/synapse-k8s-charm}"
[ -x "$bin" ] || { echo "no charm binary at $bin (run cargo build --release)" >&2; exit 1; }
out=build/charm
rm -rf "$out" && mkdir -p "$out"
cp metadata.yaml config.yaml actions.yaml "$out/"
[ -f README.md ] && cp README.md "$out/"
[ -f LICENSE ] && cp LICENSE "$out/"
install -m 0755 "$bin" "$out/dispatch"
version=$(git describe --always --dirty 2>/dev/null || echo unknown)
echo "$version" > "$out/version"
cat > "$out/manifest.yaml" <<MANIFEST
analysis:
  attributes:
  - name: language
    result: unknown
  - name: framework
    result: unknown
bases:
- architectures:
  - amd64
  channel: '24.04'
  name: ubuntu
charmcraft-started-at: '$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)'
charmcraft-version: 3.4.0
MANIFEST
rm -f build/synapse_amd64.charm
(cd "$out" && zip -q -X -r ../synapse_amd64.charm .)
echo "packed build/synapse_amd64.charm ($(du -h build/synapse_amd64.charm | cut -f1)) and $out/"
