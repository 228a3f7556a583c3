#!/usr/bin/env bash
# Keeps modules small enough to read: no Rust source file outside tests/ may have
# more than 600 lines before its inline test module. Prints the offenders.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=600
bad=0
while IFS= read -r f; do
  n=$(grep -n '^#\[cfg(test)\]' "$f" | head -1 | cut -d: -f1 || true)
  lines=${n:-$(wc -l < "$f")}
  if [ "$lines" -gt "$limit" ]; then
    echo "$f: $lines lines before its tests (limit $limit)"
    bad=$((bad + 1))
  fi
done < <(git ls-files '*.rs' | grep -v -e '^tests/' -e '/tests/')
total=$(git ls-files '*.rs' | grep -v -e '^tests/' -e '/tests/' | wc -l)
echo "module size: $((total - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
