#!/usr/bin/env bash
# Runs `charmcraft analyse` (charmcraft from PyPI) on a packed charm; fails on any error.
set -euo pipefail
charm="$1"
TOOLS="${SYNAPSE_CHARM_TOOLS:-/opt/synapse-charm}"
out=$(cd "$(mktemp -d)" && CHARMCRAFT_DEVELOPER=1 "$TOOLS/charmcraft-venv/bin/charmcraft" analyse --format=json "$(realpath "$OLDPWD/$charm")" 2>&1) || true
echo "$out"
python3 - "$out" <<'PY'
import json, sys
text = sys.argv[1]
start = text.find("[")
try:
    results = json.loads(text[start:])
except Exception:
    print("charmcraft analyse: unreadable output"); sys.exit(1)
errors = [r for r in results if r.get("result") == "errors"]
for r in results:
    print(f"  {r.get('name')}: {r.get('result')}")
print(f"charmcraft analyse: {len(results) - len(errors)} passed, {len(errors)} failed")
sys.exit(1 if errors else 0)
PY
